package harness

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestPairIsConfiguredAsPromised(t *testing.T) {
	p := newTestPair(t, PairOptions{MTU: 9000})
	for _, h := range p.Hosts() {
		l, err := h.Link()
		if err != nil {
			t.Fatal(err)
		}
		a := l.Attrs()
		if a.MTU != 9000 || a.GSOMaxSegs != 1 || a.Flags&unix.IFF_UP == 0 {
			t.Errorf("%s: mtu %d gso_max_segs %d flags %v", h.Name, a.MTU, a.GSOMaxSegs, a.Flags)
		}
		addrs, _ := h.NS.Handle().AddrList(l, netlink.FAMILY_ALL)
		var got []string
		for _, ad := range addrs {
			got = append(got, ad.IPNet.String())
		}
		for _, want := range []string{h.V4.String(), h.V6.String()} {
			if !strings.Contains(strings.Join(got, " "), want) {
				t.Errorf("%s: addresses %v lack %s", h.Name, got, want)
			}
		}
		neigh, _ := h.NS.Handle().NeighList(a.Index, netlink.FAMILY_ALL)
		perm := 0
		for _, n := range neigh {
			if n.State == netlink.NUD_PERMANENT {
				perm++
			}
		}
		if perm != 2 {
			t.Errorf("%s: %d permanent neighbours, want 2 (v4 and v6 of the peer)", h.Name, perm)
		}
	}
}

func TestPairRejectsAnImpossibleMTU(t *testing.T) {
	needRoot(t)
	if _, err := NewPair(PairOptions{MTU: 600}); err == nil {
		t.Fatal("an MTU below IPv6's 1280 must be refused")
	}
}

func TestPairLeavesTheRootNamespaceAlone(t *testing.T) {
	needRoot(t)
	before, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPair(PairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	during, _ := netlink.LinkList()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if len(during) != len(before) {
		t.Fatalf("root namespace links went from %d to %d while a pair existed", len(before), len(during))
	}
}

func TestEndpointStepsReturnTheKernelsErrors(t *testing.T) {
	p := newTestPair(t, PairOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, f := range []Family{IPv4, IPv6} {
		ln, err := p.Server.Listen(f, 0, 8)
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := ln.LocalAddr()
		dup, _ := p.Server.Socket(f)
		if err := dup.BindAddr(addr); !errors.Is(err, unix.EADDRINUSE) {
			t.Errorf("%v: second bind = %v, want EADDRINUSE", f, err)
		}
		dup.Close()
		c, err := p.Client.Dial(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(ctx, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := c.Shutdown(unix.SHUT_WR); err != nil {
			t.Fatal(err)
		}
		if n, err := s.ReadAll(ctx); n != 5 || err != nil {
			t.Errorf("%v: read %d, %v; want 5 bytes then EOF", f, n, err)
		}
		if _, err := s.Read(ctx, make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("%v: read after FIN = %v, want EOF", f, err)
		}
		short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
		if _, err := ln.Accept(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v: idle accept = %v, want the context's deadline", f, err)
		}
		cancelShort()
		ln.Close()
		refused, _ := p.Client.Socket(f)
		if err := refused.Connect(ctx, addr); !errors.Is(err, unix.ECONNREFUSED) {
			t.Errorf("%v: connect to a closed port = %v, want ECONNREFUSED", f, err)
		}
		for _, e := range []*Endpoint{refused, c, s} {
			if err := e.Close(); err != nil {
				t.Error(err)
			}
			if err := e.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		}
		if _, err := c.Write(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("write after close = %v, want ErrClosed", err)
		}
	}
	_ = netip.AddrPort{}
}

func TestUnprivilegedGetsAClearErrorAndNothingIsCreated(t *testing.T) {
	needRoot(t)
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(cmd.Environ(), "TCPLAB_TEST_UNPRIVILEGED=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), ErrNotRoot.Error()) || !strings.Contains(string(out), "CAP_NET_ADMIN") {
		t.Fatalf("unprivileged NewPair said %q; want it to name root and CAP_NET_ADMIN", out)
	}
}
