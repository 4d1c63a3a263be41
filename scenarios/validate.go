package scenarios

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// errnos are the syscall results a step may be expected to fail with.
var errnos = map[string]unix.Errno{
	"ECONNRESET":    unix.ECONNRESET,
	"ECONNREFUSED":  unix.ECONNREFUSED,
	"EADDRINUSE":    unix.EADDRINUSE,
	"EADDRNOTAVAIL": unix.EADDRNOTAVAIL,
	"ETIMEDOUT":     unix.ETIMEDOUT,
	"EPIPE":         unix.EPIPE,
	"EHOSTUNREACH":  unix.EHOSTUNREACH,
	"ENOTCONN":      unix.ENOTCONN,
}

func errnoNames() []string {
	var n []string
	for k := range errnos {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// validate walks the steps as the runner will, with sockets as names
// only, and refuses what cannot run: a step on a socket that does not
// exist or is closed, an accept with no listener, a fault timed by a step
// that does not exist or ending before it starts, an expectation about a
// socket or fault the scenario never makes.
func validate(s *Scenario) error {
	v := &validator{s: s, open: map[string]bool{}, where: map[string]Pos{}, ids: map[string]int{}}
	v.current = map[string]string{}
	n := 0
	for _, st := range s.Steps {
		if err := v.step(st, &n, false); err != nil {
			return err
		}
	}
	faultIDs := map[string]bool{}
	for _, f := range s.Faults {
		if faultIDs[f.ID] {
			return invalid(f.Pos, "fault id %q used twice", f.ID)
		}
		faultIDs[f.ID] = true
		start, end := -1, n+1
		for _, w := range []struct {
			w   When
			at  *int
			end bool
		}{{f.Start, &start, false}, {f.End, &end, true}} {
			if w.w.Step == "" {
				continue
			}
			i, ok := v.ids[w.w.Step]
			if !ok {
				return invalid(f.Pos, "fault %s: no step has id %q", f.ID, w.w.Step)
			}
			*w.at = i
		}
		if f.Start.Step != "" && f.End.Step != "" && end <= start {
			return invalid(f.Pos, "fault %s ends (before step %s) no later than it starts (before step %s)", f.ID, f.End.Step, f.Start.Step)
		}
		if f.Start.Step == "" && f.End.Step == "" && f.Start.Set && f.End.Set && f.End.After <= f.Start.After {
			return invalid(f.Pos, "fault %s ends no later than it starts", f.ID)
		}
	}
	for _, e := range s.Expect {
		switch e.Kind {
		case "states", "dwell":
			if _, ok := v.where[e.Socket]; !ok {
				return invalid(e.Pos, "no socket %q: the steps make %s", e.Socket, v.names())
			}
		case "packets":
			if !faultIDs[e.Fault] {
				return invalid(e.Pos, "no fault %q", e.Fault)
			}
		}
	}
	return nil
}

type validator struct {
	s       *Scenario
	open    map[string]bool   // socket name -> still open
	where   map[string]Pos    // socket name -> the step that made it
	current map[string]string // actor -> its current socket
	ids     map[string]int    // step id -> its place
	namer   socketNames
}

func invalid(p Pos, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, p, fmt.Sprintf(format, args...))
}

func (v *validator) names() string {
	var n []string
	for k := range v.where {
		n = append(n, k)
	}
	sort.Strings(n)
	return fmt.Sprint(n)
}

// newSocket records a socket the step makes, under its name.
func (v *validator) newSocket(st *Step, kind string) error {
	name, taken := v.namer.next(st.As, kind)
	if taken {
		return invalid(st.Pos, "socket name %q is taken (by %s)", name, v.where[name])
	}
	v.where[name], v.open[name] = st.Pos, true
	if kind != "listener" {
		v.current[st.Actor] = name
	}
	return nil
}

// target is the socket a step acts on.
func (v *validator) target(st *Step) (string, error) {
	name := st.Socket
	if name == "" {
		name = v.current[st.Actor]
		if name == "" {
			return "", invalid(st.Pos, "%s %s: the %s has no socket yet (connect, accept or listen first)", st.Actor, st.Action, st.Actor)
		}
	}
	if _, ok := v.where[name]; !ok {
		return "", invalid(st.Pos, "no socket %q", name)
	}
	return name, nil
}

func (v *validator) step(st *Step, n *int, inRepeat bool) error {
	*n++
	if st.ID != "" {
		if _, dup := v.ids[st.ID]; dup {
			return invalid(st.Pos, "step id %q used twice", st.ID)
		}
		v.ids[st.ID] = *n
	}
	switch st.Action {
	case "wait":
		return nil
	case "release":
		for _, f := range v.s.Faults {
			if f.ID == st.Fault {
				if f.Kind != "hold" {
					return invalid(st.Pos, "release %s: only a hold can be released, %s is a %s", st.Fault, f.ID, f.Kind)
				}
				return nil
			}
		}
		return invalid(st.Pos, "release %s: no such fault", st.Fault)
	case "repeat":
		for _, c := range st.Steps {
			if err := v.step(c, n, true); err != nil {
				return err
			}
		}
		return nil
	case "listen":
		if st.Actor != "server" {
			return invalid(st.Pos, "the client does not listen in a scenario: the server does")
		}
		return v.newSocket(st, "listener")
	case "connect", "start-connect":
		if st.Actor != "client" {
			return invalid(st.Pos, "the server does not connect in a scenario: the client does")
		}
		if st.Socket != "" {
			if _, ok := v.where[st.Socket]; !ok {
				return invalid(st.Pos, "connect to %q: no such listener", st.Socket)
			}
		} else if _, ok := v.where["listener"]; !ok {
			return invalid(st.Pos, "connect: the server has no listener yet (server: listen first)")
		}
		return v.newSocket(st, "client")
	case "accept":
		if st.Actor != "server" {
			return invalid(st.Pos, "the client does not accept: the server does")
		}
		ln := st.Socket
		if ln == "" {
			ln = "listener"
		}
		if !v.open[ln] {
			return invalid(st.Pos, "accept: no open listener %q", ln)
		}
		return v.newSocket(st, "server")
	}
	name, err := v.target(st)
	if err != nil {
		return err
	}
	// Watching a closed socket's connection is what wait-state is for.
	if !v.open[name] && st.Action != "wait-state" && st.Error == "" && !st.Ignore {
		return invalid(st.Pos, "%s %s: socket %s is already closed", st.Actor, st.Action, name)
	}
	if st.Action == "close" && !inRepeat {
		v.open[name] = false
	}
	return nil
}

// socketNames names sockets as a scenario refers to them: the name given
// with as:, else the kind ("listener", "client", "server") for the first
// of each and kind#N after. The validator and the runner share it, so
// they agree on every name.
type socketNames struct {
	used map[string]bool
	anon int
}

// next names a new socket; taken reports an as: name already in use.
func (n *socketNames) next(as, kind string) (name string, taken bool) {
	if n.used == nil {
		n.used = map[string]bool{}
	}
	if as != "" {
		taken = n.used[as]
		n.used[as] = true
		return as, taken
	}
	name = kind
	if n.used[name] {
		n.anon++
		name = fmt.Sprintf("%s#%d", kind, n.anon)
	}
	n.used[name] = true
	return name, false
}
