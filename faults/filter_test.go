package faults

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/tcplab/tcplab/harness"
	"golang.org/x/sys/unix"
)

func newPair(t *testing.T) *harness.Pair {
	t.Helper()
	if err := harness.CheckPrivileges(); err != nil {
		t.Skip(err)
	}
	if err := HaveNFTables(); err != nil {
		t.Skip(err)
	}
	p, err := harness.NewPair(harness.PairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func listen(t *testing.T, p *harness.Pair) netip.AddrPort {
	t.Helper()
	ln, err := p.Server.Listen(harness.IPv4, 0, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	addr, _ := ln.LocalAddr()
	return addr
}

func apply(t *testing.T, p *harness.Pair, f Fault) Active {
	t.Helper()
	a, err := f.Apply(p)
	if err != nil {
		t.Fatalf("apply %+v: %v", f, err)
	}
	t.Cleanup(func() { _ = a.Undo() })
	return a
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// connected returns an established client socket (Nagle off) and the
// accepted server socket.
func connected(t *testing.T, p *harness.Pair) (c, s *harness.Endpoint) {
	t.Helper()
	ln, err := p.Server.Listen(harness.IPv4, 0, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr, _ := ln.LocalAddr()
	ctx := timeout(t, 5*time.Second)
	c, err = p.Client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if s, err = ln.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := c.SetNoDelay(true); err != nil {
		t.Fatal(err)
	}
	return c, s
}

// pingPong sends n 100-byte messages, each read by the server before the
// next is written: n data segments, one at a time.
func pingPong(t *testing.T, c, s *harness.Endpoint, n int) {
	t.Helper()
	ctx := timeout(t, 30*time.Second)
	msg, buf := make([]byte, 100), make([]byte, 100)
	for range n {
		if _, err := c.Write(ctx, msg); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(msg); {
			k, err := s.Read(ctx, buf[got:])
			if err != nil {
				t.Fatal(err)
			}
			got += k
		}
	}
}

func waitPackets(t *testing.T, a Active, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := a.Packets()
		if err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: %d packets, want %d", a, n, want)
		}
		<-time.After(time.Millisecond) //nolint:forbidigo // polling a kernel counter
	}
}

func rulesLeft(t *testing.T, h *harness.Host) int {
	t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(h.NS.FD()))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	tables, _ := conn.ListTables()
	for _, tb := range tables {
		chains, _ := conn.ListChainsOfTableFamily(tb.Family)
		for _, ch := range chains {
			rules, _ := conn.GetRules(tb, ch)
			n += len(rules)
		}
	}
	return n
}

// Dropped SYNs are counted, the connect cannot finish, and after Undo
// traffic flows again and no rule is left.
func TestDropCountsAndUndoes(t *testing.T) {
	p := newPair(t)
	addr := listen(t, p)
	drop, err := Drop{Match: Match{Dir: ClientToServer, Flags: SYN, Mask: SYN | ACK}}.Apply(p)
	if err != nil {
		t.Fatal(err)
	}
	if drop.Backend() != FilterBackend {
		t.Errorf("backend %q", drop.Backend())
	}
	if _, err := p.Client.Dial(timeout(t, 300*time.Millisecond), addr); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connect through a SYN drop: %v", err)
	}
	if n, err := drop.Packets(); err != nil || n != 1 {
		t.Fatalf("dropped %d SYNs (%v), want 1 within 300 ms", n, err)
	}
	if err := drop.Undo(); err != nil {
		t.Fatal(err)
	}
	if err := drop.Undo(); err != nil {
		t.Fatalf("second Undo: %v", err)
	}
	c, err := p.Client.Dial(timeout(t, 5*time.Second), addr)
	if err != nil {
		t.Fatalf("connect after Undo: %v", err)
	}
	c.Close()
	if n := rulesLeft(t, p.Server); n != 0 {
		t.Fatalf("%d rules left after Undo", n)
	}
}

// Only the second data segment is dropped; its retransmission passes.
func TestNthDropsOnlyThatPacket(t *testing.T) {
	p := newPair(t)
	c, s := connected(t, p)
	drop := apply(t, p, Drop{Match: Match{Dir: ClientToServer, Flags: PSH}, Select: Select{Nth: 2}})
	data := apply(t, p, Count{Match: Match{Dir: ClientToServer, Flags: PSH}})
	pingPong(t, c, s, 4)
	waitPackets(t, drop, 1)
	waitPackets(t, data, 4) // the dropped one never reached the count
}

// The first two data segments are dropped, later ones pass.
func TestFirstDropsTheFirstK(t *testing.T) {
	p := newPair(t)
	c, s := connected(t, p)
	drop := apply(t, p, Drop{Match: Match{Dir: ClientToServer, Flags: PSH}, Select: Select{First: 2}})
	pingPong(t, c, s, 3)
	waitPackets(t, drop, 2)
}

// A seeded probability selects exactly the packets Select.Chosen says.
func TestSeededProbabilityIsReproducible(t *testing.T) {
	p := newPair(t)
	c, s := connected(t, p)
	sel := Select{Probability: 0.3, Seed: 7}
	count := apply(t, p, Count{Match: Match{Dir: ClientToServer, Flags: PSH}, Select: sel})
	const n = 100
	want := 0
	for i := range n {
		if sel.Chosen(i) {
			want++
		}
	}
	if want < 15 || want > 45 {
		t.Fatalf("seed 7 chose %d of %d at p=0.3: the generator is off", want, n)
	}
	pingPong(t, c, s, n)
	waitPackets(t, count, uint64(want))
}

// A SYN rejected with a TCP reset makes connect fail with ECONNREFUSED.
func TestRejectWithResetRefusesTheConnect(t *testing.T) {
	p := newPair(t)
	addr := listen(t, p)
	rej := apply(t, p, Reject{Match: Match{Dir: ClientToServer, Flags: SYN, Mask: SYN | ACK}})
	if _, err := p.Client.Dial(timeout(t, 5*time.Second), addr); !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("connect: %v, want ECONNREFUSED", err)
	}
	waitPackets(t, rej, 1)
}

// An ICMP port unreachable for a SYN makes connect fail at once too.
func TestRejectWithICMPFailsTheConnect(t *testing.T) {
	p := newPair(t)
	addr := listen(t, p)
	apply(t, p, Reject{Match: Match{Dir: ClientToServer, Flags: SYN, Mask: SYN | ACK}, With: WithPortUnreach})
	if _, err := p.Client.Dial(timeout(t, 5*time.Second), addr); !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("connect: %v, want ECONNREFUSED", err)
	}
}

// A partition stops an established connection's data both ways; after
// Undo the retransmission gets through and both namespaces are clean.
func TestPartitionCutsBothWays(t *testing.T) {
	p := newPair(t)
	c, s := connected(t, p)
	part, err := Partition{}.Apply(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(timeout(t, time.Second), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(timeout(t, time.Second), []byte("y")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := s.Read(timeout(t, 300*time.Millisecond), buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read through a partition: %v", err)
	}
	if n, _ := part.Packets(); n < 2 {
		t.Fatalf("partition hit %d packets, want both sides' data", n)
	}
	if err := part.Undo(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(timeout(t, 5*time.Second), buf); err != nil {
		t.Fatalf("read after the partition healed: %v", err)
	}
	for _, h := range p.Hosts() {
		if n := rulesLeft(t, h); n != 0 {
			t.Errorf("%s: %d rules left", h.Name, n)
		}
	}
}

func TestImpossibleFaultsAreRefused(t *testing.T) {
	p := newPair(t)
	for _, f := range []Fault{
		Drop{Match: Match{Dir: ClientToServer, Flags: FIN | ACK, Mask: FIN}},
		Drop{Match: Match{Dir: 0, Flags: SYN}},
		Count{Match: Match{Dir: Direction(9), Flags: SYN}},
		Drop{Match: Match{Dir: ClientToServer}, Select: Select{Probability: 1.5}},
		Drop{Match: Match{Dir: ClientToServer}, Select: Select{Probability: -0.1}},
		Drop{Match: Match{Dir: ClientToServer}, Select: Select{Nth: -1}},
		Drop{Match: Match{Dir: ClientToServer}, Select: Select{Nth: 2, First: 3}},
		Drop{Match: Match{Dir: ClientToServer, AnyProtocol: true, Flags: SYN}},
		Reject{Match: Match{Dir: ClientToServer, AnyProtocol: true}},
		Reject{Match: Match{Dir: ClientToServer}, With: RejectWith(42)},
		Intercept{Match: Match{Dir: Both}},
		Hold{Match: Match{Dir: ClientToServer}, Limit: -1},
	} {
		if a, err := f.Apply(p); !errors.Is(err, ErrBadFault) {
			t.Errorf("%+v: %v, want ErrBadFault", f, err)
			if a != nil {
				_ = a.Undo()
			}
		}
	}
	for _, h := range p.Hosts() {
		if n := rulesLeft(t, h); n != 0 {
			t.Errorf("%s: %d rules left by refused faults", h.Name, n)
		}
	}
}

// A fault on a pair that is gone says so.
func TestFaultOnAGoneLinkIsRefused(t *testing.T) {
	p := newPair(t)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []Fault{
		Drop{Match: Match{Dir: ClientToServer}},
		Hold{Match: Match{Dir: ServerToClient}},
	} {
		if a, err := f.Apply(p); !errors.Is(err, ErrLinkGone) {
			t.Errorf("%+v: %v, want ErrLinkGone", f, err)
			if a != nil {
				_ = a.Undo()
			}
		}
	}
}

func TestMatchesAsTheRuleDoes(t *testing.T) {
	syn := Packet{Proto: unix.IPPROTO_TCP, Flags: SYN}
	synack := Packet{Proto: unix.IPPROTO_TCP, Flags: SYN | ACK}
	m := Match{Dir: ClientToServer, Flags: SYN, Mask: SYN | ACK}
	if !m.Matches(syn, ClientToServer) || m.Matches(synack, ClientToServer) || m.Matches(syn, ServerToClient) {
		t.Fatal("flags under mask or direction misjudged")
	}
	if !(Match{Dir: Both, AnyProtocol: true}).Matches(Packet{Proto: 1}, ServerToClient) {
		t.Fatal("AnyProtocol both ways should match ICMP")
	}
	if s := (Select{Nth: 2}); s.Selects(0) || !s.Selects(1) || s.Selects(2) {
		t.Fatal("Nth")
	}
	if s := (Select{First: 2}); !s.Selects(1) || s.Selects(2) {
		t.Fatal("First")
	}
}
