package closepath_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
	"golang.org/x/sys/unix"
)

var _ = Describe("closing a connection", Label("close"), func() {
	BeforeEach(func() { RequireTracing() })

	// closeInTurn closes first, waits for the peer to see the FIN and the
	// closer to reach FIN_WAIT2, then closes second.
	closeInTurn := func(ctx SpecContext, lab *Lab, first, second *harness.Endpoint) {
		GinkgoHelper()
		Expect(first.Close()).To(Succeed())
		_, err := second.ReadAll(ctx)
		Expect(err).NotTo(HaveOccurred(), "the passive side reads the FIN as EOF")
		Eventually(lab.TimelineFunc(first)).WithContext(ctx).Should(BeInState(FinWait2))
		Eventually(lab.TimelineFunc(second)).WithContext(ctx).Should(BeInState(CloseWait))
		Expect(second.Close()).To(Succeed())
		Eventually(lab.TimelineFunc(second)).WithContext(ctx).Should(BeInState(Closed))
		Eventually(lab.TimelineFunc(first)).WithContext(ctx).Should(BeInState(TimeWait))
	}

	DescribeTable("takes the client, closing first, through FIN_WAIT1 and FIN_WAIT2 to TIME_WAIT",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			closeInTurn(ctx, lab, client, server)
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, FinWait1, FinWait2, TimeWait))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("takes the server, closing second, through CLOSE_WAIT and LAST_ACK to CLOSED",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			closeInTurn(ctx, lab, client, server)
			Expect(lab.Timeline(server)).To(HaveStates(SynRecv, Established, CloseWait, LastAck, Closed))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("takes the server, closing first, to TIME_WAIT and the client through LAST_ACK",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			closeInTurn(ctx, lab, server, client)
			Expect(lab.Timeline(server)).To(HaveStates(SynRecv, Established, FinWait1, FinWait2, TimeWait))
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, CloseWait, LastAck, Closed))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("leaves TIME_WAIT only on the side that closed first",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			closeInTurn(ctx, lab, client, server)
			Expect(lab.Timeline(server)).NotTo(HaveEntered(TimeWait))
			Expect(lab.Timeline(client)).To(HaveEntered(TimeWait))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("keeps CLOSE_WAIT while the application does not close, with the peer in FIN_WAIT2",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			Expect(client.Close()).To(Succeed())
			Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(BeInState(CloseWait))
			// 3 s is many RTOs and keepalive-free: nothing but the
			// application's close() can end CLOSE_WAIT.
			Consistently(lab.TimelineFunc(server)).WithContext(ctx).WithTimeout(3 * time.Second).Should(BeInState(CloseWait))
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, FinWait1, FinWait2))
			// sock_diag, what `ss` reads, agrees.
			d, err := lab.Server.NS.NewDiag()
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(d.Close)
			socks, err := d.Sockets(CloseWait.Mask())
			Expect(err).NotTo(HaveOccurred())
			Expect(socks).To(ContainElement(HaveField("Cookie", server.Cookie())))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("sends RST and skips TIME_WAIT on close with SO_LINGER {on, 0}; the peer reads ECONNRESET",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			Expect(client.SetLinger(true, 0)).To(Succeed())
			Expect(client.Close()).To(Succeed())
			_, err := server.Read(ctx, make([]byte, 16))
			Expect(err).To(MatchError(unix.ECONNRESET))
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, Closed))
			Expect(lab.Timeline(server)).To(HaveStates(SynRecv, Established, Closed))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("sends RST instead of FIN when closing with unread data",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			_, err := client.Write(ctx, []byte("never read"))
			Expect(err).NotTo(HaveOccurred())
			Eventually(func() bool { return pendingBytes(server) > 0 }).WithContext(ctx).Should(BeTrue())
			Expect(server.Close()).To(Succeed())
			_, err = client.Read(ctx, make([]byte, 16))
			Expect(err).To(MatchError(unix.ECONNRESET))
			Expect(lab.Timeline(server)).To(HaveStates(SynRecv, Established, Closed))
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, Closed))
		}, Families(SpecTimeout(30*time.Second)))
})

// pendingBytes is the socket's unread byte count (SIOCINQ).
func pendingBytes(e *harness.Endpoint) int {
	n, err := unix.IoctlGetInt(e.FD(), unix.SIOCINQ)
	if err != nil {
		return -1
	}
	return n
}
