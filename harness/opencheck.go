package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
)

// vanishWait is how long a socket sock_diag no longer has may take to
// report its last transition: the kernel unhashes a closing socket just
// before the tracepoint fires, and a process can be preempted in between.
const vanishWait = 100 * time.Millisecond

// checkOpen looks up, by 4-tuple and cookie, every traced socket whose
// timeline says it is still open (listeners and sockets followed as
// timewait or request sockets aside). One the kernel no longer has, and
// whose last transition does not arrive within vanishWait, lost its last
// transitions without any counter noticing (see tracer.go): it is counted
// in Stats.Vanished and fails Sync.
func (r *Recorder) checkOpen(ctx context.Context, spaces []*space) error {
	if r.tracer == nil {
		return nil
	}
	var gone []uint64
	for sp, ks := range r.openKeys(spaces) {
		var found []DiagSocket
		var err error
		if ks.untupled {
			// A socket that never got past SYN_SENT may not have shown
			// its port: only a dump finds it.
			found, err = sp.diag.Sockets(AllStates)
		} else {
			found, err = sp.diag.LookupAll(ks.keys)
		}
		if errors.Is(err, ErrClosed) {
			continue // unwatched meanwhile
		}
		if err != nil {
			return fmt.Errorf("check open sockets: %w", err)
		}
		have := make(map[uint64]bool, len(found))
		for _, s := range found {
			have[s.Cookie] = true
		}
		for _, k := range ks.keys {
			if !have[k.Cookie] {
				gone = append(gone, k.Cookie)
			}
		}
	}
	deadline := time.Now().Add(vanishWait)
	for len(gone) > 0 {
		if err := r.drained(ctx); err != nil {
			return err
		}
		gone = r.stillOpen(gone)
		if len(gone) == 0 || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return fmt.Errorf("sync recorder: %w", err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ck := range gone {
		c := r.conns[ck]
		if c == nil {
			continue
		}
		c.gone = true // counted once
		r.vanished++
		last := c.trans[len(c.trans)-1]
		c.space.lost(fmt.Sprintf("socket %d %s -> %s is %s in its timeline, gone from the kernel", ck, c.local, c.remote, last.To))
	}
	return nil
}

// openSockets are a namespace's open traced sockets; untupled says some
// have no known port.
type openSockets struct {
	keys     []SocketKey
	untupled bool
}

// openKeys lists the spaces' open traced sockets to look for.
func (r *Recorder) openKeys(spaces []*space) map[*space]*openSockets {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[*space]*openSockets{}
	for _, sp := range spaces {
		o := &openSockets{}
		for _, ck := range sp.order {
			c := r.conns[ck]
			if c == nil || !r.isOpenTraced(c) {
				continue
			}
			o.keys = append(o.keys, SocketKey{c.local, c.remote, ck})
			if !c.local.IsValid() || c.local.Port() == 0 || !c.remote.IsValid() || c.remote.Port() == 0 {
				o.untupled = true
			}
		}
		if len(o.keys) > 0 {
			out[sp] = o
		}
	}
	return out
}

// isOpenTraced says whether c is a full socket whose timeline, all traced,
// ends in a state other than CLOSED or LISTEN; the caller holds r.mu.
func (r *Recorder) isOpenTraced(c *conn) bool {
	if c.closed || c.gone || c.pending || c.request || len(c.trans) == 0 || c.space.polling {
		return false
	}
	if _, followed := c.space.watch[c.cookie]; followed {
		return false
	}
	last := c.trans[len(c.trans)-1]
	return last.Source == Traced && last.To != tcpstate.Listen && last.To != tcpstate.Closed
}

// stillOpen returns those of cookies whose timelines are still open.
func (r *Recorder) stillOpen(cookies []uint64) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, ck := range cookies {
		if c := r.conns[ck]; c != nil && r.isOpenTraced(c) {
			out = append(out, ck)
		}
	}
	return out
}
