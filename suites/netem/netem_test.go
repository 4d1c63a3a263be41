package netem_test

import (
	"context"
	"math"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
)

// exchange sends n 100-byte messages with Nagle off, each read by the
// server before the next: n data segments and their ACKs.
func exchange(ctx context.Context, c, s *harness.Endpoint, n int) {
	GinkgoHelper()
	Expect(c.SetNoDelay(true)).To(Succeed())
	msg, buf := make([]byte, 100), make([]byte, 100)
	for range n {
		Expect(c.Write(ctx, msg)).To(Equal(len(msg)))
		for got := 0; got < len(msg); {
			k, err := s.Read(ctx, buf[got:])
			Expect(err).NotTo(HaveOccurred())
			got += k
		}
	}
}

// closeInTurn closes the client, lets the server read the FIN, closes the
// server and waits for both ends to settle.
func closeInTurn(ctx context.Context, lab *Lab, c, s *harness.Endpoint) {
	GinkgoHelper()
	Expect(c.Close()).To(Succeed())
	Expect(s.ReadAll(ctx)).To(BeNumerically(">=", 0))
	Expect(s.Close()).To(Succeed())
	Eventually(lab.TimelineFunc(c)).WithContext(ctx).Should(BeInState(TimeWait))
	Eventually(lab.TimelineFunc(s)).WithContext(ctx).Should(BeInState(Closed))
}

var _ = Describe("netem", Label("netem"), func() {
	BeforeEach(func() { RequireTracing() })

	// The smoothed RTT after a few exchanges is the two one-way delays
	// plus the veth's microseconds; 25 % covers srtt's smoothing of the
	// handshake's first samples.
	DescribeTable("shows a delay each way as a round trip of twice the delay",
		func(ctx SpecContext, f harness.Family) {
			const d = 20 * time.Millisecond
			lab := NewLab(f)
			q := lab.Apply(faults.Netem{Dir: faults.Both, Delay: d})
			Expect(q.Backend()).To(Equal(faults.NetemBackend))
			c, s, _ := lab.Connect(ctx)
			exchange(ctx, c, s, 10)
			info, err := c.TCPInfo()
			Expect(err).NotTo(HaveOccurred())
			rtt := time.Duration(info.Rtt) * time.Microsecond
			Expect(rtt).To(BeNumerically("~", 2*d, 2*d/4))
		}, Families(SpecTimeout(time.Minute)))

	// The qdisc counts what it sent and dropped. With independent draws
	// the dropped share of n packets has standard deviation
	// sqrt(p(1-p)/n); 4.5 of them is a bound a correct netem misses once
	// in 150,000 runs.
	DescribeTable("drops a seeded random share of packets within its statistical bound",
		func(ctx SpecContext, f harness.Family) {
			const p = 0.1
			lab := NewLab(f)
			c, s, _ := lab.Connect(ctx)
			a := lab.Apply(faults.Netem{Dir: faults.ClientToServer, Loss: p, Seed: 42})
			exchange(ctx, c, s, 400)
			sent, dropped, err := a.(*faults.Qdisc).Stats()
			Expect(err).NotTo(HaveOccurred())
			n := float64(sent + dropped)
			share := float64(dropped) / n
			AddReportEntry("loss", map[string]any{"sent": sent, "dropped": dropped, "share": share})
			Expect(n).To(BeNumerically(">=", 400))
			Expect(share).To(BeNumerically("~", p, 4.5*math.Sqrt(p*(1-p)/n)))
		}, Families(SpecTimeout(2*time.Minute)))

	DescribeTable("leaves handshake and close with the textbook states under reordering and duplication",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			// A duplicate of the client's last ACK reaches the server
			// after it has closed; its RST would end the client's
			// TIME_WAIT early (TIME-WAIT assassination, RFC 1337), as
			// the first run on Debian's 6.1 showed. tcp_rfc1337=1 makes
			// TIME_WAIT ignore RSTs, so the close path stays textbook.
			Expect(lab.Client.NS.SetSysctl(harness.TCPRFC1337, "1")).To(Succeed())
			lab.Apply(faults.Netem{Dir: faults.Both, Delay: 10 * time.Millisecond, Reorder: 0.25, Duplicate: 0.25, Seed: 7})
			c, s, _ := lab.Connect(ctx)
			exchange(ctx, c, s, 20)
			closeInTurn(ctx, lab, c, s)
			Expect(lab.Timeline(c)).To(HaveStates(SynSent, Established, FinWait1, FinWait2, TimeWait))
			Expect(lab.Timeline(s)).To(PassThroughStates(Established, CloseWait, LastAck, Closed))
		}, Families(SpecTimeout(time.Minute)))

	DescribeTable("keeps TIME_WAIT at 60 s under loss",
		Label("slow"),
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			c, s, _ := lab.Connect(ctx)
			// Loss towards the client only: the server's FIN may need
			// retransmitting, but the client's ACK of it always gets
			// through, so no second FIN reaches TIME_WAIT and restarts
			// its timer (which the kernel does, by design).
			lab.Apply(faults.Netem{Dir: faults.ServerToClient, Loss: 0.3, Seed: 3})
			closeInTurn(ctx, lab, c, s)
			Eventually(lab.TimelineFunc(c)).WithContext(ctx).WithTimeout(harness.TimewaitLen + 10*time.Second).
				WithPolling(250 * time.Millisecond).Should(BeInState(Closed))
			tl := lab.Timeline(c)
			Expect(tl).To(PassThroughStates(Established, FinWait1, TimeWait, Closed))
			// As in the timewait suite: a jiffy early at most, late by
			// at most the timer wheel's rounding of 60 s. Loss changes
			// how the close gets there, not how long TIME_WAIT lasts.
			lo, hi, ok := tl.DwellRange(TimeWait)
			Expect(ok).To(BeTrue(), tl.String())
			Expect(hi).To(BeNumerically(">=", harness.TimewaitLen-harness.Jiffy()), tl.String())
			Expect(lo).To(BeNumerically("<=", harness.TimewaitLen+harness.TimerSlack(harness.TimewaitLen)), tl.String())
		}, Families(SpecTimeout(2*time.Minute)))
})
