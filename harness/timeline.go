package harness

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
	"golang.org/x/sys/unix"
)

// Source says how a transition was observed.
type Source uint8

const (
	// Traced transitions come from the tracepoint sock:inet_sock_set_state,
	// stamped by the kernel at the moment of the change.
	Traced Source = iota + 1
	// Polled transitions were inferred from sock_diag snapshots: At is the
	// latest moment the change can have happened, Window how much earlier
	// it may have been (the time between the two snapshots).
	Polled
	// Born marks the LISTEN -> SYN_RECV of an accepted socket on kernels
	// that create the child in SYN_RECV without the tracepoint (6.1 does;
	// 6.18 traces it): stamped with the child's first traced transition,
	// which follows its creation within the same softirq.
	Born
)

func (s Source) String() string {
	switch s {
	case Polled:
		return "diag"
	case Born:
		return "born"
	}
	return "trace"
}

// Transition is one change of state of one connection.
type Transition struct {
	From, To tcpstate.State
	At       time.Duration // CLOCK_MONOTONIC, as bpf_ktime_get_ns
	Window   time.Duration // for Polled: the change happened in [At-Window, At]
	Source   Source
}

// Timeline is a snapshot of one connection's history: one socket, from its
// first transition to now. Timewait mini-sockets are merged in, so the
// textbook path reads FIN_WAIT2 -> TIME_WAIT -> CLOSED.
//
// Self-transitions (the kernel reports FIN_WAIT2 -> FIN_WAIT2 when a
// half-closed socket is closed) stay in Transitions, marked by From == To;
// States, Path and the matchers skip them, since no state changed.
type Timeline struct {
	Cookie      uint64
	Namespace   string
	Local       netip.AddrPort
	Remote      netip.AddrPort
	Transitions []Transition
	Mode        Mode
	Now         time.Duration // when the snapshot was taken
	// Request is true for a request socket (see Recorder.FollowRequests);
	// Retransmits then counts the SYN-ACKs it sent again.
	Request     bool
	Retransmits int
}

// Monotonic returns CLOCK_MONOTONIC, the clock of every Transition.At.
func Monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

func (t Timeline) changes() []Transition {
	out := make([]Transition, 0, len(t.Transitions))
	for _, tr := range t.Transitions {
		if tr.From != tr.To {
			out = append(out, tr)
		}
	}
	return out
}

// States returns the states entered, in order, without the starting one:
// a client's reads SYN_SENT, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSED.
func (t Timeline) States() []tcpstate.State {
	var out []tcpstate.State
	for _, tr := range t.changes() {
		out = append(out, tr.To)
	}
	return out
}

// Path returns the starting state followed by States().
func (t Timeline) Path() []tcpstate.State {
	ch := t.changes()
	if len(ch) == 0 {
		return nil
	}
	return append([]tcpstate.State{ch[0].From}, t.States()...)
}

// Current returns the state now (Invalid for an empty timeline).
func (t Timeline) Current() tcpstate.State {
	if len(t.Transitions) == 0 {
		return tcpstate.Invalid
	}
	return t.Transitions[len(t.Transitions)-1].To
}

// Entered returns when the state was first entered.
func (t Timeline) Entered(s tcpstate.State) (time.Duration, bool) {
	for _, tr := range t.changes() {
		if tr.To == s {
			return tr.At, true
		}
	}
	return 0, false
}

// Dwell returns how long the connection stayed in s the first time it
// entered it: 0 if it never did, the time so far if it is still there.
func (t Timeline) Dwell(s tcpstate.State) time.Duration {
	ch := t.changes()
	for i, tr := range ch {
		if tr.To != s {
			continue
		}
		if i+1 < len(ch) {
			return ch[i+1].At - tr.At
		}
		return t.Now - tr.At
	}
	return 0
}

// DwellRange bounds the first stay in s from the windows of the
// transitions into and out of it: the stay lasted at least lo and at most
// hi. For traced transitions lo == hi == Dwell(s). ok is false if the
// connection has not both entered and left s.
func (t Timeline) DwellRange(s tcpstate.State) (lo, hi time.Duration, ok bool) {
	ch := t.changes()
	for i, tr := range ch {
		if tr.To != s || i+1 >= len(ch) {
			continue
		}
		out := ch[i+1]
		return out.At - out.Window - tr.At, out.At - (tr.At - tr.Window), true
	}
	return 0, 0, false
}

// Left reports whether the connection entered s and left it again.
func (t Timeline) Left(s tcpstate.State) bool {
	ch := t.changes()
	for i, tr := range ch {
		if tr.To == s && i+1 < len(ch) {
			return true
		}
	}
	return false
}

// StateAt returns the state the connection was in at time at (CLOSED before
// its first transition).
func (t Timeline) StateAt(at time.Duration) tcpstate.State {
	s := tcpstate.Closed
	if ch := t.changes(); len(ch) > 0 {
		s = ch[0].From
	}
	for _, tr := range t.changes() {
		if tr.At > at {
			break
		}
		s = tr.To
	}
	return s
}

// String prints the whole timeline with times relative to its start:
//
//	conn 4097 198.18.0.1:40000 -> 198.18.0.2:8080 in net:[4026532]
//	  +0.000000s  CLOSED -> SYN_SENT
//	  +0.000412s  SYN_SENT -> ESTABLISHED
//	  ...
//	  +60.93s     TIME_WAIT -> CLOSED   (diag, within 20ms)
func (t Timeline) String() string {
	var b strings.Builder
	kind := "conn"
	if t.Request {
		kind = fmt.Sprintf("request socket (%d SYN-ACK retransmits)", t.Retransmits)
	}
	fmt.Fprintf(&b, "%s %d %s -> %s in %s (%s)", kind, t.Cookie, endpointString(t.Local), endpointString(t.Remote), t.Namespace, t.Mode)
	if len(t.Transitions) == 0 {
		b.WriteString("\n  (no transitions recorded)")
		return b.String()
	}
	t0 := t.Transitions[0].At
	for _, tr := range t.Transitions {
		fmt.Fprintf(&b, "\n  +%.6fs  %v -> %v", (tr.At - t0).Seconds(), tr.From, tr.To)
		if tr.From == tr.To {
			b.WriteString("   (self-transition)")
		}
		if tr.Source == Polled {
			fmt.Fprintf(&b, "   (diag, within %v)", tr.Window.Round(time.Microsecond))
		}
		if tr.Source == Born {
			b.WriteString("   (created in SYN_RECV: not traced by this kernel)")
		}
	}
	fmt.Fprintf(&b, "\n  now +%.6fs in %v", (t.Now - t0).Seconds(), t.Current())
	return b.String()
}

// endpointString prints an address of a timeline's header: "*" for none (a
// listener's peer, a socket that never got an address) and addr:* for an
// address without a port yet (a connect still in SYN_SENT, or one that
// failed before a port was chosen).
func endpointString(a netip.AddrPort) string {
	switch {
	case !a.IsValid():
		return "*"
	case a.Port() == 0:
		return strings.TrimSuffix(a.String(), ":0") + ":*"
	}
	return a.String()
}
