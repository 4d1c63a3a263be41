package harness

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Every option setter reaches the kernel: getsockopt reads it back.
func TestSocketOptionsReachTheKernel(t *testing.T) {
	p := newTestPair(t, PairOptions{})
	e, err := p.Client.Socket(IPv6)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.SetReuseAddr(true))
	must(e.SetLinger(true, 3*time.Second))
	must(e.SetLinger2(7 * time.Second))
	must(e.SetUserTimeout(1500 * time.Millisecond))
	must(e.SetKeepalive(30*time.Second, 5*time.Second, 4))
	must(e.SetDeferAccept(2 * time.Second))
	fd := e.FD()
	for _, c := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"SO_REUSEADDR", unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
		{"TCP_LINGER2", unix.IPPROTO_TCP, unix.TCP_LINGER2, 7},
		{"TCP_USER_TIMEOUT", unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 1500},
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 5},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 4},
	} {
		if got, err := unix.GetsockoptInt(fd, c.level, c.opt); err != nil || got != c.want {
			t.Errorf("%s = %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	if l, err := unix.GetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER); err != nil || l.Onoff != 1 || l.Linger != 3 {
		t.Errorf("SO_LINGER = %+v, %v", l, err)
	}
	must(e.SetKeepalive(0, 0, 0))
	if got, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE); got != 0 {
		t.Errorf("keepalive still on")
	}
	// The kernel's own answer for an unconnected socket, passed through.
	if err := e.Shutdown(unix.SHUT_RD); !errors.Is(err, unix.ENOTCONN) {
		t.Errorf("shutdown of an unconnected socket = %v, want ENOTCONN", err)
	}
}
