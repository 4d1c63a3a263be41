package lostsegments_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
	"golang.org/x/sys/unix"
)

var _ = Describe("a dead peer", Label("filter"), func() {
	BeforeEach(func() { RequireTracing() })

	// With no user timeout, unacknowledged data is given up after
	// tcp_retries2: the kernel turns the count into a time,
	// (2^(retries2+1) - 1) x 200 ms (tcp_model_timeout; 3 s for 3), and
	// checks it as the retransmission timer fires, like an orphan's.
	DescribeTable("ends ESTABLISHED with ETIMEDOUT after tcp_retries2 when the peer is gone",
		func(ctx SpecContext, f harness.Family) {
			const retries2 = 3
			lab := NewLab(f)
			Expect(lab.Client.NS.SetSysctl("net.ipv4.tcp_early_retrans", "0")).To(Succeed())
			Expect(lab.Client.NS.SetSysctl(harness.TCPRetries2, "3")).To(Succeed())
			client, _, _ := lab.Connect(ctx)
			rto := rtoOf(client)
			blackhole := lab.Apply(faults.Drop{Match: faults.Match{Dir: faults.ClientToServer}})
			sent := harness.Monotonic()
			Expect(client.Write(ctx, []byte("hello"))).To(Equal(5))
			_, err := client.Read(ctx, make([]byte, 16))
			Expect(err).To(MatchError(unix.ETIMEDOUT))
			tl := lab.Timeline(client)
			Expect(tl).To(HaveStates(SynSent, Established, Closed))
			limit := time.Duration((2<<retries2)-1) * 200 * time.Millisecond
			want, early, late := giveUp(rto, limit, false)
			end := tl.Transitions[len(tl.Transitions)-1].At - sent
			Expect(end).To(And(BeNumerically(">=", want-early), BeNumerically("<=", want+late)),
				"RTO %v, limit %v: want the firing at %v\n%s", rto, limit, want, tl)
			// The segment, then one retransmission per firing but the last.
			Expect(blackhole.Packets()).To(BeNumerically(">=", retries2+1))
		}, Families(SpecTimeout(30*time.Second)))
})

var _ = Describe("a SYN flood", Label("filter"), func() {
	// Without syncookies a listener keeps one request socket (SYN_RECV)
	// per half-open connection, up to its backlog; further SYNs are
	// dropped. The clients never see a SYN-ACK, so none completes.
	// Depending on whether the kernel's inet_csk_reqsk_queue_is_full
	// compares with >= or >, the pile stops at the backlog or one past
	// it (6.18 here: 9 for a backlog of 8); the report entry says which.
	DescribeTable("piles up SYN_RECV request sockets up to the listen backlog",
		func(ctx SpecContext, f harness.Family) {
			const backlog, clients = 8, 24
			lab := NewLab(f)
			Expect(lab.Server.NS.SetSysctl(harness.TCPSyncookies, "0")).To(Succeed())
			ln, err := lab.Server.Listen(f, 0, backlog)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(ln.Close)
			addr := lab.ServerAddr(ln)
			lab.Apply(faults.Drop{Match: faults.Match{Dir: faults.ServerToClient, Flags: faults.SYN | faults.ACK, Mask: faults.SYN | faults.ACK}})
			syns := lab.Apply(faults.Count{Match: faults.Match{Dir: faults.ClientToServer, Flags: faults.SYN, Mask: faults.SYN | faults.ACK}})
			for range clients {
				c, err := lab.Client.Socket(f)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(c.Close)
				Expect(c.StartConnect(addr)).To(Succeed())
			}
			diag, err := lab.Server.NS.NewDiag()
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(diag.Close)
			requests := func() (int, error) {
				socks, err := diag.Sockets(SynRecv.Mask() | NewSynRecv.Mask())
				n := 0
				for _, s := range socks {
					if s.Request() && s.Local == addr {
						n++
					}
				}
				return n, err
			}
			Eventually(syns.Packets).WithContext(ctx).Should(BeNumerically(">=", clients))
			Eventually(requests).WithContext(ctx).Should(BeNumerically(">=", backlog))
			// Through the clients' first SYN retransmission (1 s): the
			// pile stays at the backlog while SYNs keep coming.
			Consistently(requests).WithContext(ctx).WithTimeout(1500 * time.Millisecond).
				Should(And(BeNumerically(">=", backlog), BeNumerically("<=", backlog+1)))
			Expect(syns.Packets()).To(BeNumerically(">", clients), "the retransmitted SYNs")
			n, _ := requests()
			AddReportEntry("request sockets", n)
		}, Families(SpecTimeout(30*time.Second)))
})
