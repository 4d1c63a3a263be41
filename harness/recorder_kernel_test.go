package harness

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
)

// A recorder whose reader stalls while the kernel keeps producing must say
// it lost events: here the ring holds one page (~30 events) and the reader
// is held while 40 connections make ~400.
func TestRecorderReportsLostEvents(t *testing.T) {
	p := newTestPair(t, PairOptions{})
	rec := newTestRecorder(t, RecorderOptions{RingSize: 4096}, p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ln, err := p.Server.Listen(IPv4, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := ln.LocalAddr()
	rec.mu.Lock() // the reader blocks in deliver
	for range 40 {
		c, err := p.Client.Dial(ctx, addr)
		if err != nil {
			rec.mu.Unlock()
			t.Fatal(err)
		}
		s, _ := ln.Accept(ctx)
		c.Close()
		s.Close()
	}
	rec.mu.Unlock()
	err = rec.Sync(ctx)
	if !errors.Is(err, ErrLostEvents) {
		t.Fatalf("Sync = %v, want ErrLostEvents", err)
	}
	st, _ := rec.Stats()
	if st.Failed == 0 || st.Seen != st.Received+st.Failed {
		t.Fatalf("counters %+v: want failures and seen == received + failed", st)
	}
}

// Identical addresses in two namespaces must not mix: the recorder keys by
// namespace and socket cookie, never by address.
func TestRecorderSeparatesIdenticalAddresses(t *testing.T) {
	needRoot(t)
	rec := newTestRecorder(t, RecorderOptions{})
	slot, err := AcquireSlot()
	if err != nil {
		t.Fatal(err)
	}
	defer slot.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var clients []*Endpoint
	var pairs []*Pair
	for range 2 {
		p, err := newPairAt(PairOptions{}, &Slot{N: slot.N}) // same addresses twice
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := rec.WatchPair(p); err != nil {
			t.Fatal(err)
		}
		ln, err := p.Server.Listen(IPv4, 8080, 8)
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.Client.Socket(IPv4)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Bind(40000); err != nil {
			t.Fatal(err)
		}
		addr, _ := ln.LocalAddr()
		if err := c.Connect(ctx, addr); err != nil {
			t.Fatal(err)
		}
		clients, pairs = append(clients, c), append(pairs, p)
	}
	if err := clients[0].Close(); err != nil { // only the first one closes
		t.Fatal(err)
	}
	if err := rec.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	first, second := rec.Timeline(clients[0]), rec.Timeline(clients[1])
	if first.Local != second.Local || first.Remote != second.Remote {
		t.Fatalf("the two connections should share a 4-tuple: %v %v", first.Local, second.Local)
	}
	if first.Current() == tcpstate.Established || second.Current() != tcpstate.Established {
		t.Fatalf("the close leaked across namespaces:\n%s\n%s", first, second)
	}
	if first.Namespace != pairs[0].Client.NS.String() || second.Namespace != pairs[1].Client.NS.String() {
		t.Fatalf("namespaces %s %s", first.Namespace, second.Namespace)
	}
}

// A recorder left running through 30,000 connections holds at most
// MaxConns timelines per namespace (plus the open ones), forgetting the
// oldest closed ones and counting them.
func TestRecorderStaysBoundedThroughThirtyThousandConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("30,000 connections")
	}
	p := newTestPair(t, PairOptions{})
	rec := newTestRecorder(t, RecorderOptions{MaxConns: 2000}, p)
	churn(t, p, reset, 4, 30000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rec.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := rec.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Connections > 2*2000 || st.Evicted < 60000-2*2000 {
		t.Fatalf("recorder not bounded: %+v", st)
	}
}

// A timeline that ends in a state its socket has left lost its last
// transitions, and Sync says so; open sockets the kernel still has pass.
// The loss is made here by cutting the tail off a recorded timeline, as the
// rare kernel-side loss described in tracer.go leaves it.
func TestRecorderFailsOnATimelineWhoseSocketIsGone(t *testing.T) {
	p := newTestPair(t, PairOptions{})
	rec := newTestRecorder(t, RecorderOptions{}, p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ln, err := p.Server.Listen(IPv4, 0, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr, _ := ln.LocalAddr()
	open, err := p.Client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	c, err := p.Client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetLinger(true, 0); err != nil {
		t.Fatal(err)
	}
	c.Close() // RST: CLOSED at once, no timewait socket
	if err := rec.Sync(ctx); err != nil {
		t.Fatalf("Sync with one open and one closed socket: %v", err)
	}
	rec.mu.Lock()
	cn := rec.conns[c.Cookie()]
	cn.trans = cn.trans[:2] // ... SYN_SENT -> ESTABLISHED, and nothing after
	cn.closed = false
	rec.mu.Unlock()
	err = rec.Sync(ctx)
	if !errors.Is(err, ErrLostEvents) || !strings.Contains(err.Error(), "is ESTABLISHED in its timeline, gone from the kernel") {
		t.Fatalf("Sync = %v, want ErrLostEvents for the vanished socket", err)
	}
	if st, _ := rec.Stats(); st.Vanished != 1 {
		t.Fatalf("stats %+v, want one vanished", st)
	}
	// A socket whose timeline never showed its port is found by a dump.
	d, err := p.Client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetLinger(true, 0); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := rec.drained(ctx); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	dn := rec.conns[d.Cookie()]
	dn.trans = dn.trans[:1] // CLOSED -> SYN_SENT
	dn.local = netip.AddrPortFrom(dn.local.Addr(), 0)
	dn.closed = false
	rec.mu.Unlock()
	if err := rec.Sync(ctx); !errors.Is(err, ErrLostEvents) {
		t.Fatalf("Sync = %v, want ErrLostEvents", err)
	}
	if st, _ := rec.Stats(); st.Vanished != 2 {
		t.Fatalf("stats %+v, want two vanished", st)
	}
	// The loss is the lab's: another lab on the same recorder syncs clean.
	q := newTestPair(t, PairOptions{})
	if err := rec.WatchPair(q); err != nil {
		t.Fatal(err)
	}
	if err := rec.Sync(ctx, q.Client.NS, q.Server.NS); err != nil {
		t.Fatalf("Sync of another lab: %v", err)
	}
	if err := rec.Sync(ctx, p.Client.NS); !errors.Is(err, ErrLostEvents) {
		t.Fatalf("Sync of the lab = %v, want ErrLostEvents", err)
	}
}
