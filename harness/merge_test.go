package harness

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
)

// These tests drive the merge logic with recorded event fixtures: no
// kernel, no privileges. They fix what a timeline says for each way a
// connection can end.

const ms = time.Millisecond

type fixture struct {
	t  *testing.T
	r  *Recorder
	sp *space
	// peerFin is the SOCK_DONE the events carry: unknown unless a test
	// sets it.
	peerFin uint8
}

func newFixture(t *testing.T) *fixture {
	r := &Recorder{
		opts:   RecorderOptions{MaxConns: 1 << 10},
		mode:   ModeTrace,
		spaces: map[uint64]*space{},
		conns:  map[uint64]*conn{},
		kick:   make(chan struct{}, 1),
	}
	sp := &space{ns: &Namespace{inode: 4026531000, cookie: 77}, watch: map[uint64]*conn{}}
	r.spaces[77] = sp
	return &fixture{t: t, r: r, sp: sp, peerFin: peerFinUnknown}
}

var (
	cli = netip.MustParseAddrPort("198.18.0.1:40000")
	srv = netip.MustParseAddrPort("198.18.0.2:8080")
)

// ev delivers the transition from -> to of socket cookie at time at.
func (f *fixture) ev(cookie uint64, at time.Duration, from, to tcpstate.State) {
	local := cli
	if to == tcpstate.Closed {
		local = netip.AddrPortFrom(cli.Addr(), 0) // skc_num is zeroed by then
	}
	f.r.deliver(&event{ts: int64(at), cookie: cookie, netCookie: 77, from: from, to: to, proto: 6, local: local, remote: srv, peerFin: f.peerFin})
}

// snap merges a sock_diag snapshot read between t0 and t1.
func (f *fixture) snap(t0, t1 time.Duration, socks ...DiagSocket) {
	f.r.mergeTimewait(f.sp, socks, nil, t0, t1)
}

func tw(cookie uint64, st tcpstate.State, expires time.Duration) DiagSocket {
	return DiagSocket{Family: IPv4, State: st, Cookie: cookie, Timer: 3, Expires: expires}
}

func (f *fixture) states(cookie uint64) []tcpstate.State { return f.r.TimelineOf(cookie).States() }

func (f *fixture) expectStates(cookie uint64, want ...tcpstate.State) {
	f.t.Helper()
	if got := f.states(cookie); !slices.Equal(got, want) {
		f.t.Fatalf("states %v, want %v\n%s", got, want, f.r.TimelineOf(cookie))
	}
}

// activeClose delivers a client's path up to FIN_WAIT2 -> CLOSE at closeAt.
func (f *fixture) activeClose(cookie uint64, fw2At, closeAt time.Duration) {
	f.ev(cookie, 1*ms, tcpstate.Closed, tcpstate.SynSent)
	f.ev(cookie, 2*ms, tcpstate.SynSent, tcpstate.Established)
	f.ev(cookie, 3*ms, tcpstate.Established, tcpstate.FinWait1)
	f.ev(cookie, fw2At, tcpstate.FinWait1, tcpstate.FinWait2)
	f.ev(cookie, closeAt, tcpstate.FinWait2, tcpstate.Closed)
}

func TestMergeDirectTimeWaitKeepsTheKernelTimestamp(t *testing.T) {
	f := newFixture(t)
	f.activeClose(1, 4*ms, 50*ms) // the peer's FIN came 46 ms after our FIN was acked
	f.snap(51*ms, 52*ms, tw(1, tcpstate.TimeWait, TimewaitLen-2*ms))
	f.expectStates(1, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.TimeWait)
	tl := f.r.TimelineOf(1)
	if e, _ := tl.Entered(tcpstate.TimeWait); e != 50*ms || tl.Transitions[4].Source != Traced {
		t.Fatalf("TIME_WAIT entry %v (%v), want the traced 50ms\n%s", e, tl.Transitions[4].Source, tl)
	}
	f.snap(60*time.Second+100*ms, 60*time.Second+101*ms, tw(1, tcpstate.TimeWait, 0))
	f.snap(62*time.Second, 62*time.Second+ms) // gone
	tl = f.r.TimelineOf(1)
	f.expectStates(1, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.TimeWait, tcpstate.Closed)
	lo, hi, ok := tl.DwellRange(tcpstate.TimeWait)
	// Exit between the last snapshot that saw it (begun 60.1 s) and the
	// first that did not (done 62.001 s); entry exactly at 50 ms.
	if !ok || lo != 60*time.Second+100*ms-50*ms || hi != 62*time.Second+ms-50*ms {
		t.Fatalf("dwell range [%v, %v] %v\n%s", lo, hi, ok, tl)
	}
}

func TestMergeOrphanStaysInFinWait2AsATimewaitSocket(t *testing.T) {
	f := newFixture(t)
	f.activeClose(2, 4*ms, 4*ms+20*time.Microsecond) // tcp_time_wait(FIN_WAIT2) in the same call chain
	if got := f.r.TimelineOf(2).Current(); got != tcpstate.FinWait2 {
		t.Fatalf("an unresolved X -> CLOSE must not show: current %v", got)
	}
	f.snap(5*ms, 6*ms, tw(2, tcpstate.FinWait2, 0))
	f.expectStates(2, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2)
	// tcp_fin_timeout expires: the timewait socket is gone.
	f.snap(2*time.Second, 2*time.Second+ms, tw(2, tcpstate.FinWait2, 0))
	f.snap(2*time.Second+10*ms, 2*time.Second+11*ms)
	f.expectStates(2, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.Closed)
	if tl := f.r.TimelineOf(2); tl.Dwell(tcpstate.FinWait2) != 2*time.Second+11*ms-4*ms {
		t.Fatalf("FIN_WAIT2 dwell %v\n%s", tl.Dwell(tcpstate.FinWait2), tl)
	}
}

func TestMergeOrphanThatGetsTheFinLaterEntersTimeWaitThen(t *testing.T) {
	f := newFixture(t)
	f.activeClose(3, 4*ms, 4*ms+20*time.Microsecond)
	f.snap(5*ms, 6*ms, tw(3, tcpstate.FinWait2, 0))
	// The peer's FIN arrives at 500 ms: the timer is re-armed for 60 s.
	f.snap(700*ms, 701*ms, tw(3, tcpstate.TimeWait, TimewaitLen-200*ms))
	tl := f.r.TimelineOf(3)
	f.expectStates(3, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.TimeWait)
	tr := tl.Transitions[len(tl.Transitions)-1]
	if tr.Source != Polled || tr.At-tr.Window > 500*ms || tr.At < 500*ms || tr.Window > 20*ms {
		t.Fatalf("FIN_WAIT2 -> TIME_WAIT should bracket 500ms within a few jiffies: %+v\n%s", tr, tl)
	}
}

func TestMergeAmbiguousTimeWaitIsWindowed(t *testing.T) {
	f := newFixture(t)
	// FIN_WAIT2 -> CLOSE right after FIN_WAIT1 -> FIN_WAIT2, and the first
	// snapshot already sees TIME_WAIT: FIN and ACK together, or an orphan
	// that got the FIN in between. The timeline must not pretend to know.
	f.activeClose(4, 4*ms, 4*ms+20*time.Microsecond)
	// 26 ms of the 60 s gone at 30..31 ms: armed between 0 and 9 ms
	// (a jiffy either way), which includes the close event.
	f.snap(30*ms, 31*ms, tw(4, tcpstate.TimeWait, TimewaitLen-26*ms))
	tl := f.r.TimelineOf(4)
	f.expectStates(4, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.TimeWait)
	tr := tl.Transitions[len(tl.Transitions)-1]
	if tr.Source != Polled || tr.At-tr.Window != 4*ms+20*time.Microsecond || tr.At > 10*ms {
		t.Fatalf("want a window from the close event to the timer's arming bound: %+v\n%s", tr, tl)
	}
}

func TestMergeNoTimewaitSocketMeansClosed(t *testing.T) {
	f := newFixture(t)
	f.activeClose(5, 4*ms, 50*ms) // tcp_max_tw_buckets overflow: no timewait socket
	f.snap(51*ms, 52*ms)
	f.expectStates(5, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.Closed)
	if len(f.sp.watch) != 0 {
		t.Fatalf("a closed connection is still watched")
	}
}

func TestMergeIgnoresSnapshotsBegunBeforeTheCloseEvent(t *testing.T) {
	f := newFixture(t)
	f.activeClose(6, 4*ms, 50*ms)
	f.snap(49*ms, 51*ms) // begun before the event: it cannot know
	if !f.r.conns[6].pending {
		t.Fatalf("pending check resolved by a snapshot begun before the event")
	}
	f.snap(52*ms, 53*ms, tw(6, tcpstate.TimeWait, TimewaitLen-2*ms))
	f.expectStates(6, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.TimeWait)
}

func TestMergeClosingGoesToTimeWait(t *testing.T) {
	f := newFixture(t)
	f.ev(7, 1*ms, tcpstate.Established, tcpstate.FinWait1)
	f.ev(7, 2*ms, tcpstate.FinWait1, tcpstate.Closing)
	f.ev(7, 3*ms, tcpstate.Closing, tcpstate.Closed)
	f.snap(4*ms, 5*ms, tw(7, tcpstate.TimeWait, TimewaitLen-ms))
	f.expectStates(7, tcpstate.FinWait1, tcpstate.Closing, tcpstate.TimeWait)
}

func TestMergeLastAckNeedsNoCheck(t *testing.T) {
	f := newFixture(t)
	f.ev(8, 1*ms, tcpstate.CloseWait, tcpstate.LastAck)
	f.ev(8, 2*ms, tcpstate.LastAck, tcpstate.Closed)
	if len(f.sp.watch) != 0 || f.r.conns[8].pending {
		t.Fatalf("LAST_ACK -> CLOSE never leaves a timewait socket")
	}
	f.expectStates(8, tcpstate.LastAck, tcpstate.Closed)
}

func TestTimelineKeepsSelfTransitionsOutOfTheStates(t *testing.T) {
	f := newFixture(t)
	f.ev(9, 1*ms, tcpstate.Established, tcpstate.FinWait1)
	f.ev(9, 2*ms, tcpstate.FinWait1, tcpstate.FinWait2)
	f.ev(9, 3*ms, tcpstate.FinWait2, tcpstate.FinWait2) // close() after shutdown(SHUT_WR)
	tl := f.r.TimelineOf(9)
	f.expectStates(9, tcpstate.FinWait1, tcpstate.FinWait2)
	if len(tl.Transitions) != 3 || !strings.Contains(tl.String(), "self-transition") {
		t.Fatalf("the self-transition must stay visible in Transitions\n%s", tl)
	}
	if !slices.Equal(tl.Path(), []tcpstate.State{tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2}) {
		t.Fatalf("path %v", tl.Path())
	}
}

func TestMergePolledBuildsTimelinesFromSnapshots(t *testing.T) {
	f := newFixture(t)
	f.r.mode, f.sp.polling = ModePoll, true
	full := func(st tcpstate.State) DiagSocket {
		return DiagSocket{Family: IPv4, State: st, Cookie: 10, Local: cli, Remote: srv, Inode: 1234}
	}
	f.r.mergePolled(f.sp, []DiagSocket{full(tcpstate.Established)}, 10*ms, 11*ms)
	f.r.mergePolled(f.sp, []DiagSocket{full(tcpstate.Established)}, 20*ms, 21*ms)
	f.r.mergePolled(f.sp, []DiagSocket{tw(10, tcpstate.TimeWait, TimewaitLen)}, 30*ms, 31*ms)
	f.r.mergePolled(f.sp, nil, 40*ms, 41*ms)
	f.expectStates(10, tcpstate.Established, tcpstate.TimeWait, tcpstate.Closed)
	tl := f.r.TimelineOf(10)
	if tl.Transitions[1].At != 31*ms || tl.Transitions[1].Window != 11*ms {
		t.Fatalf("polled change must be bracketed by the snapshots: %+v", tl.Transitions[1])
	}
	if tl.Local != cli || tl.Remote != srv {
		t.Fatalf("tuple %v %v", tl.Local, tl.Remote)
	}
}

func TestTimelineStateAt(t *testing.T) {
	f := newFixture(t)
	f.activeClose(11, 4*ms, 50*ms)
	f.snap(51*ms, 52*ms, tw(11, tcpstate.TimeWait, TimewaitLen))
	tl := f.r.TimelineOf(11)
	for at, want := range map[time.Duration]tcpstate.State{
		0: tcpstate.Closed, 1 * ms: tcpstate.SynSent, 2500 * time.Microsecond: tcpstate.Established,
		3 * ms: tcpstate.FinWait1, 10 * ms: tcpstate.FinWait2, 51 * ms: tcpstate.TimeWait,
	} {
		if got := tl.StateAt(at); got != want {
			t.Errorf("StateAt(%v) = %v, want %v", at, got, want)
		}
	}
	if tl.Local.Port() != 40000 {
		t.Errorf("the tuple must be the last one known before skc_num was zeroed: %v", tl.Local)
	}
}

func TestRecorderBoundsClosedTimelines(t *testing.T) {
	f := newFixture(t)
	f.r.opts.MaxConns = 100
	for i := range uint64(1000) {
		f.ev(1000+i, time.Duration(i)*ms, tcpstate.Established, tcpstate.FinWait1)
		f.ev(1000+i, time.Duration(i)*ms, tcpstate.CloseWait, tcpstate.Closed)
	}
	if n := len(f.r.conns); n > 100 {
		t.Fatalf("%d timelines kept, MaxConns is 100", n)
	}
	if f.r.evicted < 900 {
		t.Fatalf("evicted %d, want at least 900", f.r.evicted)
	}
	if len(f.r.TimelineOf(1999).Transitions) != 2 {
		t.Fatalf("the newest connection must be kept")
	}
}

func TestRecorderKeepsOpenConnectionsPastTheBound(t *testing.T) {
	f := newFixture(t)
	f.r.opts.MaxConns = 10
	for i := range uint64(50) {
		f.ev(i+1, time.Duration(i)*ms, tcpstate.SynSent, tcpstate.Established) // all open
	}
	if n := len(f.r.conns); n != 50 {
		t.Fatalf("open connections must never be forgotten: kept %d of 50", n)
	}
}

// A snapshot that looked up only some sockets must not judge the others: a
// close event delivered after the lookups were chosen is left pending.
func TestMergeJudgesOnlyTheSocketsASnapshotLookedFor(t *testing.T) {
	f := newFixture(t)
	f.activeClose(12, 4*ms, 50*ms)
	f.r.mergeTimewait(f.sp, nil, map[uint64]bool{99: true}, 51*ms, 52*ms)
	if !f.r.conns[12].pending {
		t.Fatal("a socket the snapshot did not look for was judged closed")
	}
	f.r.mergeTimewait(f.sp, []DiagSocket{tw(12, tcpstate.TimeWait, TimewaitLen)}, map[uint64]bool{12: true}, 53*ms, 54*ms)
	f.expectStates(12, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.TimeWait)
}

func request(cookie uint64) DiagSocket {
	return DiagSocket{Family: IPv4, State: tcpstate.SynRecv, Cookie: cookie, Local: srv, Remote: cli, Timer: 1, Retrans: 2}
}

// A request socket that vanishes from sock_diag just before the trace of
// its accepted socket arrives was handed over, not ended: the accepted
// socket keeps the request's cookie and the timeline reads SYN_RECV ->
// ESTABLISHED.
func TestMergeRequestHandsOverToTheAcceptedSocket(t *testing.T) {
	f := newFixture(t)
	f.sp.requests = map[uint64]*conn{}
	f.r.mergeRequests(f.sp, []DiagSocket{request(20)}, 10*ms, 11*ms)
	f.r.mergeRequests(f.sp, nil, 20*ms, 21*ms) // gone: answered, or dead?
	f.ev(20, 19*ms, tcpstate.Listen, tcpstate.SynRecv)
	f.ev(20, 19*ms, tcpstate.SynRecv, tcpstate.Established)
	f.expectStates(20, tcpstate.SynRecv, tcpstate.Established)
	if tl := f.r.TimelineOf(20); tl.Request || tl.Retransmits != 2 {
		t.Fatalf("request %v retransmits %d", tl.Request, tl.Retransmits)
	}
}

// A snapshot read while the handshake was under way but merged after the
// accepted socket's trace (the poller and the ring reader race) must not
// turn the accepted socket back into a request: the timeline reads as if
// the snapshot had come first.
func TestMergeLateRequestSnapshotKeepsTheAcceptedSocket(t *testing.T) {
	f := newFixture(t)
	f.sp.requests = map[uint64]*conn{}
	f.ev(22, 19*ms, tcpstate.Listen, tcpstate.SynRecv)
	f.ev(22, 19*ms, tcpstate.SynRecv, tcpstate.Established)
	f.r.mergeRequests(f.sp, []DiagSocket{request(22)}, 10*ms, 11*ms) // read before 19 ms
	f.r.mergeRequests(f.sp, nil, 20*ms, 21*ms)
	f.ev(22, 30*ms, tcpstate.Established, tcpstate.CloseWait)
	f.expectStates(22, tcpstate.SynRecv, tcpstate.Established, tcpstate.CloseWait)
	tl := f.r.TimelineOf(22)
	if tl.Request || tl.Retransmits != 2 {
		t.Fatalf("request %v retransmits %d", tl.Request, tl.Retransmits)
	}
	if first := tl.Transitions[0]; first.At != 11*ms || first.Source != Polled || first.From != tcpstate.Closed {
		t.Fatalf("entry to SYN_RECV %+v, want the snapshot's CLOSED -> SYN_RECV at 11ms", first)
	}
}

// A request socket that gives up (tcp_synack_retries) just goes.
func TestMergeRequestThatDiesEndsClosed(t *testing.T) {
	f := newFixture(t)
	f.sp.requests = map[uint64]*conn{}
	f.r.mergeRequests(f.sp, []DiagSocket{request(21)}, 10*ms, 11*ms)
	f.r.mergeRequests(f.sp, nil, 20*ms, 21*ms)
	f.expectStates(21, tcpstate.SynRecv, tcpstate.Closed)
	if tl := f.r.TimelineOf(21); !tl.Request || !strings.Contains(tl.String(), "request socket") {
		t.Fatalf("not shown as a request socket:\n%s", tl)
	}
}

// One segment carrying FIN and the ACK of ours: Linux passes FIN_WAIT2 on
// the ACK and closes into TIME_WAIT on the FIN, with SOCK_DONE showing
// the FIN: the entry keeps the kernel's timestamp.
func TestMergeFinWithTheAckEntersTimeWaitAtTheTrace(t *testing.T) {
	f := newFixture(t)
	f.peerFin = 1
	f.activeClose(3, 4*ms, 4*ms+20*time.Microsecond)
	f.snap(5*ms, 6*ms, tw(3, tcpstate.TimeWait, TimewaitLen-ms))
	f.expectStates(3, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.TimeWait)
	tl := f.r.TimelineOf(3)
	if e, _ := tl.Entered(tcpstate.TimeWait); e != 4*ms+20*time.Microsecond || tl.Transitions[4].Source != Traced {
		t.Fatalf("TIME_WAIT entry %v (%v), want the traced 4.02ms\n%s", e, tl.Transitions[4].Source, tl)
	}
}

// An orphan closed into a FIN_WAIT2 timewait socket before the peer's FIN
// (SOCK_DONE says so), which then arrived before the snapshot: the entry
// is dated from the TIME_WAIT timer, never at the close.
func TestMergeOrphanGettingTheFinLaterIsDatedByItsTimer(t *testing.T) {
	f := newFixture(t)
	f.peerFin = 0
	f.activeClose(4, 4*ms, 50*ms) // long after FIN_WAIT2: no same-chain guess
	f.snap(60*ms, 61*ms, tw(4, tcpstate.TimeWait, TimewaitLen-2*ms))
	tl := f.r.TimelineOf(4)
	f.expectStates(4, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.TimeWait)
	tr := tl.Transitions[4]
	if tr.Source != Polled || tr.At-tr.Window < 50*ms || tr.At > 61*ms {
		t.Fatalf("TIME_WAIT entry %v within %v (%v), want a window after the close at 50ms\n%s", tr.At, tr.Window, tr.Source, tl)
	}
}

// A kernel that creates the accepted socket in SYN_RECV without the
// tracepoint (6.1) first reports SYN_RECV -> ESTABLISHED: the timeline
// still starts LISTEN -> SYN_RECV, marked as born, at that moment.
func TestMergeChildBornInSynRecvStartsLikeATracedOne(t *testing.T) {
	f := newFixture(t)
	f.ev(5, 7*ms, tcpstate.SynRecv, tcpstate.Established)
	tl := f.r.TimelineOf(5)
	if got := tl.Path(); !slices.Equal(got, []tcpstate.State{tcpstate.Listen, tcpstate.SynRecv, tcpstate.Established}) {
		t.Fatalf("path %v\n%s", got, tl)
	}
	if tl.Transitions[0].Source != Born || tl.Transitions[0].At != 7*ms {
		t.Fatalf("birth %+v", tl.Transitions[0])
	}
}

// A connect still in SYN_SENT knows its address but not yet its port (the
// tracepoint fires before the port is chosen); a listener has no peer.
// The header says so instead of printing an invalid address.
func TestTimelineHeaderShowsMissingPortsAndPeers(t *testing.T) {
	f := newFixture(t)
	f.r.deliver(&event{ts: int64(ms), cookie: 30, netCookie: 77, from: tcpstate.Closed, to: tcpstate.SynSent, proto: 6,
		local: netip.AddrPortFrom(cli.Addr(), 0), remote: srv})
	f.r.deliver(&event{ts: int64(ms), cookie: 31, netCookie: 77, from: tcpstate.Closed, to: tcpstate.Listen, proto: 6, local: srv})
	for cookie, want := range map[uint64]string{30: "198.18.0.1:* -> 198.18.0.2:8080", 31: "198.18.0.2:8080 -> *"} {
		if head := strings.SplitN(f.r.TimelineOf(cookie).String(), "\n", 2)[0]; !strings.Contains(head, want) {
			t.Errorf("header %q, want it to contain %q", head, want)
		}
	}
}

// A traced transition that does not start where the last one ended means
// one went missing: it is counted and fails Sync, though every counter
// agreed.
func TestRecorderCountsATimelineThatSkipsAState(t *testing.T) {
	f := newFixture(t)
	f.ev(1, 1*ms, tcpstate.Closed, tcpstate.SynSent)
	f.ev(1, 2*ms, tcpstate.SynSent, tcpstate.Established)
	f.ev(1, 4*ms, tcpstate.FinWait1, tcpstate.FinWait2) // ESTABLISHED -> FIN_WAIT1 never came
	if st, _ := f.r.Stats(); st.Gaps != 1 {
		t.Fatalf("gaps %d, want 1", st.Gaps)
	}
	err := lossError(f.r.scope(nil))
	if !errors.Is(err, ErrLostEvents) || !strings.Contains(err.Error(), "ESTABLISHED, then FIN_WAIT1 -> FIN_WAIT2") {
		t.Fatalf("gap error %v", err)
	}
}

// The rescue copy's duplicate of a hit can arrive after the socket's next
// hit: it is dropped as a duplicate, not taken for a gap.
func TestRecorderDropsADuplicateThatArrivesLate(t *testing.T) {
	f := newFixture(t)
	f.ev(1, 1*ms, tcpstate.Closed, tcpstate.SynSent)
	f.ev(1, 2*ms, tcpstate.SynSent, tcpstate.Established)
	f.ev(1, 3*ms, tcpstate.Established, tcpstate.FinWait1)
	f.ev(1, 3*ms, tcpstate.FinWait1, tcpstate.FinWait2)
	f.ev(1, 3*ms, tcpstate.Established, tcpstate.FinWait1)
	f.expectStates(1, tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2)
	if st, _ := f.r.Stats(); st.Gaps != 0 || st.Duplicates != 1 {
		t.Fatalf("stats %+v, want one duplicate and no gap", st)
	}
	if err := lossError(f.r.scope(nil)); err != nil {
		t.Fatal(err)
	}
}

// On Linux 6.1 an accepted socket's first transition, LISTEN -> SYN_RECV,
// carries its listener's cookie: the listener's timeline stays a listener's,
// and the child's own timeline starts with its next transition.
func TestMergeListenerIgnoresItsChildsFirstTransition(t *testing.T) {
	f := newFixture(t)
	f.ev(10, 1*ms, tcpstate.Closed, tcpstate.Listen)
	f.ev(10, 2*ms, tcpstate.Listen, tcpstate.SynRecv) // the child, with the listener's cookie
	f.ev(11, 2*ms, tcpstate.SynRecv, tcpstate.Established)
	f.ev(10, 3*ms, tcpstate.Listen, tcpstate.Closed)
	f.expectStates(10, tcpstate.Listen, tcpstate.Closed)
	f.expectStates(11, tcpstate.SynRecv, tcpstate.Established)
	if st, _ := f.r.Stats(); st.Gaps != 0 {
		t.Fatalf("stats %+v, want no gap", st)
	}
}
