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
			// Let a burst of close events gather into one round.
			select {
			case <-r.stop:
				return
			case <-time.After(kickGap):
			}
		}
		r.pollOnce()
		r.rounds.Add(1)
	}
}

// kickGap is how long a kicked poller waits for more close events before
// it looks: one round then checks them all.
const kickGap = time.Millisecond

func (r *Recorder) pollRound() uint64 { return r.rounds.Load() }

// lookupLimit is how many followed sockets a namespace may have before a
// dump is cheaper than one hash lookup each: a dump walks every bucket of
// the machine's established hash (262,144 here), whatever the namespace
// holds.
const lookupLimit = 256

// snapshot reads what the merge needs: in ModePoll every socket; else the
// followed timewait sockets, by lookup when they are few. covered names the
// cookies looked up; nil means a dump, which covers every socket.
func (r *Recorder) snapshot(sp *space) (socks []DiagSocket, covered map[uint64]bool, err error) {
	dump := func() ([]DiagSocket, map[uint64]bool, error) {
		socks, err := sp.diag.Sockets(tcpstate.TimeWait.Mask() | tcpstate.FinWait2.Mask())
		return socks, nil, err
	}
	if sp.polling {
		socks, err := sp.diag.Sockets(AllStates)
		return socks, nil, err
	}
	r.mu.Lock()
	if len(sp.watch) == 0 {
		r.mu.Unlock()
		return nil, map[uint64]bool{}, nil // nothing to look for
	}
	var keys []SocketKey
	if len(sp.watch) <= lookupLimit {
		for ck, c := range sp.watch {
			keys = append(keys, SocketKey{c.local, c.remote, ck})
		}
	}
	r.mu.Unlock()
	if keys == nil {
		return dump()
	}
	covered = make(map[uint64]bool, len(keys))
	for _, k := range keys {
		if !k.Local.IsValid() || k.Local.Port() == 0 {
			return dump() // no tuple known: only a dump can find it
		}
		covered[k.Cookie] = true
	}
	if socks, err = sp.diag.LookupAll(keys); err != nil {
		return nil, nil, err
	}
	return socks, covered, nil
}

func (r *Recorder) pollOnce() {
	r.mu.Lock()
	var todo []*space
	for _, sp := range r.spaces {
		if sp.polling || len(sp.watch) > 0 || sp.requests != nil {
			todo = append(todo, sp)
		}
	}
	r.mu.Unlock()
	for _, sp := range todo {
		// sock_diag is read without the lock: event delivery goes on.
		t0 := Monotonic()
		socks, covered, err := r.snapshot(sp)
		t1 := Monotonic()
		r.mu.Lock()
		followRequests := sp.requests != nil && !sp.polling // polling sees them anyway
		switch {
		case err != nil:
			r.noteFailure(err)
		case sp.polling:
			r.mergePolled(sp, socks, t0, t1)
		default:
			r.mergeTimewait(sp, socks, covered, t0, t1)
		}
		r.mu.Unlock()
		if err != nil || !followRequests {
			continue
		}
		t0 = Monotonic()
		reqs, err := sp.diag.Sockets(tcpstate.SynRecv.Mask() | tcpstate.NewSynRecv.Mask())
		t1 = Monotonic()
		r.mu.Lock()
		if err != nil {
			r.noteFailure(err)
		} else {
			r.mergeRequests(sp, reqs, t0, t1)
		}
		r.mu.Unlock()
	}
}

// noteFailure keeps the first sock_diag failure for Sync to report; a
// namespace unwatched meanwhile is not one. The caller holds r.mu.
func (r *Recorder) noteFailure(err error) {
	if !errors.Is(err, ErrClosed) && r.failed == nil {
		r.failed = err
	}
}

// TimewaitLen is TCP_TIMEWAIT_LEN (include/net/tcp.h): how long TIME_WAIT
// lasts. No sysctl changes it.
const TimewaitLen = 60 * time.Second

// mergeTimewait follows the timewait mini-sockets of traced connections.
// The traced X -> CLOSE becomes X -> TIME_WAIT when a timewait socket took
// the connection over; an orphan waiting out tcp_fin_timeout stays in
// FIN_WAIT2 (the timewait socket's substate). Later snapshots add the
// substate change FIN_WAIT2 -> TIME_WAIT and the final -> CLOSED.
//
// Entering TIME_WAIT (re)arms a 60 s timer, so a snapshot dates that entry
// from idiag_expires to within a jiffy or two, however late it looks; the
// exit is stamped with the first snapshot that no longer has the socket
// and the window since the last one that did.
//
// covered names the sockets the snapshot looked for (nil: all of them); a
// followed socket it did not look for is left for the next one.
func (r *Recorder) mergeTimewait(sp *space, socks []DiagSocket, covered map[uint64]bool, t0, t1 time.Duration) {
	tw := make(map[uint64]DiagSocket, len(socks))
	for _, d := range socks {
		if d.Timewait() {
			tw[d.Cookie] = d
		}
	}
	for ck, c := range sp.watch {
		if covered != nil && !covered[ck] {
			continue
		}
		d, ok := tw[ck]
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
			r.resolvePending(c, d, t0, t1)
			c.twState, c.closed, c.seenAt = d.State, false, t0
			continue
		}
		switch {
		case !ok:
			c.trans = append(c.trans, Transition{From: c.twState, To: tcpstate.Closed, At: t1, Window: t1 - c.seenAt, Source: Polled})
			c.twState, c.closed = tcpstate.Invalid, true
			delete(sp.watch, ck)
			continue
		case d.State != c.twState:
			lo, hi := timewaitArmed(d, t0, t1)
			lo = max(lo, c.seenAt)
			hi = max(min(hi, t1), lo)
			c.trans = append(c.trans, Transition{From: c.twState, To: d.State, At: hi, Window: hi - lo, Source: Polled})
			c.twState = d.State
		}
		c.seenAt = t0
	}
}

// sameChain bounds the time between an orphan's FIN_WAIT1 -> FIN_WAIT2 (or
// the FIN_WAIT2 -> FIN_WAIT2 of close() after shutdown) and the FIN_WAIT2 ->
// CLOSE of tcp_time_wait(FIN_WAIT2): one call chain in one softirq or
// syscall, microseconds apart. A FIN_WAIT2 -> CLOSE that comes later was
// the peer's FIN reaching the full socket: a direct TIME_WAIT.
const sameChain = time.Millisecond

// resolvePending rewrites a traced X -> CLOSE now that the timewait socket
// d is known to have taken the connection over.
func (r *Recorder) resolvePending(c *conn, d DiagSocket, t0, t1 time.Duration) {
	n := len(c.trans)
	last := &c.trans[n-1]
	switch {
	case d.State == tcpstate.FinWait2 && last.From == tcpstate.FinWait2:
		c.trans = c.trans[:n-1] // still FIN_WAIT2, now as a timewait socket
	case d.State == tcpstate.TimeWait && last.From == tcpstate.FinWait2 && c.peerFin == finArrived:
		// The peer's FIN had arrived when the full socket closed: it
		// went to TIME_WAIT right then (tcp_fin -> tcp_time_wait). When
		// FIN and ACK come in one segment, Linux sets FIN_WAIT2 on the
		// ACK and TIME_WAIT on the FIN, microseconds apart.
		last.To = tcpstate.TimeWait
	case d.State == tcpstate.TimeWait && last.From == tcpstate.FinWait2 && (c.peerFin == finNotYet ||
		c.peerFin == finUnknown && n >= 2 && last.At-c.trans[n-2].At <= sameChain):
		// An orphan's FIN_WAIT2 timewait socket got the peer's FIN
		// before this snapshot (or, where SOCK_DONE cannot be read,
		// FIN and ACK may have come together). The 60 s timer was
		// armed on entering TIME_WAIT: date it from what remains, and
		// keep the window.
		lo, hi := timewaitArmed(d, t0, t1)
		lo = max(lo, last.At)
		hi = max(min(hi, t1), lo)
		c.trans[n-1] = Transition{From: tcpstate.FinWait2, To: tcpstate.TimeWait, At: hi, Window: hi - lo, Source: Polled}
	default:
		last.To = d.State
	}
}

// timewaitArmed bounds when the TIME_WAIT timer of d was armed: the kernel
// set it to jiffies + TCP_TIMEWAIT_LEN, and the snapshot, read between t0
// and t1, reports what is left in milliseconds of whole jiffies.
func timewaitArmed(d DiagSocket, t0, t1 time.Duration) (lo, hi time.Duration) {
	if d.State != tcpstate.TimeWait || d.Expires <= 0 {
		return 0, t1
	}
	j := Jiffy()
	return t0 + d.Expires - TimewaitLen - j, t1 + d.Expires - TimewaitLen + j
}

// mergeRequests follows request sockets: they appear, count their SYN-ACK
// retransmissions and go, all seen only by sock_diag.
func (r *Recorder) mergeRequests(sp *space, socks []DiagSocket, t0, t1 time.Duration) {
	present := map[uint64]bool{}
	for _, d := range socks {
		if !d.Request() {
			continue
		}
		present[d.Cookie] = true
		c := sp.requests[d.Cookie]
		if full := r.conns[d.Cookie]; c == nil && full != nil && !full.request {
			r.lateRequest(full, d, t1, t1-sp.lastReq)
			continue
		}
		if c == nil {
			c = r.newConn(sp, d.Cookie)
			c.request, c.local, c.remote = true, d.Local, d.Remote
			c.trans = append(c.trans, Transition{From: tcpstate.Closed, To: tcpstate.SynRecv, At: t1, Window: t1 - sp.lastReq, Source: Polled})
			sp.requests[d.Cookie] = c
		}
		c.retrans, c.seenAt = d.Retrans, t0
	}
	for ck, c := range sp.requests {
		if !present[ck] {
			c.trans = append(c.trans, Transition{From: tcpstate.SynRecv, To: tcpstate.Closed, At: t1, Window: t1 - c.seenAt, Source: Polled})
			c.closed = true
			delete(sp.requests, ck)
		}
	}
	sp.lastReq = t0
}

// lateRequest merges a snapshot that saw a request socket after the trace
// of the socket accepted from it was delivered (the snapshot was read
// before the handshake ended, the trace merged first). The request is not
// followed again: it is the accepted socket's past. Its timeline then reads
// as if the snapshot had come first: CLOSED -> SYN_RECV dated by the
// snapshot where that is earlier than the traced creation, and the
// request's SYN-ACK retransmits.
func (r *Recorder) lateRequest(c *conn, d DiagSocket, at, window time.Duration) {
	c.retrans = max(c.retrans, d.Retrans)
	if len(c.trans) == 0 || c.trans[0].To != tcpstate.SynRecv || c.trans[0].At <= at {
		return
	}
	c.trans[0] = Transition{From: tcpstate.Closed, To: tcpstate.SynRecv, At: at, Window: window, Source: Polled}
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
