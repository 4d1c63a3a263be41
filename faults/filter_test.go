package faults

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/tcplab/tcplab/harness"
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

// Dropped SYNs are counted, the connect cannot finish, and after Undo
// traffic flows again and no rule is left.
func TestDropCountsAndUndoes(t *testing.T) {
	p := newPair(t)
	ln, err := p.Server.Listen(harness.IPv4, 0, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr, _ := ln.LocalAddr()
	drop, err := Drop{Dir: ClientToServer, Flags: SYN, Mask: SYN | ACK}.Apply(p)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := p.Client.Dial(short, addr); !errors.Is(err, context.DeadlineExceeded) {
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
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	c, err := p.Client.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("connect after Undo: %v", err)
	}
	c.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(p.Server.NS.FD()))
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := conn.ListTables()
	for _, tb := range tables {
		chains, _ := conn.ListChainsOfTableFamily(tb.Family)
		for _, ch := range chains {
			rules, _ := conn.GetRules(tb, ch)
			if len(rules) != 0 {
				t.Fatalf("%d rules left in %s/%s after Undo", len(rules), tb.Name, ch.Name)
			}
		}
	}
}

func TestImpossibleFaultsAreRefused(t *testing.T) {
	p := newPair(t)
	for _, f := range []interface {
		Apply(*harness.Pair) (*Active, error)
	}{
		Drop{Dir: ClientToServer, Flags: FIN | ACK, Mask: FIN},
		Drop{Dir: 0, Flags: SYN},
		Count{Dir: Direction(9), Flags: SYN},
	} {
		if a, err := f.Apply(p); !errors.Is(err, ErrBadFault) {
			t.Errorf("%+v: %v, want ErrBadFault", f, err)
			if a != nil {
				_ = a.Undo()
			}
		}
	}
}
