package tcpstate

import (
	"errors"
	"fmt"
	"strings"
)

// State is a TCP state with the kernel's numbering, so a value read from the
// tracepoint sock:inet_sock_set_state or from sock_diag converts directly.
type State uint8

// The states, numbered as in include/net/tcp_states.h.
const (
	Invalid       State = 0
	Established   State = 1
	SynSent       State = 2
	SynRecv       State = 3
	FinWait1      State = 4
	FinWait2      State = 5
	TimeWait      State = 6
	Closed        State = 7 // the kernel's TCP_CLOSE
	CloseWait     State = 8
	LastAck       State = 9
	Listen        State = 10
	Closing       State = 11
	NewSynRecv    State = 12 // a request socket waiting for the final ACK
	BoundInactive State = 13 // bound, neither listening nor connecting (6.8+)
)

// ErrUnknownState is returned by Parse for a name no spelling matches.
var ErrUnknownState = errors.New("unknown TCP state")

type names struct {
	kernel, netstat, ss, meaning string
}

var table = [...]names{
	Invalid:       {"", "", "", ""},
	Established:   {"TCP_ESTABLISHED", "ESTABLISHED", "ESTAB", "an open connection: data flows both ways"},
	SynSent:       {"TCP_SYN_SENT", "SYN_SENT", "SYN-SENT", "SYN sent, waiting for the peer's SYN-ACK"},
	SynRecv:       {"TCP_SYN_RECV", "SYN_RECV", "SYN-RECV", "SYN received and SYN-ACK sent, waiting for the final ACK"},
	FinWait1:      {"TCP_FIN_WAIT1", "FIN_WAIT1", "FIN-WAIT-1", "closed locally, FIN sent, waiting for its ACK or the peer's FIN"},
	FinWait2:      {"TCP_FIN_WAIT2", "FIN_WAIT2", "FIN-WAIT-2", "our FIN acknowledged, waiting for the peer's FIN"},
	TimeWait:      {"TCP_TIME_WAIT", "TIME_WAIT", "TIME-WAIT", "both FINs acknowledged; waiting 60 s so late segments die"},
	Closed:        {"TCP_CLOSE", "CLOSE", "UNCONN", "no connection"},
	CloseWait:     {"TCP_CLOSE_WAIT", "CLOSE_WAIT", "CLOSE-WAIT", "the peer closed; waiting for the application to close"},
	LastAck:       {"TCP_LAST_ACK", "LAST_ACK", "LAST-ACK", "closed after the peer; FIN sent, waiting for its ACK"},
	Listen:        {"TCP_LISTEN", "LISTEN", "LISTEN", "waiting for connection requests"},
	Closing:       {"TCP_CLOSING", "CLOSING", "CLOSING", "both sides closed at once; waiting for the ACK of our FIN"},
	NewSynRecv:    {"TCP_NEW_SYN_RECV", "NEW_SYN_RECV", "SYN-RECV", "a request socket (the kernel's SYN_RECV before accept)"},
	BoundInactive: {"TCP_BOUND_INACTIVE", "BOUND_INACTIVE", "UNCONN", "bound to a port, neither listening nor connecting"},
}

// RFC793 lists the eleven states of RFC 793 in the order of its diagram.
var RFC793 = []State{Closed, Listen, SynSent, SynRecv, Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait}

// All lists every state the kernel defines.
var All = []State{Established, SynSent, SynRecv, FinWait1, FinWait2, TimeWait, Closed, CloseWait, LastAck, Listen, Closing, NewSynRecv, BoundInactive}

// String returns the textbook (netstat) spelling, CLOSED for the kernel's
// TCP_CLOSE, so timelines read like the seeds: "FIN_WAIT2 -> TIME_WAIT -> CLOSED".
func (s State) String() string {
	if s == Closed {
		return "CLOSED"
	}
	if int(s) < len(table) && s != Invalid {
		return table[s].netstat
	}
	return fmt.Sprintf("STATE(%d)", uint8(s))
}

// Kernel returns the kernel's name, e.g. TCP_FIN_WAIT1.
func (s State) Kernel() string { return s.pick(func(n names) string { return n.kernel }) }

// Netstat returns netstat's spelling, e.g. FIN_WAIT1 (CLOSE for TCP_CLOSE).
func (s State) Netstat() string { return s.pick(func(n names) string { return n.netstat }) }

// SS returns ss's spelling, e.g. FIN-WAIT-1.
func (s State) SS() string { return s.pick(func(n names) string { return n.ss }) }

// Meaning returns a one-line explanation of the state.
func (s State) Meaning() string { return s.pick(func(n names) string { return n.meaning }) }

// Valid reports whether s is a state the kernel defines.
func (s State) Valid() bool { return s != Invalid && int(s) < len(table) }

// Mask returns the bit sock_diag uses for s in its idiag_states filter.
func (s State) Mask() uint32 { return 1 << uint32(s) }

func (s State) pick(f func(names) string) string {
	if !s.Valid() {
		return s.String()
	}
	return f(table[s])
}

// aliases maps normalised spellings that are not one of the table's.
var aliases = map[string]State{
	"CLOSED":       Closed,
	"UNCONN":       Closed,
	"ESTAB":        Established,
	"SYN_RCVD":     SynRecv,
	"SYN_RECEIVED": SynRecv,
	"FIN_WAIT_1":   FinWait1,
	"FIN_WAIT_2":   FinWait2,
	"LISTENING":    Listen,
}

// Parse accepts any common spelling of a state, in any case: TCP_FIN_WAIT1,
// FIN_WAIT1, FIN-WAIT-1, fin_wait_1, SYN_RCVD, SYN-RECEIVED, CLOSED, CLOSE.
func Parse(name string) (State, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	n = strings.NewReplacer("-", "_", " ", "_").Replace(n)
	n = strings.TrimPrefix(n, "TCP_")
	if s, ok := aliases[n]; ok {
		return s, nil
	}
	for i := range table {
		s := State(i)
		if !s.Valid() {
			continue
		}
		if n == strings.TrimPrefix(table[i].kernel, "TCP_") || n == table[i].netstat {
			return s, nil
		}
	}
	return Invalid, fmt.Errorf("%w: %q", ErrUnknownState, name)
}

// MustParse is Parse for names known at compile time; it panics on error.
func MustParse(name string) State {
	s, err := Parse(name)
	if err != nil {
		panic(err)
	}
	return s
}

// MarshalText writes the textbook spelling.
func (s State) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("marshal state %d: %w", uint8(s), ErrUnknownState)
	}
	return []byte(s.String()), nil
}

// UnmarshalText accepts every spelling Parse accepts.
func (s *State) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
