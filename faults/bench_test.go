package faults

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcplab/tcplab/harness"
	"golang.org/x/sys/unix"
)

func benchPair(b *testing.B) *harness.Pair {
	b.Helper()
	if err := harness.CheckPrivileges(); err != nil {
		b.Skip(err)
	}
	p, err := harness.NewPair(harness.PairOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// The shell baseline installs and removes the same drop rule with nft in
// the server's namespace, as a script would.
const shellRule = `set -e
nft add table inet tcplab-faults
nft add chain inet tcplab-faults input '{ type filter hook input priority filter; policy accept; }'
nft add rule inet tcplab-faults input iifname eth0 tcp flags '& (syn|ack) == syn' counter drop comment tcplab-bench
h=$(nft -a list chain inet tcplab-faults input | sed -n 's/.*comment "tcplab-bench" # handle //p')
nft delete rule inet tcplab-faults input handle $h
`

// BenchmarkApplyUndoShellBaseline is what Drop's Apply and Undo are
// measured against.
func BenchmarkApplyUndoShellBaseline(b *testing.B) {
	p := benchPair(b)
	if _, err := exec.LookPath("nft"); err != nil {
		b.Skip("nft not installed: make deps installs it")
	}
	ns := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), p.Server.NS.FD())
	for b.Loop() {
		if out, err := exec.Command("nsenter", "--net="+ns, "bash", "-c", shellRule).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}

// BenchmarkApplyUndo applies and undoes one fault of each backend.
func BenchmarkApplyUndo(b *testing.B) {
	for _, c := range []struct {
		name  string
		fault Fault
		probe func() error
	}{
		{"filter", Drop{Match: Match{Dir: ClientToServer, Flags: SYN, Mask: SYN | ACK}}, HaveNFTables},
		{"queue", Hold{Match: Match{Dir: ClientToServer}}, HaveQueue},
		{"netem", Netem{Dir: ClientToServer, Delay: time.Millisecond}, HaveNetem},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := benchPair(b)
			if err := c.probe(); err != nil {
				b.Skip(err)
			}
			for b.Loop() {
				a, err := c.fault.Apply(p)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.Undo(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// udpPair is a UDP socket in each namespace of a pair.
type udpPair struct {
	send, recv int
	to         unix.Sockaddr
}

func newUDPPair(b *testing.B, p *harness.Pair) *udpPair {
	b.Helper()
	u := &udpPair{}
	err := p.Server.NS.Do(func() (err error) {
		if u.recv, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(u.recv, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20); err != nil {
			return err
		}
		return unix.Bind(u.recv, &unix.SockaddrInet4{Addr: p.Server.V4.Addr().As4(), Port: 9})
	})
	if err != nil {
		b.Fatal(err)
	}
	err = p.Client.NS.Do(func() (err error) {
		u.send, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	u.to = &unix.SockaddrInet4{Addr: p.Server.V4.Addr().As4(), Port: 9}
	b.Cleanup(func() { _ = unix.Close(u.send); _ = unix.Close(u.recv) })
	return u
}

func realtimeNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &ts)
	return ts.Nano()
}

// run sends n datagrams at rate per second (0: as fast as it can), each stamped with its send
// time, and returns each one's latency from send to the receiver's read,
// and how many never arrived within wait of the last send.
func (u *udpPair) run(b *testing.B, n, rate int, wait time.Duration) (lat []time.Duration, lost int) {
	b.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		_ = unix.SetsockoptTimeval(u.recv, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: int64(wait / time.Second), Usec: int64(wait % time.Second / time.Microsecond)})
		for len(lat) < n {
			k, _, err := unix.Recvfrom(u.recv, buf, 0)
			if errors.Is(err, unix.EINTR) {
				continue // the Go runtime's preemption signal
			}
			if err != nil {
				return // timeout: the rest is lost
			}
			// The time the receiver has it: the kernel's receive
			// timestamp would be taken at the device, before the
			// queue holds the packet.
			now := realtimeNow()
			if k >= 8 {
				lat = append(lat, time.Duration(now-int64(binary.NativeEndian.Uint64(buf))))
			}
		}
	}()
	var tick <-chan time.Time // nil: as fast as the sender can
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		tick = t.C
	}
	msg := make([]byte, 8)
	for range n {
		if tick != nil {
			<-tick
		}
		binary.NativeEndian.PutUint64(msg, uint64(realtimeNow()))
		if err := unix.Sendto(u.send, msg, 0, u.to); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	return lat, n - len(lat)
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

// BenchmarkQueueDelayAccuracy sends 1,000 datagrams a second through a
// queue delaying each by d and reports the error of the delay seen at the
// receiver (its kernel timestamp less the send time less d): p50 and p99,
// in microseconds. The baseline is the same path with no queue; b.N is the
// number of datagrams (use -benchtime=2000x).
func BenchmarkQueueDelayAccuracy(b *testing.B) {
	for _, d := range []time.Duration{0, time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second} {
		name := "baseline"
		if d > 0 {
			name = "delay=" + d.String()
		}
		b.Run(name, func(b *testing.B) {
			p := benchPair(b)
			if err := HaveQueue(); err != nil {
				b.Skip(err)
			}
			u := newUDPPair(b, p)
			var q *Queued
			if d > 0 {
				var err error
				q, err = Intercept{Match: Match{Dir: ClientToServer, AnyProtocol: true}, Limit: 4096,
					Decide: func(Packet) Action { return After(d) }}.Queue(p)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = q.Undo() })
			}
			b.ResetTimer()
			steal0, total0 := cpuSteal()
			lat, lost := u.run(b, b.N, 1000, d+time.Second)
			steal1, total1 := cpuSteal()
			b.StopTimer()
			if total1 > total0 {
				b.ReportMetric(100*float64(steal1-steal0)/float64(total1-total0), "%steal")
			}
			if lost > 0 {
				b.Fatalf("%d of %d datagrams lost", lost, b.N)
			}
			for i := range lat {
				lat[i] -= d
			}
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds()), "p50-err-us")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-err-us")
			b.ReportMetric(float64(percentile(lat, 1).Microseconds()), "max-err-us")
			if q != nil {
				for _, p := range []float64{0.5, 0.99} {
					late, _ := q.Lateness(p)
					b.ReportMetric(float64(late.Microseconds()), fmt.Sprintf("queue-p%d-us", int(p*100)))
				}
			}
		})
	}
}

// BenchmarkQueueThroughput sends b.N datagrams as fast as one sender can
// through a queue that accepts each, and without the queue as the
// baseline; pkts/s counts those received.
func BenchmarkQueueThroughput(b *testing.B) {
	for _, queued := range []bool{false, true} {
		name := "baseline"
		if queued {
			name = "accept"
		}
		b.Run(name, func(b *testing.B) {
			p := benchPair(b)
			if err := HaveQueue(); err != nil {
				b.Skip(err)
			}
			u := newUDPPair(b, p)
			if queued {
				q, err := Intercept{Match: Match{Dir: ClientToServer, AnyProtocol: true},
					Decide: func(Packet) Action { return Accept }}.Queue(p)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = q.Undo() })
			}
			start := time.Now()
			lat, _ := u.run(b, b.N, 0, 200*time.Millisecond)
			b.ReportMetric(float64(len(lat))/time.Since(start).Seconds(), "pkts/s")
			b.ReportMetric(float64(b.N-len(lat)), "lost")
		})
	}
}

// cpuSteal reads the steal and total ticks of all CPUs from /proc/stat:
// the time the hypervisor ran something else while a vCPU had work. A
// virtual machine's p99 latencies follow it, whatever the code does.
func cpuSteal() (steal, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		if i < 8 { // guest time is already counted in user
			total += v
		}
		if i == 7 {
			steal = v
		}
	}
	return steal, total
}
