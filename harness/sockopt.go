package harness

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func (e *Endpoint) setInt(level, opt, v int, name string) error {
	fd, err := e.sockfd()
	if err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt "+name, unix.SetsockoptInt(fd, level, opt, v))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetReuseAddr sets SO_REUSEADDR.
func (e *Endpoint) SetReuseAddr(on bool) error {
	return e.setInt(unix.SOL_SOCKET, unix.SO_REUSEADDR, boolInt(on), "SO_REUSEADDR")
}

// SetLinger sets SO_LINGER. SetLinger(true, 0) makes close() send an RST
// and skip TIME_WAIT; SetLinger(true, d) makes close() wait up to d for the
// unsent data to be acknowledged. Seconds are the kernel's unit: d is
// rounded down to whole seconds.
func (e *Endpoint) SetLinger(on bool, d time.Duration) error {
	fd, err := e.sockfd()
	if err != nil {
		return err
	}
	l := &unix.Linger{Onoff: int32(boolInt(on)), Linger: int32(d / time.Second)}
	return os.NewSyscallError("setsockopt SO_LINGER", unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, l))
}

// SetLinger2 sets TCP_LINGER2: how long this socket, once orphaned, stays in
// FIN_WAIT2, overriding tcp_fin_timeout. Whole seconds; a negative d makes
// the socket skip FIN_WAIT2 (the kernel's -1).
func (e *Endpoint) SetLinger2(d time.Duration) error {
	v := int(d / time.Second)
	if d < 0 {
		v = -1
	}
	return e.setInt(unix.IPPROTO_TCP, unix.TCP_LINGER2, v, "TCP_LINGER2")
}

// SetUserTimeout sets TCP_USER_TIMEOUT: how long sent data may stay
// unacknowledged before the kernel gives up with ETIMEDOUT. Milliseconds.
func (e *Endpoint) SetUserTimeout(d time.Duration) error {
	return e.setInt(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond), "TCP_USER_TIMEOUT")
}

// SetKeepalive turns on SO_KEEPALIVE with TCP_KEEPIDLE idle, TCP_KEEPINTVL
// interval (whole seconds) and TCP_KEEPCNT probes; SetKeepalive(0, 0, 0)
// turns it off.
func (e *Endpoint) SetKeepalive(idle, interval time.Duration, probes int) error {
	if idle == 0 && interval == 0 && probes == 0 {
		return e.setInt(unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0, "SO_KEEPALIVE")
	}
	for _, o := range []struct {
		level, opt, v int
		name          string
	}{
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(idle / time.Second), "TCP_KEEPIDLE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(interval / time.Second), "TCP_KEEPINTVL"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, probes, "TCP_KEEPCNT"},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
	} {
		if err := e.setInt(o.level, o.opt, o.v, o.name); err != nil {
			return err
		}
	}
	return nil
}

// TCPInfo returns the kernel's struct tcp_info for the socket: its state,
// retransmission counts, RTT and timers (what `ss -i` shows).
func (e *Endpoint) TCPInfo() (*unix.TCPInfo, error) {
	fd, err := e.sockfd()
	if err != nil {
		return nil, err
	}
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	return info, os.NewSyscallError("getsockopt TCP_INFO", err)
}

// SetDeferAccept sets TCP_DEFER_ACCEPT on a listener: a handshake's final
// ACK without data is ignored, so the connection waits as a request socket
// in SYN_RECV (the SYN-ACK sent again meanwhile) until data arrives or d
// runs out. Whole seconds.
func (e *Endpoint) SetDeferAccept(d time.Duration) error {
	return e.setInt(unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, int(d/time.Second), "TCP_DEFER_ACCEPT")
}

// SetNoDelay turns Nagle's algorithm off (on=true): every write leaves as
// its own segment at once. Equivalent to setsockopt(TCP_NODELAY).
func (e *Endpoint) SetNoDelay(on bool) error {
	return e.setInt(unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(on), "TCP_NODELAY")
}
