package faults

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcplab/tcplab/harness"
)

// A delay is counted from the packet's arrival in the kernel, not from the
// moment the queue's reader wakes up to it: that wake-up takes 100 us to
// several ms on a busy or idle virtual CPU, and counting from it made
// every delay that much too long. The kernel stamps a queued packet
// (NFQA_TIMESTAMP) when it has one or when receive timestamps are wanted
// anywhere; a socket with SO_TIMESTAMPNS on makes them wanted (the same
// switch `ping` or chrony turn on) for as long as it stays open.

// stampWanted turns the kernel's receive timestamps on with a socket in the
// host's namespace and returns the function that turns them off again.
func stampWanted(h *harness.Host) (func(), error) {
	var fd int
	err := h.NS.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			_ = unix.Close(fd)
			return os.NewSyscallError("setsockopt SO_TIMESTAMPNS", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = unix.Close(fd) }, nil
}

// maxStampAge bounds how old a kernel timestamp may be and still be
// trusted: an older one (a wall clock step, or a stamp taken at another
// device long ago) falls back to the time the reader saw the packet.
const maxStampAge = time.Second

// arrival returns when the packet reached the queue: the kernel's stamp,
// carried onto Go's monotonic clock, or now when there is no usable stamp.
func arrival(stamp *time.Time, now time.Time) time.Time {
	if stamp == nil || stamp.IsZero() {
		return now
	}
	age := now.Sub(*stamp) // wall clock against wall clock
	if age < 0 || age > maxStampAge {
		return now
	}
	return now.Add(-age)
}
