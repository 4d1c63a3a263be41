package harness

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
)

// newTestDiag builds a pair and a sock_diag connection in its client
// namespace, both closed at the test's end, and a 10 s context.
func newTestDiag(t *testing.T) (*Pair, *Diag, context.Context) {
	t.Helper()
	p := newTestPair(t, PairOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	d, err := p.Client.NS.NewDiag()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return p, d, ctx
}

// Lookup finds full and timewait sockets by 4-tuple and cookie, and
// nothing for a wrong cookie.
func TestDiagLookupFindsFullAndTimewaitSockets(t *testing.T) {
	p, d, ctx := newTestDiag(t)
	for _, f := range []Family{IPv4, IPv6} {
		ln, _ := p.Server.Listen(f, 0, 8)
		addr, _ := ln.LocalAddr()
		c, err := p.Client.Dial(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := ln.Accept(ctx)
		local, _ := c.LocalAddr()
		got, ok, err := d.Lookup(local, addr, c.Cookie())
		if err != nil || !ok || got.State != tcpstate.Established || got.Cookie != c.Cookie() {
			t.Fatalf("%v: lookup of an established socket: %+v %v %v", f, got, ok, err)
		}
		if _, ok, err := d.Lookup(local, addr, c.Cookie()+12345); ok || err != nil {
			t.Fatalf("%v: a wrong cookie must find nothing: %v %v", f, ok, err)
		}
		c.Close()
		if _, err := s.ReadAll(ctx); err != nil {
			t.Fatal(err)
		}
		s.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, ok, err = d.Lookup(local, addr, c.Cookie())
			if err != nil {
				t.Fatal(err)
			}
			if ok && got.State == tcpstate.TimeWait {
				break
			}
			if time.Now().After(deadline) {
				socks, _ := d.Sockets(AllStates)
				t.Fatalf("%v: lookup never found the timewait socket (last %+v %v); dump has %+v", f, got, ok, socks)
			}
		}
		if !got.Timewait() {
			t.Fatalf("%v: %+v is not marked timewait", f, got)
		}
		ln.Close()
	}
}

// LookupAll answers many lookups at once, across batches, each key by
// itself: sockets that exist are found in either family, a wrong cookie
// (ESTALE) or an unused tuple (ENOENT) finds nothing and fails nothing.
func TestDiagLookupAllAnswersEveryKey(t *testing.T) {
	p, d, ctx := newTestDiag(t)
	var keys []SocketKey
	want := map[uint64]bool{}
	for i := range lookupBatch + 10 {
		f := []Family{IPv4, IPv6}[i%2]
		ln, err := p.Server.Listen(f, 0, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr, _ := ln.LocalAddr()
		c, err := p.Client.Dial(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		local, _ := c.LocalAddr()
		switch i % 3 {
		case 0:
			keys = append(keys, SocketKey{local, addr, c.Cookie()})
			want[c.Cookie()] = true
		case 1:
			keys = append(keys, SocketKey{local, addr, c.Cookie() + 1}) // ESTALE
		default:
			unused := netip.AddrPortFrom(addr.Addr(), addr.Port()+1)
			keys = append(keys, SocketKey{local, unused, c.Cookie()}) // ENOENT
		}
	}
	found, err := d.LookupAll(keys)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]bool{}
	for _, s := range found {
		if s.State != tcpstate.Established {
			t.Errorf("found %+v, not established", s)
		}
		got[s.Cookie] = true
	}
	if len(found) != len(want) || len(got) != len(want) {
		t.Fatalf("found %d sockets (%d distinct), want %d", len(found), len(got), len(want))
	}
	for ck := range want {
		if !got[ck] {
			t.Errorf("socket %d not found", ck)
		}
	}
	// The connection works on after a batch: the next lookup is answered.
	if _, ok, err := d.Lookup(keys[0].Local, keys[0].Remote, keys[0].Cookie); !ok || err != nil {
		t.Fatalf("lookup after a batch: %v %v", ok, err)
	}
}
