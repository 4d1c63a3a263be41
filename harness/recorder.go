package harness

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
)

// Mode says where a Recorder's transitions come from.
type Mode uint8

const (
	// ModeTrace: every transition of a full socket from the tracepoint,
	// timewait mini-sockets from sock_diag.
	ModeTrace Mode = iota + 1
	// ModePoll: sock_diag snapshots only. Transient states (SYN_SENT,
	// FIN_WAIT1, CLOSING, LAST_ACK) are mostly missed.
	ModePoll
)

func (m Mode) String() string {
	if m == ModePoll {
		return "sock_diag polling"
	}
	return "tracepoint+sock_diag"
}

// RecorderOptions configures NewRecorder; the zero value is the default.
type RecorderOptions struct {
	// PollInterval is how often sock_diag is read while a namespace has
	// timewait sockets (or always, in ModePoll). Default 10ms: small
	// against the timer wheel's slack on a 60 s timer.
	PollInterval time.Duration
	// ForcePoll disables tracing, as on a machine without BTF or BPF.
	// TCPLAB_NO_TRACE=1 in the environment does the same.
	ForcePoll bool
	// RingSize is the tracer's ring buffer in bytes, a power of two of at
	// least a page. Default RingSize.
	RingSize int
	// MaxConns bounds the timelines kept per namespace. Past it the
	// oldest closed connections are forgotten (and counted). Default 1<<17.
	MaxConns int
}

// Recorder keeps one timeline per connection in the namespaces it watches.
// One Recorder serves a whole process: Watch each lab namespace, drive the
// sockets, read Timeline(endpoint). It attributes by namespace cookie and
// socket cookie, so identical addresses in other namespaces or processes
// never mix in.
type Recorder struct {
	opts   RecorderOptions
	mode   Mode
	reason string // why ModePoll, when it is
	tracer *tracer

	mu           sync.Mutex
	spaces       map[uint64]*space
	conns        map[uint64]*conn
	unattributed uint64
	evicted      uint64
	duplicates   uint64
	gaps         uint64 // traced transitions that did not start where the last ended
	vanished     uint64 // open timelines of sockets the kernel no longer has
	failed       error

	rounds atomic.Uint64 // poll rounds done
	kick   chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

type space struct {
	ns       *Namespace
	diag     *Diag
	requests map[uint64]*conn // followed request sockets, by cookie; nil: not followed
	order    []uint64         // connection cookies, oldest first
	watch    map[uint64]*conn // timewait (or polled) sockets to follow
	lastT0   time.Duration
	lastReq  time.Duration // start of the last request-socket snapshot
	polling  bool
	// Transitions lost in this namespace that no counter saw (Gaps and
	// Vanished in Stats), and the first of them, for Sync's error.
	losses    int
	firstLoss string
}

// lost notes a loss in the namespace; the caller holds r.mu.
func (sp *space) lost(what string) {
	if sp.losses++; sp.losses == 1 {
		sp.firstLoss = what
	}
}

type conn struct {
	cookie  uint64
	space   *space
	local   netip.AddrPort
	remote  netip.AddrPort
	trans   []Transition
	pending bool           // an X -> CLOSE that may have left a timewait socket
	peerFin finKnowledge   // at that X -> CLOSE, had the peer's FIN arrived?
	twState tcpstate.State // substate while a timewait socket, else Invalid
	seenAt  time.Duration  // start of the last snapshot that saw it
	closed  bool
	gone    bool  // open in its timeline, gone from the kernel (see checkOpen)
	request bool  // a request socket (TCP_NEW_SYN_RECV), seen only by sock_diag
	retrans uint8 // SYN-ACKs sent again, for a request socket
}

// finKnowledge is what the tracer read of SOCK_DONE at a close.
type finKnowledge uint8

const (
	finUnknown finKnowledge = iota // BTF did not tell where SOCK_DONE is
	finNotYet
	finArrived
)

func finOf(peerFin uint8) finKnowledge {
	switch peerFin {
	case peerFinUnknown:
		return finUnknown
	case 1:
		return finArrived
	}
	return finNotYet
}

// NewRecorder starts recording. It loads the tracepoint program unless
// tracing is unavailable or disabled; then it falls back to sock_diag
// polling and says why in Reason.
func NewRecorder(opts RecorderOptions) (*Recorder, error) {
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	if opts.RingSize <= 0 {
		opts.RingSize = RingSize
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 1 << 17
	}
	r := &Recorder{
		opts:   opts,
		spaces: map[uint64]*space{},
		conns:  map[uint64]*conn{},
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	switch {
	case opts.ForcePoll:
		r.mode, r.reason = ModePoll, "tracing disabled by RecorderOptions.ForcePoll"
	case os.Getenv("TCPLAB_NO_TRACE") == "1":
		r.mode, r.reason = ModePoll, "tracing disabled by TCPLAB_NO_TRACE=1"
	default:
		t, err := newTracer(r.deliver, opts.RingSize)
		if err != nil {
			r.mode, r.reason = ModePoll, fmt.Sprintf("tracepoint unavailable: %v", err)
		} else {
			r.mode, r.tracer = ModeTrace, t
		}
	}
	go r.poller()
	return r, nil
}

// Mode reports where transitions come from.
func (r *Recorder) Mode() Mode { return r.mode }

// Reason says why the recorder polls instead of tracing ("" when tracing).
func (r *Recorder) Reason() string { return r.reason }

// Watch starts recording a namespace.
func (r *Recorder) Watch(ns *Namespace) error {
	d, err := ns.NewDiag()
	if err != nil {
		return fmt.Errorf("watch %s: %w", ns, err)
	}
	r.mu.Lock()
	r.spaces[ns.Cookie()] = &space{ns: ns, diag: d, watch: map[uint64]*conn{}, polling: r.mode == ModePoll}
	r.mu.Unlock()
	if r.tracer != nil {
		if err := r.tracer.watch(ns.Cookie(), true); err != nil {
			return fmt.Errorf("watch %s: %w", ns, err)
		}
	}
	return nil
}

// WatchPair watches both hosts of a pair.
func (r *Recorder) WatchPair(p *Pair) error {
	return errors.Join(r.Watch(p.Client.NS), r.Watch(p.Server.NS))
}

// Unwatch stops recording a namespace and forgets its timelines.
func (r *Recorder) Unwatch(ns *Namespace) error {
	var err error
	if r.tracer != nil {
		err = r.tracer.watch(ns.Cookie(), false)
	}
	r.mu.Lock()
	sp := r.spaces[ns.Cookie()]
	delete(r.spaces, ns.Cookie())
	if sp != nil {
		for _, c := range sp.order {
			delete(r.conns, c)
		}
	}
	r.mu.Unlock()
	if sp != nil {
		err = errors.Join(err, sp.diag.Close())
	}
	return err
}

// deliver is called by the tracer for every event, in ring order: for one
// socket that is the order the kernel made them in.
func (r *Recorder) deliver(ev *event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sp := r.spaces[ev.netCookie]
	if sp == nil {
		r.unattributed++
		return
	}
	c := r.conns[ev.cookie]
	if c == nil {
		c = r.newConn(sp, ev.cookie)
		if ev.from == tcpstate.SynRecv {
			// An accepted socket whose creation the kernel did not trace.
			c.trans = append(c.trans, Transition{From: tcpstate.Listen, To: tcpstate.SynRecv, At: time.Duration(ev.ts), Source: Born})
		}
	}
	if c.request && r.becomeFull(sp, c, ev) {
		return
	}
	if n := len(c.trans); n > 0 && c.trans[n-1].To == tcpstate.Listen && ev.from == tcpstate.Listen && ev.to == tcpstate.SynRecv {
		// A listener never goes to SYN_RECV itself: this is the clone of
		// an accepted socket reporting its first state with its
		// listener's cookie, as Linux 6.1 does (later kernels give the
		// child its own at once). The child's next transitions carry its
		// own cookie and start its timeline, from SYN_RECV.
		return
	}
	if n := len(c.trans); n > 0 && c.trans[n-1].Source == Traced {
		last := c.trans[n-1]
		switch {
		case last.From == ev.from && last.To == ev.to:
			// Both copies of the program recorded this hit (see role): a
			// change of state cannot repeat itself.
			r.duplicates++
			return
		case last.To != ev.from && n >= 2 && c.trans[n-2].From == ev.from && c.trans[n-2].To == ev.to:
			// The same, with the socket's next hit recorded in between
			// (the rescue copy's run was interrupted by it).
			r.duplicates++
			return
		case last.To != ev.from:
			// The kernel moved the socket through a state the trace
			// never showed: a transition is missing, and the counters
			// did not see it go.
			r.gaps++
			sp.lost(fmt.Sprintf("socket %d went %s -> %s, then %s -> %s", c.cookie, last.From, last.To, ev.from, ev.to))
		}
	}
	if ev.local.Port() != 0 || !c.local.IsValid() {
		c.local = ev.local // SYN_SENT knows its address before its port
	}
	if ev.remote.Port() != 0 {
		c.remote = ev.remote
	}
	c.trans = append(c.trans, Transition{From: ev.from, To: ev.to, At: time.Duration(ev.ts), Source: Traced})
	c.closed = ev.to == tcpstate.Closed
	if c.closed && (ev.from == tcpstate.FinWait1 || ev.from == tcpstate.FinWait2 || ev.from == tcpstate.Closing) {
		// tcp_time_wait() hands the connection to a timewait socket
		// before this event fires: sock_diag will show it, or not.
		c.pending, c.peerFin = true, finOf(ev.peerFin)
		sp.watch[c.cookie] = c
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// becomeFull handles the first traced event of a followed request socket:
// the accepted socket is cloned from the request and keeps its cookie, so
// the two are one connection. The clone's LISTEN -> SYN_RECV adds nothing
// to a connection already in SYN_RECV and is dropped (true returned); a
// SYN_RECV -> CLOSED that a snapshot concluded as the request vanished
// was this hand-over, not an end, and is taken back.
func (r *Recorder) becomeFull(sp *space, c *conn, ev *event) bool {
	c.request, c.closed = false, false
	delete(sp.requests, c.cookie)
	if n := len(c.trans); n > 0 && c.trans[n-1].Source == Polled && c.trans[n-1].To == tcpstate.Closed {
		c.trans = c.trans[:n-1]
	}
	return ev.from == tcpstate.Listen && ev.to == tcpstate.SynRecv
}

func (r *Recorder) newConn(sp *space, cookie uint64) *conn {
	c := &conn{cookie: cookie, space: sp}
	r.conns[cookie] = c
	sp.order = append(sp.order, cookie)
	if len(sp.order) > r.opts.MaxConns {
		r.evict(sp)
	}
	return c
}

// evict forgets the oldest closed connections until the namespace is back
// to 90 % of MaxConns (or nothing closed is left to forget).
func (r *Recorder) evict(sp *space) {
	target := r.opts.MaxConns * 9 / 10
	kept := sp.order[:0]
	excess := len(sp.order) - target
	for _, ck := range sp.order {
		if c := r.conns[ck]; excess > 0 && c != nil && c.closed && !c.pending {
			delete(r.conns, ck)
			r.evicted++
			excess--
			continue
		}
		kept = append(kept, ck)
	}
	clear(sp.order[len(kept):])
	sp.order = kept
}

// Timeline returns a snapshot of the endpoint's connection.
func (r *Recorder) Timeline(e *Endpoint) Timeline { return r.TimelineOf(e.Cookie()) }

// TimelineOf returns a snapshot of the connection with this socket cookie.
func (r *Recorder) TimelineOf(cookie uint64) Timeline {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := Timeline{Cookie: cookie, Mode: r.mode, Now: Monotonic()}
	if c := r.conns[cookie]; c != nil {
		t.Namespace = c.space.ns.String()
		t.Local, t.Remote = c.local, c.remote
		t.Request, t.Retransmits = c.request, int(c.retrans)
		// An X -> CLOSE still waiting for its timewait check may turn
		// out to be X -> TIME_WAIT: until the check, show the state
		// before it rather than a guess.
		n := len(c.trans)
		if c.pending {
			n--
		}
		t.Transitions = append([]Transition(nil), c.trans[:n]...)
	}
	return t
}

// FollowRequests makes the recorder follow the namespace's request
// sockets: the SYN_RECV entries a listener holds while it waits for the
// final ACK of a handshake, which pile up under a SYN flood. They fire no
// tracepoint, so only sock_diag sees them: each poll then dumps the
// namespace's sockets, a walk of the machine's whole established hash, so
// it is off unless a spec asks. Each request socket gets a timeline of its
// own (Request is true): CLOSED -> SYN_RECV when first seen, -> CLOSED when
// gone (answered, or given up after tcp_synack_retries), with the SYN-ACK
// retransmissions it made.
func (r *Recorder) FollowRequests(ns *Namespace) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sp := r.spaces[ns.Cookie()]
	if sp == nil {
		return fmt.Errorf("follow requests in %s: not watched", ns)
	}
	if sp.requests == nil {
		sp.requests = map[uint64]*conn{}
		sp.lastReq = Monotonic() // a request seen first may date from now on
	}
	return nil
}

// Timelines returns every connection recorded in a namespace, oldest first.
func (r *Recorder) Timelines(ns *Namespace) []Timeline {
	r.mu.Lock()
	sp := r.spaces[ns.Cookie()]
	var cookies []uint64
	if sp != nil {
		cookies = append(cookies, sp.order...)
	}
	r.mu.Unlock()
	out := make([]Timeline, 0, len(cookies))
	for _, c := range cookies {
		out = append(out, r.TimelineOf(c))
	}
	return out
}

// Stats counts what the recorder has handled.
type Stats struct {
	Seen, Received, Failed uint64 // kernel-side events, and what reached us
	// Recursion misses of the primary program (recorded by the rescue
	// copy instead) and of the rescue copy (harmless: the primary was free).
	PrimaryMisses, RescueMisses uint64
	Connections                 int    // timelines held
	Evicted                     uint64 // closed timelines forgotten past MaxConns
	Unattributed                uint64 // events for namespaces no longer watched
	Duplicates                  uint64 // hits both program copies recorded, dropped
	// Traced transitions that did not start in the state the last one
	// ended in: a transition went missing without any counter noticing.
	Gaps uint64
	// Open timelines of sockets the kernel no longer has, found by Sync:
	// their last transitions went missing the same way.
	Vanished uint64
}

// Stats returns the counters. Seen == Received + Failed once the ring is drained.
func (r *Recorder) Stats() (Stats, error) {
	var s Stats
	if r.tracer != nil {
		seen, failed, err := r.tracer.counts()
		if err != nil {
			return s, err
		}
		s.Seen, s.Failed, s.Received = seen, failed, r.tracer.received.Load()
		if s.PrimaryMisses, s.RescueMisses, err = r.tracer.misses(); err != nil {
			return s, err
		}
	}
	r.mu.Lock()
	s.Connections, s.Evicted, s.Unattributed, s.Duplicates = len(r.conns), r.evicted, r.unattributed, r.duplicates
	s.Gaps, s.Vanished = r.gaps, r.vanished
	r.mu.Unlock()
	return s, nil
}

// Sync waits until every event the kernel has produced so far has been
// received and every pending timewait check is done, then checks that the
// open timelines' sockets still exist. It returns an error wrapping
// ErrLostEvents if the kernel ever dropped an event, if a timeline lost
// transitions without any counter seeing it (a state skipped, or an open
// timeline whose socket is gone: Stats.Gaps, Stats.Vanished), or if the
// reader failed: the timelines are then suspect and the spec must fail.
//
// With namespaces, only their timelines are checked and only their
// losses reported (a dropped event, which cannot be placed, always is):
// a shared recorder then fails the spec whose lab lost events, not every
// spec after it.
func (r *Recorder) Sync(ctx context.Context, only ...*Namespace) error {
	if err := r.drained(ctx); err != nil {
		return err
	}
	// One full poll round after this point settles pending timewait checks.
	if err := r.settle(ctx); err != nil {
		return err
	}
	spaces := r.scope(only)
	if err := r.checkOpen(ctx, spaces); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := lossError(spaces); err != nil {
		return err
	}
	return r.failed
}

// scope returns the watched spaces of the namespaces, every watched space
// when none are named.
func (r *Recorder) scope(nss []*Namespace) []*space {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*space
	if len(nss) == 0 {
		for _, sp := range r.spaces {
			out = append(out, sp)
		}
		return out
	}
	for _, ns := range nss {
		if sp := r.spaces[ns.Cookie()]; sp != nil {
			out = append(out, sp)
		}
	}
	return out
}

// drained waits until every event the kernel has produced so far has been
// received; it fails if the kernel dropped any or the reader failed.
func (r *Recorder) drained(ctx context.Context) error {
	if r.tracer == nil {
		return nil
	}
	seen, failed, err := r.tracer.counts()
	if err != nil {
		return err
	}
	for r.tracer.received.Load()+failed < seen {
		if p := r.tracer.readErr.Load(); p != nil {
			return fmt.Errorf("%w: %w", ErrLostEvents, *p)
		}
		if err := sleepCtx(ctx, 200*time.Microsecond); err != nil {
			return fmt.Errorf("sync recorder: %w", err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d transitions dropped (ring buffer full)", ErrLostEvents, failed, seen)
	}
	return nil
}

// settle waits for two poll rounds: pending timewait checks are done.
func (r *Recorder) settle(ctx context.Context) error {
	want := r.pollRound() + 2
	for r.pollRound() < want {
		select {
		case r.kick <- struct{}{}:
		default:
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return fmt.Errorf("sync recorder: %w", err)
		}
	}
	return nil
}

// lossError reports the transitions lost in the spaces that no counter
// saw; the caller holds r.mu.
func lossError(spaces []*space) error {
	n, first := 0, ""
	for _, sp := range spaces {
		if sp.losses > 0 && first == "" {
			first = sp.firstLoss
		}
		n += sp.losses
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d timelines lost transitions no counter saw; the first: %s", ErrLostEvents, n, first)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Close stops recording and detaches the program.
func (r *Recorder) Close() error {
	select {
	case <-r.stop:
		return nil
	default:
	}
	close(r.stop)
	<-r.done
	var errs []error
	if r.tracer != nil {
		errs = append(errs, r.tracer.Close())
	}
	r.mu.Lock()
	for _, sp := range r.spaces {
		errs = append(errs, sp.diag.Close())
	}
	r.spaces = map[uint64]*space{}
	r.mu.Unlock()
	return errors.Join(errs...)
}
