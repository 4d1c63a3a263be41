package faults

import (
	"container/heap"
	"errors"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// releaser lets delayed packets through at their deadlines. Go's timers
// wake up to a millisecond late (the runtime sleeps in whole
// milliseconds), so the releaser sleeps on its own OS thread in ppoll,
// whose timeout is a high-resolution kernel timer, until spinWindow before
// the deadline, then watches the clock; an eventfd wakes it when an
// earlier deadline arrives. Measured here: releases at their deadline to
// 1 us at the median (140 us with ppoll alone).
//
// The releaser shares nothing with the queue's reader but its own short
// lock: release runs outside it, so neither waits on the other's
// system calls (a verdict takes 100 us or more here).
type releaser struct {
	efd     int
	release func(id uint32) // called with no lock held; safe to call concurrently

	mu      sync.Mutex
	due     dueHeap // guarded by mu
	stopped bool    // guarded by mu
	late    lateRing
	done    chan struct{}
}

// lateRing keeps how late the last len(ring) releases were against their
// deadlines.
type lateRing struct {
	mu   sync.Mutex
	ring [4096]time.Duration
	n    int // releases noted in all
}

func (l *lateRing) note(d time.Duration) {
	l.mu.Lock()
	l.ring[l.n%len(l.ring)] = d
	l.n++
	l.mu.Unlock()
}

// quantile returns the q-quantile (0 to 1) of the kept lateness, and how
// many releases it covers; 0, 0 when none was noted.
func (l *lateRing) quantile(q float64) (time.Duration, int) {
	l.mu.Lock()
	s := slices.Clone(l.ring[:min(l.n, len(l.ring))])
	l.mu.Unlock()
	if len(s) == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))], len(s)
}

// spinWindow is how long before a deadline the releaser stops sleeping
// and polls the clock instead: a sleeping CPU takes 100-200 us to wake on
// this virtual machine, more than the accuracy the queue promises.
const spinWindow = 300 * time.Microsecond

type dueItem struct {
	at time.Time
	id uint32
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newReleaser(release func(uint32)) (*releaser, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	r := &releaser{efd: efd, release: release, done: make(chan struct{})}
	go r.run()
	return r, nil
}

// add schedules id for at.
func (r *releaser) add(at time.Time, id uint32) {
	r.mu.Lock()
	heap.Push(&r.due, dueItem{at, id})
	first := r.due[0].id == id
	r.mu.Unlock()
	if first {
		r.wake() // a new earliest deadline
	}
}

// pending is how many packets wait.
func (r *releaser) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.due)
}

// flush releases everything now, in deadline order.
func (r *releaser) flush() {
	r.mu.Lock()
	var ids []uint32
	for len(r.due) > 0 {
		ids = append(ids, heap.Pop(&r.due).(dueItem).id)
	}
	r.mu.Unlock()
	for _, id := range ids {
		r.release(id)
	}
}

// stop ends the thread once the releases under way are done.
func (r *releaser) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.wake()
	<-r.done
	_ = unix.Close(r.efd)
}

func (r *releaser) wake() {
	var one [8]byte
	one[0] = 1
	_, _ = unix.Write(r.efd, one[:])
}

func (r *releaser) run() {
	// This goroutine's thread only ever sleeps in ppoll; it is never
	// unlocked, so it ends with the goroutine.
	runtime.LockOSThread()
	defer close(r.done)
	// The thread's timers may fire 50 us late by default (timer slack).
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	keepP := runtime.GOMAXPROCS(0) > 1
	fds := []unix.PollFd{{Fd: int32(r.efd), Events: unix.POLLIN}}
	var buf [8]byte
	var due []dueItem
	for {
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			return
		}
		now := time.Now()
		due = due[:0]
		for len(r.due) > 0 && !r.due[0].at.After(now) {
			due = append(due, heap.Pop(&r.due).(dueItem))
		}
		var timeout *unix.Timespec
		var left time.Duration
		if len(r.due) > 0 {
			left = r.due[0].at.Sub(now)
			ts := unix.NsecToTimespec(int64(left - spinWindow))
			timeout = &ts
		}
		r.mu.Unlock()
		switch {
		case len(due) > 0:
			for _, it := range due {
				r.late.note(time.Since(it.at))
				r.release(it.id)
			}
			continue // the verdicts took time: look at the clock again
		case timeout != nil && left <= spinWindow:
			continue // the deadline is near: look again at once
		case timeout != nil && left <= keepWindow && keepP:
			ppollKeepingP(fds, timeout)
		default:
			if _, err := unix.Ppoll(fds, timeout, nil); err != nil && !errors.Is(err, unix.EINTR) {
				return
			}
		}
		_, _ = unix.Read(r.efd, buf[:])
	}
}

// keepWindow is how close a deadline must be for the releaser to sleep
// without giving up its P (the Go runtime's licence to run Go code). A
// thread back from an ordinary system call must win a P back first, and
// with both busy that can take a scheduler time slice (up to 10 ms here).
// Keeping the P costs the rest of the process that P, and delays a
// garbage collector's stop-the-world, for at most this long before each
// deadline; the last spinWindow of it is spent spinning anyway.
const keepWindow = 500 * time.Microsecond

// ppollKeepingP is ppoll(2) as a raw system call: the runtime does not see
// the thread leave, so the P stays with it.
func ppollKeepingP(fds []unix.PollFd, timeout *unix.Timespec) {
	_, _, _ = unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)),
		uintptr(unsafe.Pointer(timeout)), 0, 0, 0)
}
