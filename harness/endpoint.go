package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Endpoint is one real kernel TCP socket (IPPROTO_TCP, never MPTCP) in a
// host's namespace, driven one syscall at a time. The socket is non-blocking
// underneath; the steps that wait (Connect, Accept, Read, Write) poll until
// done or until their context ends, so a spec never hangs on a socket.
//
// Steps return the syscall's own error wrapped in *os.SyscallError:
// errors.Is(err, unix.ECONNRESET), unix.EADDRINUSE, unix.ETIMEDOUT and the
// like are results to assert, not harness failures.
type Endpoint struct {
	Host   *Host
	Family Family
	cookie uint64

	mu     sync.Mutex
	fd     int
	closed bool
}

// Socket creates an unbound TCP socket in the host's namespace.
// Equivalent to: socket(AF_INET or AF_INET6, SOCK_STREAM, IPPROTO_TCP).
func (h *Host) Socket(f Family) (*Endpoint, error) {
	fd, err := h.NS.sockets.get(h.NS, f)
	if err != nil {
		return nil, err
	}
	return newEndpoint(h, f, fd)
}

func newEndpoint(h *Host, f Family, fd int) (*Endpoint, error) {
	c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("read socket cookie: %w", os.NewSyscallError("getsockopt", err))
	}
	return &Endpoint{Host: h, Family: f, fd: fd, cookie: c}, nil
}

// Listen creates a socket bound to the host's address and port (0 picks
// one) and listening with the given backlog.
// Equivalent to: socket(); setsockopt(SO_REUSEADDR); bind(); listen(backlog).
func (h *Host) Listen(f Family, port, backlog int) (*Endpoint, error) {
	e, err := h.Socket(f)
	if err != nil {
		return nil, err
	}
	for _, step := range []func() error{
		func() error { return e.SetReuseAddr(true) },
		func() error { return e.Bind(port) },
		func() error { return e.Listen(backlog) },
	} {
		if err := step(); err != nil {
			return nil, errors.Join(err, e.Close())
		}
	}
	return e, nil
}

// Dial creates a socket and connects it to addr, waiting for the handshake.
func (h *Host) Dial(ctx context.Context, addr netip.AddrPort) (*Endpoint, error) {
	f := IPv4
	if addr.Addr().Is6() {
		f = IPv6
	}
	e, err := h.Socket(f)
	if err != nil {
		return nil, err
	}
	if err := e.Connect(ctx, addr); err != nil {
		return e, err // the socket is the caller's: its timeline is a result too
	}
	return e, nil
}

// Cookie returns the socket's cookie (SO_COOKIE), the key of its timeline.
func (e *Endpoint) Cookie() uint64 { return e.cookie }

// FD returns the socket's file descriptor, -1 once closed.
func (e *Endpoint) FD() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return -1
	}
	return e.fd
}

func (e *Endpoint) sockfd() (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return -1, fmt.Errorf("endpoint: %w", ErrClosed)
	}
	return e.fd, nil
}

// Bind binds the socket to the host's address in its family and port.
func (e *Endpoint) Bind(port int) error {
	return e.BindAddr(netip.AddrPortFrom(e.Host.Addr(e.Family), uint16(port)))
}

// BindAddr binds the socket to addr. Equivalent to: bind(fd, addr).
func (e *Endpoint) BindAddr(addr netip.AddrPort) error {
	fd, err := e.sockfd()
	if err != nil {
		return err
	}
	return os.NewSyscallError("bind", unix.Bind(fd, sockaddr(addr)))
}

// Listen marks the socket as listening. Equivalent to: listen(fd, backlog).
func (e *Endpoint) Listen(backlog int) error {
	fd, err := e.sockfd()
	if err != nil {
		return err
	}
	return os.NewSyscallError("listen", unix.Listen(fd, backlog))
}

// StartConnect sends the SYN and returns at once, as a non-blocking
// connect does; nil means the handshake is under way (EINPROGRESS) or done.
func (e *Endpoint) StartConnect(addr netip.AddrPort) error {
	fd, err := e.sockfd()
	if err != nil {
		return err
	}
	err = unix.Connect(fd, sockaddr(addr))
	if err == nil || errors.Is(err, unix.EINPROGRESS) {
		return nil
	}
	return os.NewSyscallError("connect", err)
}

// WaitConnected waits for a connect started by StartConnect to finish and
// returns its result (SO_ERROR): nil, ECONNREFUSED, ETIMEDOUT, ...
func (e *Endpoint) WaitConnected(ctx context.Context) error {
	if err := e.wait(ctx, unix.POLLOUT); err != nil {
		return err
	}
	fd, err := e.sockfd()
	if err != nil {
		return err
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	if soerr != 0 {
		return os.NewSyscallError("connect", unix.Errno(soerr))
	}
	return nil
}

// Connect connects to addr and waits for the handshake to finish, as a
// blocking connect does.
func (e *Endpoint) Connect(ctx context.Context, addr netip.AddrPort) error {
	if err := e.StartConnect(addr); err != nil {
		return err
	}
	return e.WaitConnected(ctx)
}

// Accept waits for a connection on a listening socket and returns it.
func (e *Endpoint) Accept(ctx context.Context) (*Endpoint, error) {
	for {
		fd, err := e.sockfd()
		if err != nil {
			return nil, err
		}
		nfd, _, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err == nil {
			return newEndpoint(e.Host, e.Family, nfd)
		}
		if !errors.Is(err, unix.EAGAIN) {
			return nil, os.NewSyscallError("accept", err)
		}
		if err := e.wait(ctx, unix.POLLIN); err != nil {
			return nil, err
		}
	}
}

// Write writes all of b, waiting for buffer space as needed.
func (e *Endpoint) Write(ctx context.Context, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		fd, err := e.sockfd()
		if err != nil {
			return n, err
		}
		m, err := unix.Write(fd, b[n:])
		if m > 0 {
			n += m
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, unix.EAGAIN) {
			return n, os.NewSyscallError("write", err)
		}
		if err := e.wait(ctx, unix.POLLOUT); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Read reads what is available into b, waiting for at least one byte.
// It returns io.EOF once the peer's FIN has been read.
func (e *Endpoint) Read(ctx context.Context, b []byte) (int, error) {
	for {
		fd, err := e.sockfd()
		if err != nil {
			return 0, err
		}
		n, err := unix.Read(fd, b)
		switch {
		case err == nil && n == 0 && len(b) > 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case !errors.Is(err, unix.EAGAIN):
			return 0, os.NewSyscallError("read", err)
		}
		if err := e.wait(ctx, unix.POLLIN); err != nil {
			return 0, err
		}
	}
}

// ReadAll reads until the peer's FIN (io.EOF) and returns the byte count.
func (e *Endpoint) ReadAll(ctx context.Context) (int, error) {
	var buf [4096]byte
	total := 0
	for {
		n, err := e.Read(ctx, buf[:])
		total += n
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Shutdown half-closes the socket. how is unix.SHUT_WR (send our FIN, keep
// reading), unix.SHUT_RD or unix.SHUT_RDWR. Equivalent to: shutdown(fd, how).
func (e *Endpoint) Shutdown(how int) error {
	fd, err := e.sockfd()
	if err != nil {
		return err
	}
	return os.NewSyscallError("shutdown", unix.Shutdown(fd, how))
}

// Close closes the file descriptor: the application's close(). What the
// kernel does next (FIN, RST with SO_LINGER {1,0} or unread data) is
// what the recorder observes. A second Close returns nil.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return os.NewSyscallError("close", unix.Close(e.fd))
}

// LocalAddr returns the socket's bound address (getsockname).
func (e *Endpoint) LocalAddr() (netip.AddrPort, error) {
	fd, err := e.sockfd()
	if err != nil {
		return netip.AddrPort{}, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, os.NewSyscallError("getsockname", err)
	}
	return addrPort(sa), nil
}

// RemoteAddr returns the peer's address (getpeername).
func (e *Endpoint) RemoteAddr() (netip.AddrPort, error) {
	fd, err := e.sockfd()
	if err != nil {
		return netip.AddrPort{}, err
	}
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return netip.AddrPort{}, os.NewSyscallError("getpeername", err)
	}
	return addrPort(sa), nil
}

// wait polls the socket for events until they come, the socket reports an
// error or hang-up, or ctx ends.
func (e *Endpoint) wait(ctx context.Context, events int16) error {
	for {
		fd, err := e.sockfd()
		if err != nil {
			return err
		}
		timeout := 100 * time.Millisecond
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = max(time.Until(dl), 0)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(fds, int(timeout.Milliseconds()))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return os.NewSyscallError("poll", err)
		}
		if n > 0 && fds[0].Revents != 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
