package faults

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/tcplab/tcplab/harness"
)

func newQueuePair(t *testing.T) *harness.Pair {
	t.Helper()
	p := newPair(t)
	if err := HaveQueue(); err != nil {
		t.Skip(err)
	}
	return p
}

func hold(t *testing.T, p *harness.Pair, h Hold) *Queued {
	t.Helper()
	q, err := h.Queue(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Undo() })
	return q
}

// waitHeld waits until the queue holds n packets.
func waitHeld(t *testing.T, q *Queued, n int) []Packet {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		ch := q.Arrived()
		if h := q.Held(); len(h) >= n {
			return h
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("held %d packets, want %d: %+v", len(q.Held()), n, q.Stats())
		}
	}
}

// A held SYN keeps connect waiting; released, the connection completes.
func TestHoldAndReleaseASYN(t *testing.T) {
	p := newQueuePair(t)
	addr := listen(t, p)
	q := hold(t, p, Hold{Match: Match{Dir: ClientToServer, Flags: SYN, Mask: SYN | ACK}})
	if q.Backend() != QueueBackend {
		t.Errorf("backend %q", q.Backend())
	}
	c, err := p.Client.Socket(harness.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartConnect(addr); err != nil {
		t.Fatal(err)
	}
	held := waitHeld(t, q, 1)
	if held[0].Flags != SYN || held[0].Dst != addr {
		t.Fatalf("held %v, want the SYN to %v", held[0], addr)
	}
	if err := c.WaitConnected(timeout(t, 100*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connected with the SYN held: %v", err)
	}
	// Usually one SYN; two if the test was slow past the 1 s SYN
	// retransmission (seen under -race on a loaded machine).
	n, err := q.Release()
	if n < 1 || err != nil {
		t.Fatalf("released %d (%v)", n, err)
	}
	if err := c.WaitConnected(timeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Queued != uint64(n) || s.Released != uint64(n) || s.Waiting != 0 {
		t.Fatalf("stats %+v after releasing %d", s, n)
	}
}

// Data segments released in reverse still reach the reader in order, and
// the held packets carry increasing sequence numbers.
func TestReleaseReordered(t *testing.T) {
	p := newQueuePair(t)
	c, s := connected(t, p)
	q := hold(t, p, Hold{Match: Match{Dir: ClientToServer, Flags: PSH}})
	ctx := timeout(t, 5*time.Second)
	for _, m := range []string{"a", "b", "c"} {
		if _, err := c.Write(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
		waitHeld(t, q, int(m[0]-'a')+1)
	}
	held := q.Held()
	for i := 1; i < len(held); i++ {
		if held[i].Seq != held[i-1].Seq+1 || held[i].Len != 1 {
			t.Fatalf("held out of order: %v", held)
		}
	}
	if _, err := q.ReleaseIn([]int{2, 1}); !errors.Is(err, ErrBadFault) {
		t.Fatalf("a partial order: %v", err)
	}
	if _, err := q.ReleaseIn([]int{2, 1, 1}); !errors.Is(err, ErrBadFault) {
		t.Fatalf("a repeated index: %v", err)
	}
	if n, err := q.ReleaseIn([]int{2, 1, 0}); n != 3 || err != nil {
		t.Fatalf("released %d (%v)", n, err)
	}
	buf := make([]byte, 3)
	for got := 0; got < 3; {
		k, err := s.Read(ctx, buf[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += k
	}
	if string(buf) != "abc" {
		t.Fatalf("read %q", buf)
	}
}

// A hold keeps at most Limit packets; the rest are dropped and counted.
func TestHoldIsBounded(t *testing.T) {
	p := newQueuePair(t)
	c, s := connected(t, p)
	q := hold(t, p, Hold{Match: Match{Dir: ClientToServer, Flags: PSH}, Limit: 2})
	ctx := timeout(t, 10*time.Second)
	for range 5 {
		if _, err := c.Write(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(5 * time.Second)
	for q.Stats().Overflow < 3 {
		select {
		case <-q.Arrived():
		case <-deadline:
			t.Fatalf("stats %+v, want 3 over the limit", q.Stats())
		}
	}
	if st := q.Stats(); st.Waiting != 2 || len(q.Held()) != 2 {
		t.Fatalf("stats %+v, want 2 held", st)
	}
	if err := q.Undo(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	for got := 0; got < 5; {
		k, err := s.Read(ctx, buf[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += k
	}
}

// Undo lets held packets through and leaves no rule and no queue behind.
func TestQueueUndoFlushesAndCleans(t *testing.T) {
	p := newQueuePair(t)
	addr := listen(t, p)
	q := hold(t, p, Hold{Match: Match{Dir: ClientToServer}})
	c, err := p.Client.Socket(harness.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartConnect(addr); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, q, 1)
	if err := q.Undo(); err != nil {
		t.Fatal(err)
	}
	if err := q.Undo(); err != nil {
		t.Fatalf("second Undo: %v", err)
	}
	if err := c.WaitConnected(timeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := rulesLeft(t, p.Server); n != 0 {
		t.Fatalf("%d rules left", n)
	}
	if _, err := q.kernelLastID(); err == nil {
		t.Fatal("the queue is still bound after Undo")
	}
}

// A delay decided in Go holds the SYN for about that long: connect takes
// at least the delay (and far less than the 1 s SYN retransmission).
func TestInterceptDelaysAPacket(t *testing.T) {
	p := newQueuePair(t)
	addr := listen(t, p)
	const d = 100 * time.Millisecond
	q, err := Intercept{Match: Match{Dir: ClientToServer, Flags: SYN, Mask: SYN | ACK},
		Decide: func(Packet) Action { return After(d) }}.Queue(p)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = q.Undo() }()
	start := time.Now()
	c, err := p.Client.Dial(timeout(t, 5*time.Second), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if took := time.Since(start); took < d || took > d+500*time.Millisecond {
		t.Fatalf("connect took %v through a %v delay", took, d)
	}
	if s := q.Stats(); s.Delayed != 1 {
		t.Fatalf("stats %+v", s)
	}
	// The lateness of that one release is kept. Tolerance: 100 ms, far
	// above the releaser's own lateness (microseconds; a few ms when both
	// vCPUs are busy under -race), so only a lost record fails it.
	if late, n := q.Lateness(1); n != 1 || late < 0 || late > 100*time.Millisecond {
		t.Fatalf("lateness %v over %d releases, want one release within 100ms", late, n)
	}
}

func TestParsePacket(t *testing.T) {
	v4 := []byte{
		0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
		0x30, 0x39, 0x00, 0x50, 0, 0, 0, 7, 0, 0, 0, 9, 0x50, 0x18, 0, 0, 0, 0, 0, 0,
		'a', 'b', 'c', 'd',
	}
	p, err := ParsePacket(v4[:40]) // cut after the headers, as the queue copies
	if err != nil {
		t.Fatal(err)
	}
	want := Packet{Proto: 6, Flags: PSH | ACK, Seq: 7, Ack: 9, Len: 4,
		Src: netip.MustParseAddrPort("198.18.0.1:12345"), Dst: netip.MustParseAddrPort("198.18.0.2:80")}
	if p != want {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	for _, bad := range [][]byte{nil, {0x45}, {0x65, 0}, v4[:30]} {
		if _, err := ParsePacket(bad); err == nil {
			t.Errorf("% x parsed", bad)
		}
	}
}

// Without netem, Delay falls back to the queue and says so; a forced
// netem backend is refused with the probe's reason.
func TestDelayFallsBackToTheQueue(t *testing.T) {
	p := newQueuePair(t)
	if HaveNetem() == nil {
		t.Skip("this kernel has netem: no fallback to see")
	}
	d := apply(t, p, Delay{Dir: Both, Delay: 30 * time.Millisecond, Jitter: 5 * time.Millisecond})
	if d.Backend() != QueueBackend {
		t.Fatalf("backend %q", d.Backend())
	}
	c, s := connected(t, p)
	pingPong(t, c, s, 3)
	info, err := c.TCPInfo()
	if err != nil {
		t.Fatal(err)
	}
	// 2 x 30 ms, each way off by at most the 5 ms jitter.
	if rtt := time.Duration(info.Rtt) * time.Microsecond; rtt < 50*time.Millisecond || rtt > 75*time.Millisecond {
		t.Errorf("srtt %v through 30±5 ms each way", rtt)
	}
	if _, err := (Delay{Dir: ClientToServer, Delay: time.Millisecond, Backend: NetemBackend}).Apply(p); !errors.Is(err, harness.ErrNotSupported) {
		t.Errorf("forced netem: %v", err)
	}
}

// Seeded loss on the queue is reproducible: the packets it drops are
// exactly those the seed's draws select, in arrival order.
func TestQueueLossIsSeeded(t *testing.T) {
	p := newQueuePair(t)
	l := Loss{Dir: ClientToServer, Probability: 0.2, Seed: 3, Backend: QueueBackend}
	a := apply(t, p, l)
	c, s := connected(t, p)
	pingPong(t, c, s, 40)
	st := a.(*Queued).Stats()
	r := rand.New(rand.NewPCG(l.Seed, uint64(ClientToServer)))
	want := uint64(0)
	for range st.Accepted + st.Dropped { // decided so far
		if r.Float64() < l.Probability {
			want++
		}
	}
	if st.Dropped != want || want == 0 {
		t.Fatalf("dropped %d of %d, the seed says %d", st.Dropped, st.Queued, want)
	}
}
