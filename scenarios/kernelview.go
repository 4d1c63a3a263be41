package scenarios

import (
	"fmt"
	"slices"

	"github.com/tcplab/tcplab/harness"
)

// kernelView is what the kernel itself says about the lab when a run
// fails: the recorder's counters and every socket sock_diag shows in each
// namespace (what `ss -tan` would print there), so that a timeline at odds
// with the kernel is plain to see in the report.
func (r *run) kernelView() []string {
	var out []string
	if st, err := r.o.Recorder.Stats(); err != nil {
		out = append(out, fmt.Sprintf("recorder stats: %v", err))
	} else {
		out = append(out, fmt.Sprintf("recorder: seen %d received %d lost %d, rescued %d, duplicates %d, unattributed %d",
			st.Seen, st.Received, st.Failed, st.PrimaryMisses, st.Duplicates, st.Unattributed))
	}
	for _, h := range []struct {
		name string
		host *harness.Host
	}{{"client", r.pair.Client}, {"server", r.pair.Server}} {
		socks, err := diagSockets(h.host)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: sock_diag: %v", h.name, err))
			continue
		}
		if len(socks) == 0 {
			out = append(out, h.name+": no sockets")
		}
		for _, s := range socks {
			line := fmt.Sprintf("%s: %-11s %s -> %s cookie %d", h.name, s.State, s.Local, s.Remote, s.Cookie)
			if s.Timer != 0 {
				line += fmt.Sprintf(" timer %d in %v, %d retransmits", s.Timer, s.Expires, s.Retrans)
			}
			if s.Timewait() {
				line += " (timewait socket)"
			}
			out = append(out, line)
		}
	}
	return out
}

func diagSockets(h *harness.Host) ([]harness.DiagSocket, error) {
	d, err := h.NS.NewDiag()
	if err != nil {
		return nil, err
	}
	defer func() { _ = d.Close() }()
	socks, err := d.Sockets(harness.AllStates)
	slices.SortFunc(socks, func(a, b harness.DiagSocket) int { return int(a.State) - int(b.State) })
	return socks, err
}
