package harness

import (
	"context"
	"testing"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
)

// Lookup finds full and timewait sockets by 4-tuple and cookie, and
// nothing for a wrong cookie.
func TestDiagLookupFindsFullAndTimewaitSockets(t *testing.T) {
	p := newTestPair(t, PairOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := p.Client.NS.NewDiag()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
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
