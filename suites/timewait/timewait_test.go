package timewait_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
	"golang.org/x/sys/unix"
)

// timewaitLen is TCP_TIMEWAIT_LEN in include/net/tcp.h.
const timewaitLen = harness.TimewaitLen

// activeClose closes the client first and the server second, and waits for
// the client's TIME_WAIT.
func activeClose(ctx context.Context, lab *Lab) *harness.Endpoint {
	GinkgoHelper()
	client, server, _ := lab.Connect(ctx)
	Expect(client.Close()).To(Succeed())
	_, err := server.ReadAll(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(server.Close()).To(Succeed())
	Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(TimeWait))
	return client
}

var _ = Describe("TIME_WAIT", Label("timewait"), func() {
	BeforeEach(func() { RequireTracing() })

	DescribeTable("lasts 60 s on the active closer, then the connection is gone",
		Label("slow"),
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client := activeClose(ctx, lab)
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).WithTimeout(timewaitLen + 10*time.Second).
				WithPolling(250 * time.Millisecond).Should(BeInState(Closed))
			tl := lab.Timeline(client)
			Expect(tl).To(HaveStates(SynSent, Established, FinWait1, FinWait2, TimeWait, Closed))
			// The kernel keeps it 60 s less at most a jiffy (the partly
			// elapsed tick at arming) and more by at most the wheel's
			// rounding of a 60 s timer (2.048 s at HZ=250). The entry is
			// the kernel's timestamp; the exit is bracketed by two
			// sock_diag snapshots. The measured interval must overlap the
			// kernel's, and be no wider than the recorder's polling.
			lo, hi, ok := tl.DwellRange(TimeWait)
			Expect(ok).To(BeTrue(), tl.String())
			Expect(hi).To(BeNumerically(">=", timewaitLen-harness.Jiffy()), "left TIME_WAIT too early\n%s", tl)
			Expect(lo).To(BeNumerically("<=", timewaitLen+harness.TimerSlack(timewaitLen)), "left TIME_WAIT too late\n%s", tl)
			Expect(hi-lo).To(BeNumerically("<", 100*time.Millisecond), "recorder too imprecise\n%s", tl)
			// Gone from sock_diag too: no timewait socket with its cookie.
			d, err := lab.Client.NS.NewDiag()
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(d.Close)
			Expect(d.Sockets(harness.AllStates)).NotTo(ContainElement(HaveField("Cookie", client.Cookie())))
		}, Families(SpecTimeout(2*time.Minute)))

	DescribeTable("is a timewait socket in sock_diag with the 60 s timer running",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client := activeClose(ctx, lab)
			d, err := lab.Client.NS.NewDiag()
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(d.Close)
			socks, err := d.Sockets(TimeWait.Mask())
			Expect(err).NotTo(HaveOccurred())
			Expect(socks).To(ContainElement(And(
				HaveField("Cookie", client.Cookie()),
				HaveField("State", TimeWait),
				HaveField("Timewait()", BeTrue()),
				HaveField("Expires", BeNumerically("~", timewaitLen, 2*time.Second)),
			)))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("makes binding the same address and port fail with EADDRINUSE while it lasts",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client := activeClose(ctx, lab)
			local := lab.Timeline(client).Local
			again, err := lab.Client.Socket(f)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(again.Close)
			Expect(again.BindAddr(local)).To(MatchError(unix.EADDRINUSE))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("does not happen after SO_LINGER {on, 0}: the address can be bound at once",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, _, _ := lab.Connect(ctx)
			local, err := client.LocalAddr()
			Expect(err).NotTo(HaveOccurred())
			Expect(client.SetLinger(true, 0)).To(Succeed())
			Expect(client.Close()).To(Succeed())
			Expect(lab.Timeline(client)).NotTo(HaveEntered(TimeWait))
			again, err := lab.Client.Socket(f)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(again.Close)
			Expect(again.BindAddr(local)).To(Succeed())
		}, Families(SpecTimeout(30*time.Second)))
})
