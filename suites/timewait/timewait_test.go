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
const timewaitLen = 60 * time.Second

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
			// Entry is the kernel's own timestamp; the exit is the first
			// sock_diag snapshot without the socket, at most Window late.
			// The timer fires no earlier than 60 s less a jiffy and no
			// later than the wheel's rounding of a 60 s timer.
			exit := tl.Transitions[len(tl.Transitions)-1]
			lo := timewaitLen - harness.Jiffy()
			hi := timewaitLen + harness.TimerSlack(timewaitLen) + exit.Window
			Expect(tl.Dwell(TimeWait)).To(And(BeNumerically(">=", lo), BeNumerically("<=", hi)),
				"TIME_WAIT dwell outside [%v, %v]\n%s", lo, hi, tl)
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
