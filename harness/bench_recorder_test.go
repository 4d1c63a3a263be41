package harness

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
	"golang.org/x/sys/unix"
)

// closeShape is how a churn loop ends its connections.
type closeShape struct {
	name   string
	reset  bool             // client closes with SO_LINGER {1, 0}
	client []tcpstate.State // what each client timeline must read
	child  []tcpstate.State // what each accepted socket's must read
}

var (
	// fourWay: FIN both ways, the server reading to EOF. Ten transitions.
	// No TIME_WAIT: tcp_max_tw_buckets is 0, so ports are reused at once.
	fourWay = closeShape{"fourway", false,
		[]tcpstate.State{tcpstate.SynSent, tcpstate.Established, tcpstate.FinWait1, tcpstate.FinWait2, tcpstate.Closed},
		[]tcpstate.State{tcpstate.SynRecv, tcpstate.Established, tcpstate.CloseWait, tcpstate.LastAck, tcpstate.Closed}}
	// reset: the client aborts with RST. Six transitions.
	reset = closeShape{"reset", true,
		[]tcpstate.State{tcpstate.SynSent, tcpstate.Established, tcpstate.Closed},
		[]tcpstate.State{tcpstate.SynRecv, tcpstate.Established, tcpstate.Closed}}
)

// churn runs workers connect/close loops in p until n connections are done
// and returns the client sockets' cookies. Each loop makes the system calls
// a lean server and client would and no more: connect (the handshake ends
// inside it on a veth), accept, close, read to EOF, close; sockets come
// from the namespace's pool. The cookie is read for the recorder's check.
func churn(tb testing.TB, p *Pair, shape closeShape, workers, n int) []uint64 {
	for _, h := range p.Hosts() {
		if err := h.NS.SetSysctl(TCPMaxTwBuckets, "0"); err != nil {
			tb.Fatal(err)
		}
	}
	var next atomic.Int64
	cookies := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		ln, err := p.Server.Listen(IPv4, 0, 1024)
		if err != nil {
			tb.Fatal(err)
		}
		addr, _ := ln.LocalAddr()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ln.Close()
			if err := churnLoop(p.Client, ln, sockaddr(addr), shape.reset, &next, int64(n), &cookies[w]); err != nil {
				tb.Error(err)
			}
		}()
	}
	wg.Wait()
	var all []uint64
	for _, c := range cookies {
		all = append(all, c...)
	}
	return all
}

func churnLoop(client *Host, ln *Endpoint, to unix.Sockaddr, reset bool, next *atomic.Int64, n int64, cookies *[]uint64) error {
	lfd := ln.FD()
	var buf [64]byte
	for next.Add(1) <= n {
		fd, err := client.NS.sockets.get(client.NS, IPv4)
		if err != nil {
			return err
		}
		ck, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
		if err != nil {
			return fmt.Errorf("cookie: %w", err)
		}
		if err := unix.Connect(fd, to); err != nil && !errors.Is(err, unix.EINPROGRESS) {
			return fmt.Errorf("connect: %w", err)
		}
		sfd, err := retryOnEAGAIN(lfd, unix.POLLIN, func() (int, error) {
			nfd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			return nfd, err
		})
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		if reset {
			if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
				return fmt.Errorf("linger: %w", err)
			}
		}
		if err := unix.Close(fd); err != nil {
			return fmt.Errorf("close: %w", err)
		}
		if !reset {
			if _, err := retryOnEAGAIN(sfd, unix.POLLIN, func() (int, error) { return unix.Read(sfd, buf[:]) }); err != nil {
				return fmt.Errorf("read: %w", err)
			}
		}
		if err := unix.Close(sfd); err != nil {
			return fmt.Errorf("close: %w", err)
		}
		*cookies = append(*cookies, ck)
	}
	return nil
}

// retryOnEAGAIN calls op until it does not fail with EAGAIN, polling fd
// for events in between.
func retryOnEAGAIN(fd int, events int16, op func() (int, error)) (int, error) {
	for {
		r, err := op()
		if !errors.Is(err, unix.EAGAIN) {
			return r, err
		}
		if _, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: events}}, 5000); err != nil && !errors.Is(err, unix.EINTR) {
			return -1, err
		}
	}
}

// BenchmarkRecorderChurn measures transitions recorded per second under
// connect/close churn with zero lost events, checks that every
// connection's timeline is whole and in its own namespace, and reports the
// recorder's memory per 1,000 recorded connections.
func BenchmarkRecorderChurn(b *testing.B) {
	for _, shape := range []closeShape{fourWay, reset} {
		b.Run(shape.name, func(b *testing.B) { recorderChurn(b, shape) })
	}
}

func recorderChurn(b *testing.B, shape closeShape) {
	needRootB(b)
	p, err := NewPair(PairOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	rec, err := NewRecorder(RecorderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer rec.Close()
	if rec.Mode() != ModeTrace {
		b.Skip(rec.Reason())
	}
	if err := rec.WatchPair(p); err != nil {
		b.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st0, _ := rec.Stats()

	b.ResetTimer()
	start := time.Now()
	clients := churn(b, p, shape, 4, b.N)
	elapsed := time.Since(start)
	b.StopTimer()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rec.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	st, _ := rec.Stats()
	if st.Failed != 0 || st.Seen != st.Received {
		b.Fatalf("lost events: %+v", st)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Every connection's timeline must be whole and in its own namespace.
	incomplete := 0
	for _, c := range clients {
		tl := rec.TimelineOf(c)
		if tl.Namespace != p.Client.NS.String() {
			b.Fatalf("misattributed:\n%s", tl)
		}
		if !equalStates(tl.States(), shape.client) {
			if incomplete++; incomplete == 1 {
				b.Logf("incomplete client timeline (%+v):\n%s\nsock_diag: %s", st, tl, kernelSockets(p, tl.Local))
			}
		}
	}
	for _, tl := range rec.Timelines(p.Server.NS) {
		if path := tl.Path(); len(path) >= 2 && path[0] == tcpstate.Closed && path[1] == tcpstate.Listen {
			continue // a listener
		}
		if !equalStates(tl.States(), shape.child) {
			if incomplete++; incomplete == 1 {
				b.Logf("incomplete accepted timeline (%+v):\n%s", st, tl)
			}
		}
	}
	transitions := st.Received - st0.Received
	b.ReportMetric(float64(transitions)/elapsed.Seconds(), "transitions/s")
	b.ReportMetric(float64(st.Failed), "lost")
	b.ReportMetric(float64(st.PrimaryMisses), "rescued")
	b.ReportMetric(float64(st.Duplicates), "duplicates")
	b.ReportMetric(float64(st.Gaps), "gaps")
	b.ReportMetric(float64(incomplete), "incomplete")
	if incomplete > 0 {
		b.Fatalf("%d timelines incomplete", incomplete)
	}
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(st.Connections)*1000, "B/1000conns")
}

// BenchmarkSSPollingChurn is the contrast: the same loop watched by a
// sock_diag poller dumping both namespaces as fast as it can (what a
// script polling `ss -tan` does, without the process start). Every
// connection enters SYN_SENT, FIN_WAIT2 and LAST_ACK once; the metrics are
// the share of those entries the poller ever saw.
func BenchmarkSSPollingChurn(b *testing.B) {
	needRootB(b)
	p, err := NewPair(PairOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	polls, stop := pollLikeSS(b, p)
	b.ResetTimer()
	churn(b, p, fourWay, 4, b.N)
	b.StopTimer()
	seen := stop()
	for _, s := range []tcpstate.State{tcpstate.SynSent, tcpstate.FinWait2, tcpstate.LastAck} {
		b.ReportMetric(100*float64(seen[s])/float64(b.N), "%seen-"+s.String())
	}
	b.ReportMetric(float64(polls.Load()), "polls")
}

// kernelSockets lists what sock_diag shows of the connection with this
// local address in either namespace: the kernel's word on a timeline that
// looks incomplete.
func kernelSockets(p *Pair, local netip.AddrPort) string {
	var out []string
	for _, h := range p.Hosts() {
		d, err := h.NS.NewDiag()
		if err != nil {
			return err.Error()
		}
		socks, err := d.Sockets(AllStates)
		_ = d.Close()
		if err != nil {
			return err.Error()
		}
		for _, s := range socks {
			if s.Local == local || s.Remote == local {
				out = append(out, fmt.Sprintf("%s: %s %s -> %s timer %d expires %v retrans %d", h.Name, s.State, s.Local, s.Remote, s.Timer, s.Expires, s.Retrans))
			}
		}
	}
	if out == nil {
		return "none"
	}
	return strings.Join(out, "; ")
}

func equalStates(a, b []tcpstate.State) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// pollLikeSS dumps both namespaces' sockets with sock_diag in a loop, as a
// script polling `ss -tan` would, and counts the distinct (socket, state)
// pairs it saw. stop ends it and returns the counts per state.
func pollLikeSS(tb testing.TB, p *Pair) (*atomic.Int64, func() map[tcpstate.State]int) {
	var diags []*Diag
	for _, h := range p.Hosts() {
		d, err := h.NS.NewDiag()
		if err != nil {
			tb.Fatal(err)
		}
		diags = append(diags, d)
	}
	var polls atomic.Int64
	stop := make(chan struct{})
	done := make(chan map[tcpstate.State]int)
	go func() {
		seen := map[[2]uint64]bool{}
		for {
			select {
			case <-stop:
				counts := map[tcpstate.State]int{}
				for k := range seen {
					counts[tcpstate.State(k[1])]++
				}
				for _, d := range diags {
					_ = d.Close()
				}
				done <- counts
				return
			default:
			}
			for _, d := range diags {
				socks, err := d.Sockets(AllStates)
				if err != nil {
					continue
				}
				for _, s := range socks {
					seen[[2]uint64{s.Cookie, uint64(s.State)}] = true
				}
			}
			polls.Add(1)
		}
	}()
	return &polls, func() map[tcpstate.State]int { close(stop); return <-done }
}

// BenchmarkChurnWithoutRecorder is the same loop with nothing attached: the
// ceiling the machine allows, and the baseline for the recorder's cost.
// Its transitions/s counts the ten transitions each connection makes.
func BenchmarkChurnWithoutRecorder(b *testing.B) {
	for _, shape := range []closeShape{fourWay, reset} {
		b.Run(shape.name, func(b *testing.B) {
			needRootB(b)
			p, err := NewPair(PairOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.ResetTimer()
			start := time.Now()
			churn(b, p, shape, 4, b.N)
			perConn := len(shape.client) + len(shape.child)
			b.ReportMetric(float64(perConn*b.N)/time.Since(start).Seconds(), "transitions/s")
		})
	}
}
