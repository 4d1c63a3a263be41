package harness

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// init pins the main goroutine to the main thread, so no Do worker ever
// runs there: /proc/self/ns/net and /proc/net follow the thread group
// leader, and they must keep showing the process's own namespace.
func init() { runtime.LockOSThread() }

// Namespace owns one unnamed network namespace: a file descriptor that keeps
// it alive and a netlink handle opened inside it. The namespace dies when
// Close releases the last reference (sockets created inside also hold it).
type Namespace struct {
	fd     netns.NsHandle
	handle *netlink.Handle
	cookie uint64 // the kernel's net_cookie, as the tracepoint reports it
	inode  uint64

	mu       sync.Mutex
	closed   bool
	work     chan func() // the Do worker's queue, nil until first use
	workDone chan error
	sockets  socketPool
	closers  []func() error // run by Close, last attached first
}

// OnClose attaches a resource's release to the namespace: Close runs it,
// before the namespace's own descriptors go. Packages that keep a
// per-namespace connection (faults' nftables socket) use it. A closed
// namespace runs fn at once.
func (ns *Namespace) OnClose(fn func() error) error {
	ns.mu.Lock()
	if !ns.closed {
		ns.closers = append(ns.closers, fn)
		ns.mu.Unlock()
		return nil
	}
	ns.mu.Unlock()
	return fn()
}

// NewNamespace creates a fresh network namespace with its loopback up.
// Equivalent to: `unshare --net` followed by `ip link set lo up` inside.
func NewNamespace() (*Namespace, error) {
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	ns := &Namespace{fd: -1}
	// One visit does everything that needs the thread inside: unshare,
	// then open the netlink socket and read the cookie there, which saves
	// the two setns calls per socket that netlink.NewHandleAt would make.
	err := onLockedThread(func() error {
		fd, err := netns.New() // unshare(CLONE_NEWNET) on this thread
		if err != nil {
			return fmt.Errorf("create network namespace: %w", err)
		}
		ns.fd = fd
		if ns.handle, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("open netlink in namespace: %w", err)
		}
		if ns.cookie, err = netnsCookie(); err != nil {
			return err
		}
		// A quiet IPv6: no duplicate address detection (a tentative
		// address stalls traffic) and no link-local address, so no
		// router solicitations or MLD reports cross the lab's links and
		// packet counts see only what a spec sends. Neighbours are static.
		for _, kv := range [][2]string{
			{"/proc/sys/net/ipv6/conf/all/accept_dad", "0"},
			{"/proc/sys/net/ipv6/conf/default/accept_dad", "0"},
			{"/proc/sys/net/ipv6/conf/default/addr_gen_mode", "1"},
		} {
			if err := os.WriteFile(kv[0], []byte(kv[1]), 0); err != nil {
				return fmt.Errorf("configure ipv6 (%s): %w", kv[0], err)
			}
		}
		return nil
	})
	if err == nil {
		err = ns.init()
	}
	if err != nil {
		return nil, errors.Join(err, ns.Close())
	}
	return ns, nil
}

// netnsCookie reads the calling thread's namespace cookie.
func netnsCookie() (uint64, error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("probe socket: %w", err)
	}
	defer func() { _ = unix.Close(s) }()
	c, err := unix.GetsockoptUint64(s, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("read namespace cookie (SO_NETNS_COOKIE, Linux 5.14+): %w: %w", ErrNotSupported, err)
	}
	return c, nil
}

func (ns *Namespace) init() error {
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.fd), &st); err != nil {
		return fmt.Errorf("stat namespace: %w", err)
	}
	ns.inode = st.Ino
	// Loopback is always ifindex 1 in a new namespace.
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}
	if err := ns.handle.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set loopback up: %w", err)
	}
	return nil
}

// Do runs fn with the calling thread inside the namespace. It is the only
// place tcplab switches a thread's namespace. fn runs on the namespace's
// worker: one goroutine locked to its OS thread, started on first use, which
// entered the namespace with setns after saving the thread's own namespace
// (/proc/self/task/<tid>/ns/net). Close switches the worker back; if that
// fails its thread stays locked and the Go runtime retires it rather than
// reuse a thread in the wrong namespace.
//
// Calls are serialised, so fn must not block for long: create the socket,
// the netlink or nftables connection inside, then use it from anywhere. A
// socket stays in the namespace it was born in.
func (ns *Namespace) Do(fn func() error) error {
	ns.mu.Lock()
	if ns.closed {
		ns.mu.Unlock()
		return fmt.Errorf("namespace: %w", ErrClosed)
	}
	if ns.work == nil {
		ns.work = make(chan func(), 1)
		ns.workDone = make(chan error, 1)
		started := make(chan error, 1)
		go ns.worker(started)
		if err := <-started; err != nil {
			ns.work = nil
			ns.mu.Unlock()
			return err
		}
	}
	work := ns.work
	ns.mu.Unlock()

	errc := make(chan error, 1)
	work <- func() {
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("panic inside namespace: %v", r)
			}
		}()
		errc <- fn()
	}
	return <-errc
}

// worker serves Do: it locks its thread, enters the namespace, runs the
// functions it is sent, and on Close switches back.
func (ns *Namespace) worker(started chan<- error) {
	err := onLockedThread(func() error {
		if err := netns.Set(ns.fd); err != nil {
			started <- fmt.Errorf("enter namespace: %w", err)
			return nil
		}
		started <- nil
		for fn := range ns.work {
			fn()
		}
		return nil
	})
	ns.workDone <- err
}

// onLockedThread runs fn on a new goroutine locked to its OS thread and puts
// the thread back into its original namespace afterwards. fn may switch the
// thread's namespace (setns or unshare); nothing else may.
func onLockedThread(fn func() error) error {
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.GetFromThread(os.Getpid(), unix.Gettid())
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{fmt.Errorf("save thread namespace: %w", err)}
			return
		}
		defer func() { _ = orig.Close() }()
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the goroutine exits and Go
			// terminates the thread rather than reuse it.
			done <- result{fmt.Errorf("restore thread namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{fnErr}
	}()
	return (<-done).err
}

// Handle returns the netlink handle opened inside the namespace.
func (ns *Namespace) Handle() *netlink.Handle { return ns.handle }

// Cookie returns the namespace's cookie (the kernel's net->net_cookie), the
// key the recorder uses to attribute events.
func (ns *Namespace) Cookie() uint64 { return ns.cookie }

// Inode returns the namespace's inode number, as `ls -L /proc/*/ns/net` shows.
func (ns *Namespace) Inode() uint64 { return ns.inode }

// FD returns the file descriptor that holds the namespace.
func (ns *Namespace) FD() int { return int(ns.fd) }

// String names the namespace by inode, as `lsns -t net` does.
func (ns *Namespace) String() string { return fmt.Sprintf("net:[%d]", ns.inode) }

// Close releases the netlink handle and the namespace's file descriptor.
// The kernel destroys the namespace once no socket holds it any more. A
// second Close returns nil.
func (ns *Namespace) Close() error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return nil
	}
	ns.closed = true
	ns.sockets.close()
	var errs []error
	for i := len(ns.closers) - 1; i >= 0; i-- {
		errs = append(errs, ns.closers[i]())
	}
	ns.closers = nil
	if ns.work != nil {
		close(ns.work)
		if err := <-ns.workDone; err != nil {
			errs = append(errs, err)
		}
	}
	if ns.handle != nil {
		ns.handle.Close()
	}
	if ns.fd >= 0 {
		if err := ns.fd.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close namespace: %w", err))
		}
	}
	return errors.Join(errs...)
}
