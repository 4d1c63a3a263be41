package harness

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// maxSocketBatch bounds the sockets created per visit to the namespace,
// and so the unused sockets a namespace holds for each family.
const maxSocketBatch = 32

// socketPool hands out TCP sockets created inside one namespace. Creating
// a socket means a trip to the namespace's Do worker, an OS-thread hand-off
// each way (about 100 us here); the pool makes each trip create a batch
// that doubles while demand lasts (1, 2, 4, ... 32). A spec that makes two
// sockets costs two trips and holds nothing extra worth mentioning; a
// connect/close loop costs one trip per 32 sockets. A pooled socket is a
// fresh, unbound socket: the kernel records nothing about it until it is
// used.
type socketPool struct {
	mu    sync.Mutex
	idle  map[Family][]int
	batch map[Family]int
}

func (p *socketPool) get(ns *Namespace, f Family) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		p.idle, p.batch = map[Family][]int{}, map[Family]int{}
	}
	if fds := p.idle[f]; len(fds) > 0 {
		fd := fds[len(fds)-1]
		p.idle[f] = fds[:len(fds)-1]
		return fd, nil
	}
	n := min(max(2*p.batch[f], 1), maxSocketBatch)
	p.batch[f] = n
	fds := make([]int, 0, n)
	err := ns.Do(func() error {
		for range n {
			fd, err := unix.Socket(int(f), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
			if err != nil {
				return os.NewSyscallError("socket", err)
			}
			fds = append(fds, fd)
		}
		return nil
	})
	if len(fds) == 0 {
		return -1, err
	}
	p.idle[f] = fds[1:]
	return fds[0], nil
}

// close closes the unused sockets.
func (p *socketPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, fds := range p.idle {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}
	p.idle = nil
}
