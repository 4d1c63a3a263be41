package scenarios

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tcplab/tcplab/harness"
	"github.com/tcplab/tcplab/harness/tcpstate"
)

// check evaluates one expectation against the run.
func (r *run) check(e *Expectation) (bool, string) {
	switch e.Kind {
	case "states":
		tl := r.timeline(e.Socket)
		got := tl.States()
		ok := slices.Equal(got, e.States)
		how := "exactly"
		if !e.Exact {
			ok, how = subsequence(got, e.States), "in order"
		}
		return ok, fmt.Sprintf("%s went through %v %s: saw %v", e.Socket, e.States, how, got)
	case "dwell":
		tl := r.timeline(e.Socket)
		lo, hi, ok := tl.DwellRange(e.State)
		if !ok {
			return false, fmt.Sprintf("%s never both entered and left %s: %v", e.Socket, e.State, tl.States())
		}
		// The measured interval must overlap the allowed one.
		within := hi >= e.Is-e.Tolerance && lo <= e.Is+e.Tolerance
		measured := fmt.Sprint(lo)
		if hi != lo {
			measured = fmt.Sprintf("between %v and %v", lo, hi)
		}
		return within, fmt.Sprintf("%s stayed in %s %s, want %v ± %v", e.Socket, e.State, measured, e.Is, e.Tolerance)
	case "count":
		n, err := r.count(e.Host, e.State)
		if err != nil {
			return false, fmt.Sprintf("count %s on %s: %v", e.State, e.Host, err)
		}
		return e.within(n), fmt.Sprintf("%d connections in %s on the %s, want %s", n, e.State, e.Host, e.want())
	case "packets":
		r.mu.Lock()
		n := r.packets[e.Fault]
		r.mu.Unlock()
		return e.within(int(n)), fmt.Sprintf("fault %s hit %d packets, want %s", e.Fault, n, e.want())
	case "seen":
		seen := map[tcpstate.State]bool{}
		for _, ns := range []*harness.Namespace{r.pair.Client.NS, r.pair.Server.NS} {
			for _, tl := range r.o.Recorder.Timelines(ns) {
				for _, s := range tl.Path() {
					seen[s] = true
				}
			}
		}
		var missing []string
		for _, s := range e.States {
			if !seen[s] {
				missing = append(missing, s.String())
			}
		}
		if len(missing) > 0 {
			return false, "never seen: " + strings.Join(missing, ", ")
		}
		return true, fmt.Sprintf("all %d states seen", len(e.States))
	}
	return false, "unknown expectation " + e.Kind
}

func (r *run) timeline(name string) harness.Timeline {
	e := r.sockets[name]
	if e == nil {
		return harness.Timeline{}
	}
	return r.o.Recorder.Timeline(e)
}

// count asks sock_diag how many of the host's sockets are in state,
// timewait and request sockets included (what `ss -tan` would list).
func (r *run) count(host string, s tcpstate.State) (int, error) {
	h := r.pair.Client
	if host == "server" {
		h = r.pair.Server
	}
	d, err := h.NS.NewDiag()
	if err != nil {
		return 0, err
	}
	defer func() { _ = d.Close() }()
	mask := s.Mask()
	if s == tcpstate.SynRecv {
		mask |= tcpstate.NewSynRecv.Mask()
	}
	socks, err := d.Sockets(mask)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, x := range socks {
		if x.State == s {
			n++
		}
	}
	return n, nil
}

func (e *Expectation) within(n int) bool {
	if e.hasN {
		return n == e.N
	}
	return n >= e.AtLeast && (e.AtMost < 0 || n <= e.AtMost)
}

func (e *Expectation) want() string {
	switch {
	case e.hasN:
		return fmt.Sprint(e.N)
	case e.AtMost < 0:
		return fmt.Sprintf("at least %d", e.AtLeast)
	}
	return fmt.Sprintf("%d to %d", e.AtLeast, e.AtMost)
}

// subsequence reports whether want appears in got in order.
func subsequence(got, want []tcpstate.State) bool {
	i := 0
	for _, s := range got {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}
