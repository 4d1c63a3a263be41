package finwait2_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
	"golang.org/x/sys/unix"
)

// finTimeout is short enough for CI and long against the kernel's floor:
// tcp_fin_time() never waits less than 3.5 RTO (700 ms at the 200 ms
// minimum RTO).
const finTimeout = 2 * time.Second

// expectDwell asserts that the orphan left FIN_WAIT2 after d. The timer is
// armed when the ACK of our FIN arrives, the instant of the traced
// FIN_WAIT1 -> FIN_WAIT2, so the kernel keeps it there at least d less one
// jiffy (the partly elapsed tick) and at most d plus the timer wheel's
// rounding for d. What the recorder measured (an interval, as the exit is
// seen by sock_diag) must overlap that, and be no wider than its polling.
func expectDwell(tl harness.Timeline, d time.Duration) {
	GinkgoHelper()
	lo, hi, ok := tl.DwellRange(FinWait2)
	Expect(ok).To(BeTrue(), "never left FIN_WAIT2\n%s", tl)
	kernelLo, kernelHi := d-harness.Jiffy(), d+harness.TimerSlack(d)
	Expect(hi).To(BeNumerically(">=", kernelLo), "left FIN_WAIT2 too early\n%s", tl)
	Expect(lo).To(BeNumerically("<=", kernelHi), "left FIN_WAIT2 too late\n%s", tl)
	Expect(hi-lo).To(BeNumerically("<", precision), "recorder too imprecise\n%s", tl)
}

// precision is what the recorder promises for an exit seen by sock_diag:
// a 10 ms poll and the dump's own time, with room for a busy machine.
const precision = 100 * time.Millisecond

var _ = Describe("FIN_WAIT2", Label("finwait2"), func() {
	BeforeEach(func() { RequireTracing() })

	DescribeTable("ends after tcp_fin_timeout for an orphan, which never enters TIME_WAIT",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			Expect(lab.Client.NS.SetSysctl(harness.TCPFinTimeout, "2")).To(Succeed())
			client, server, _ := lab.Connect(ctx)
			Expect(client.Close()).To(Succeed()) // orphaned: no file refers to it
			// The server never closes, so no FIN ever reaches the client.
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeInState(Closed))
			tl := lab.Timeline(client)
			Expect(tl).To(HaveStates(SynSent, Established, FinWait1, FinWait2, Closed))
			expectDwell(tl, finTimeout)
			// The reaping is silent: a timewait socket (substate
			// FIN_WAIT2) just expires, and the server stays in
			// CLOSE_WAIT. Rarely the kernel kept the orphan as a full
			// socket instead (the ACK of its FIN came in while close()
			// still held it); then its timer ends it with an RST to the
			// peer, and the end is traced rather than seen by sock_diag.
			if last := tl.Transitions[len(tl.Transitions)-1]; last.Source == harness.Traced {
				Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(HaveStates(SynRecv, Established, CloseWait, Closed))
			} else {
				Expect(lab.Timeline(server)).To(BeInState(CloseWait))
			}
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("ends after TCP_LINGER2 for an orphan, whatever tcp_fin_timeout says",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			Expect(lab.Client.NS.Sysctl(harness.TCPFinTimeout)).To(Equal("60"), "a new namespace starts at 60")
			client, _, _ := lab.Connect(ctx)
			Expect(client.SetLinger2(finTimeout)).To(Succeed())
			Expect(client.Close()).To(Succeed())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeInState(Closed))
			tl := lab.Timeline(client)
			Expect(tl).To(HaveStates(SynSent, Established, FinWait1, FinWait2, Closed))
			expectDwell(tl, finTimeout)
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("lasts past tcp_fin_timeout for a socket half-closed with shutdown(SHUT_WR) and still open",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			Expect(lab.Client.NS.SetSysctl(harness.TCPFinTimeout, "1")).To(Succeed())
			client, _, _ := lab.Connect(ctx)
			Expect(client.Shutdown(unix.SHUT_WR)).To(Succeed())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(FinWait2))
			// Three times the timeout plus the wheel's slack: an orphan
			// would long be gone.
			Consistently(lab.TimelineFunc(client)).WithContext(ctx).WithTimeout(3*time.Second + harness.TimerSlack(time.Second)).
				Should(BeInState(FinWait2))
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, FinWait1, FinWait2))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("starts the timeout when a half-closed socket is finally closed",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			Expect(lab.Client.NS.SetSysctl(harness.TCPFinTimeout, "2")).To(Succeed())
			client, _, _ := lab.Connect(ctx)
			Expect(client.Shutdown(unix.SHUT_WR)).To(Succeed())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(FinWait2))
			closedAt := harness.Monotonic()
			Expect(client.Close()).To(Succeed())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeInState(Closed))
			tl := lab.Timeline(client)
			// The kernel reports FIN_WAIT2 -> FIN_WAIT2 at close(): kept
			// as a self-transition, invisible to the state sequence.
			Expect(tl).To(HaveStates(SynSent, Established, FinWait1, FinWait2, Closed))
			Expect(tl.Transitions).To(ContainElement(And(HaveField("From", FinWait2), HaveField("To", FinWait2))))
			exit := tl.Transitions[len(tl.Transitions)-1]
			Expect(exit.At-closedAt).To(BeNumerically(">=", finTimeout-harness.Jiffy()), tl.String())
			Expect(exit.At-closedAt).To(BeNumerically("<=", finTimeout+harness.TimerSlack(finTimeout)+exit.Window), tl.String())
		}, Families(SpecTimeout(30*time.Second)))
})
