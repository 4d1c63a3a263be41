package harness

import (
	"errors"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
)

// poller reads sock_diag for the namespaces that need it: in ModeTrace the
// ones holding timewait sockets (the tracepoint cannot see those), in
// ModePoll all of them. A kick (a possible new timewait socket, or Sync)
// polls at once instead of waiting for the tick.
func (r *Recorder) poller() {
	defer close(r.done)
	tick := time.NewTicker(r.opts.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
		case <-r.kick:
		}
		r.pollOnce()
		r.rounds.Add(1)
	}
}

func (r *Recorder) pollRound() uint64 { return r.rounds.Load() }

func (r *Recorder) pollOnce() {
	r.mu.Lock()
	var todo []*space
	for _, sp := range r.spaces {
		if sp.polling || len(sp.watch) > 0 {
			todo = append(todo, sp)
		}
	}
	r.mu.Unlock()
	for _, sp := range todo {
		mask := tcpstate.TimeWait.Mask() | tcpstate.FinWait2.Mask()
		if sp.polling {
			mask = AllStates
		}
		t0 := Monotonic()
		socks, err := sp.diag.Sockets(mask)
		t1 := Monotonic()
		r.mu.Lock()
		switch {
		case errors.Is(err, ErrClosed): // unwatched meanwhile
		case err != nil:
			if r.failed == nil {
				r.failed = err
			}
		case sp.polling:
			r.mergePolled(sp, socks, t0, t1)
		default:
			r.mergeTimewait(sp, socks, t0, t1)
		}
		r.mu.Unlock()
	}
}

// mergeTimewait follows the timewait mini-sockets of traced connections.
// The traced X -> CLOSE becomes X -> TIME_WAIT when a timewait socket took
// the connection over; an orphan waiting out tcp_fin_timeout stays in
// FIN_WAIT2 (the timewait socket's substate). Later snapshots add the
// substate change FIN_WAIT2 -> TIME_WAIT and the final -> CLOSED, each
// stamped with the snapshot that saw it and the window it may lie in.
func (r *Recorder) mergeTimewait(sp *space, socks []DiagSocket, t0, t1 time.Duration) {
	tw := make(map[uint64]tcpstate.State, len(socks))
	for _, d := range socks {
		if d.Timewait() {
			tw[d.Cookie] = d.State
		}
	}
	for ck, c := range sp.watch {
		st, ok := tw[ck]
		if c.pending {
			// The timewait socket is hashed before the X -> CLOSE event
			// fires, so only a snapshot begun after the event can tell.
			if t0 <= c.trans[len(c.trans)-1].At {
				continue
			}
			c.pending = false
			if !ok {
				delete(sp.watch, ck) // a real close: no timewait socket
				continue
			}
			last := &c.trans[len(c.trans)-1]
			if st == tcpstate.FinWait2 && last.From == tcpstate.FinWait2 {
				c.trans = c.trans[:len(c.trans)-1] // still FIN_WAIT2, as a timewait socket
			} else {
				last.To = st
			}
			c.twState, c.closed, c.seenAt = st, false, t0
			continue
		}
		switch {
		case !ok:
			c.trans = append(c.trans, Transition{From: c.twState, To: tcpstate.Closed, At: t1, Window: t1 - c.seenAt, Source: Polled})
			c.twState, c.closed = tcpstate.Invalid, true
			delete(sp.watch, ck)
			continue
		case st != c.twState:
			c.trans = append(c.trans, Transition{From: c.twState, To: st, At: t1, Window: t1 - c.seenAt, Source: Polled})
			c.twState = st
		}
		c.seenAt = t0
	}
}

// mergePolled builds timelines from snapshots alone (ModePoll).
func (r *Recorder) mergePolled(sp *space, socks []DiagSocket, t0, t1 time.Duration) {
	window := t1 - sp.lastT0
	if sp.lastT0 == 0 {
		window = 0
	}
	present := make(map[uint64]bool, len(socks))
	for _, d := range socks {
		present[d.Cookie] = true
		c := r.conns[d.Cookie]
		if c == nil {
			c = r.newConn(sp, d.Cookie)
			c.local, c.remote = d.Local, d.Remote
			c.trans = append(c.trans, Transition{From: tcpstate.Closed, To: d.State, At: t1, Window: window, Source: Polled})
			sp.watch[d.Cookie] = c
		} else if cur := c.trans[len(c.trans)-1].To; cur != d.State {
			c.trans = append(c.trans, Transition{From: cur, To: d.State, At: t1, Window: t1 - c.seenAt, Source: Polled})
		}
		c.seenAt = t0
	}
	for ck, c := range sp.watch {
		if !present[ck] {
			c.trans = append(c.trans, Transition{From: c.trans[len(c.trans)-1].To, To: tcpstate.Closed, At: t1, Window: t1 - c.seenAt, Source: Polled})
			c.closed = true
			delete(sp.watch, ck)
		}
	}
	sp.lastT0 = t0
}
