package scenarios

import (
	"time"

	"github.com/tcplab/tcplab/faults"
)

// window is when a fault was active in a run.
type window struct {
	fault      *Fault
	start, end time.Time // end zero: still active at the end
}

// markFates replays the capture against the faults active when each
// frame crossed: what a filter rule dropped (its counter decides the same
// way, packet by packet), what a queue held or delayed, what crossed
// while netem was on.
func markFates(frames []Frame, windows []window) {
	counts := make([]int, len(windows))
	for i := range frames {
		f := &frames[i]
		if f.TCP == nil {
			continue
		}
		dir := faults.ClientToServer
		if f.FromSide == "server" {
			dir = faults.ServerToClient
		}
		for wi, w := range windows {
			if f.At.Before(w.start) || (!w.end.IsZero() && f.At.After(w.end)) {
				continue
			}
			m, sel, verb, ok := matchOf(w.fault.Value)
			if !ok || !m.Matches(*f.TCP, dir) {
				continue
			}
			n := counts[wi]
			counts[wi]++
			if sel.Selects(n) {
				f.Fate = verb + " by " + w.fault.ID
				break
			}
		}
	}
}

// matchOf is what a fault acts on, and what it does to the packets.
func matchOf(v faults.Fault) (faults.Match, faults.Select, string, bool) {
	switch f := v.(type) {
	case faults.Drop:
		return f.Match, f.Select, "dropped", true
	case faults.Reject:
		return f.Match, f.Select, "rejected", true
	case faults.Blackhole:
		return faults.Match{Dir: f.Dir, AnyProtocol: true}, faults.Select{}, "dropped", true
	case faults.Partition:
		return faults.Match{Dir: faults.Both, AnyProtocol: true}, faults.Select{}, "dropped", true
	case faults.Hold:
		return f.Match, faults.Select{}, "held", true
	case faults.Delay:
		return faults.Match{Dir: f.Dir, AnyProtocol: true}, faults.Select{}, "delayed", true
	case faults.Netem:
		return faults.Match{Dir: f.Dir, AnyProtocol: true}, faults.Select{}, "through netem", true
	}
	return faults.Match{}, faults.Select{}, "", false
}
