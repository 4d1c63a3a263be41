package harness

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

var (
	hzOnce sync.Once
	hz     int
	hzErr  error
)

// KernelHZ returns the kernel's tick rate (CONFIG_HZ) from /proc/config.gz
// or /boot/config-$(uname -r). It wraps ErrNotSupported when neither says.
func KernelHZ() (int, error) {
	hzOnce.Do(func() { hz, hzErr = readHZ() })
	return hz, hzErr
}

func readHZ() (int, error) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	release := unix.ByteSliceToString(uts.Release[:])
	for _, p := range []string{"/proc/config.gz", "/boot/config-" + release} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r io.Reader = bytes.NewReader(b)
		if strings.HasSuffix(p, ".gz") {
			if r, err = gzip.NewReader(r); err != nil {
				continue
			}
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ="); ok {
				return strconv.Atoi(v)
			}
		}
	}
	return 0, fmt.Errorf("CONFIG_HZ: no kernel config readable: %w", ErrNotSupported)
}

// Jiffy returns one tick of the kernel clock, assuming HZ=100 (the
// coarsest) when HZ is unknown.
func Jiffy() time.Duration {
	h, err := KernelHZ()
	if err != nil || h <= 0 {
		h = 100
	}
	return time.Second / time.Duration(h)
}

// TimerSlack returns how late the kernel's timer wheel may fire a timer
// armed for d (kernel/time/timer.c): timers are not cascaded but rounded up
// to their level's granularity, 8x coarser per level, level n starting at
// LVL_START(n) = 63 << 3(n-1) jiffies. So a 60 s timer at HZ=250 (15000
// jiffies, level 3) fires up to 512 jiffies (2.048 s) late. One extra jiffy
// covers the partly elapsed tick at arming.
func TimerSlack(d time.Duration) time.Duration {
	j := Jiffy()
	ticks := int64(d / j)
	gran := int64(1)
	for lvlStart := int64(63); ticks >= lvlStart; lvlStart *= 8 {
		gran *= 8
	}
	return time.Duration(gran+1) * j
}
