package lostsegments_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
	"golang.org/x/sys/unix"
)

// apply installs a fault for the rest of the spec.
func apply(lab *Lab, f interface {
	Apply(*harness.Pair) (*faults.Active, error)
}) *faults.Active {
	GinkgoHelper()
	SkipUnless(faults.HaveNFTables())
	a, err := f.Apply(lab.Pair)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(a.Undo)
	return a
}

func packets(a *faults.Active) func() (uint64, error) { return a.Packets }

var _ = Describe("lost segments", Label("filter"), func() {
	BeforeEach(func() { RequireTracing() })

	// The kernel gives up a SYN_SENT when the time since the first SYN
	// reaches (2^(tcp_syn_retries+1) - 1) x the initial RTO of 1 s (7 s
	// for 2), checked as its retransmission timer fires. The SYNs sent
	// meanwhile are tcp_syn_retries + 1 with exponential backoff; with
	// this kernel's default tcp_syn_linear_timeouts=4 the first four
	// retransmissions come a second apart, so more SYNs fit in the same
	// time (measured here: 6 for tcp_syn_retries 2).
	type synCase struct {
		linear string
		syns   uint64
		timers []time.Duration // the retransmission timer's arming, in order
	}
	sec := time.Second
	for _, c := range []synCase{
		{"0", 3, []time.Duration{sec, 2 * sec, 4 * sec}},
		{"4", 6, []time.Duration{sec, sec, sec, sec, sec, 2 * sec}},
	} {
		DescribeTable(fmt.Sprintf("times SYN_SENT out after tcp_syn_retries when every SYN-ACK is lost (tcp_syn_linear_timeouts=%s)", c.linear),
			Label("slow"),
			func(ctx SpecContext, f harness.Family) {
				lab := NewLab(f)
				Expect(lab.Client.NS.SetSysctl(harness.TCPSynRetries, "2")).To(Succeed())
				Expect(lab.Client.NS.SetSysctl("net.ipv4.tcp_syn_linear_timeouts", c.linear)).To(Succeed())
				ln := lab.Listen()
				syns := apply(lab, faults.Count{Dir: faults.ClientToServer, Flags: faults.SYN, Mask: faults.SYN | faults.ACK})
				apply(lab, faults.Drop{Dir: faults.ServerToClient, Flags: faults.SYN | faults.ACK, Mask: faults.SYN | faults.ACK})
				client, err := lab.Client.Socket(f)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(client.Close)
				Expect(client.Connect(ctx, lab.ServerAddr(ln))).To(MatchError(unix.ETIMEDOUT))
				Expect(syns.Packets()).To(Equal(c.syns))
				tl := lab.Timeline(client)
				Expect(tl).To(HaveStates(SynSent, Closed))
				// Each timer may fire up to a jiffy early at arming and
				// late by the wheel's rounding of its length.
				want, slack := 7*time.Second, time.Duration(0)
				for _, d := range c.timers {
					slack += harness.TimerSlack(d)
				}
				Expect(tl.Dwell(SynSent)).To(And(
					BeNumerically(">=", want-harness.Jiffy()),
					BeNumerically("<=", want+slack)), tl.String())
			}, Families(SpecTimeout(30*time.Second)))
	}

	DescribeTable("keeps the passive closer in LAST_ACK, resending its FIN, until the final ACK gets through",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			Expect(client.Close()).To(Succeed())
			Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(BeInState(CloseWait))
			fins := apply(lab, faults.Count{Dir: faults.ServerToClient, Flags: faults.FIN, Mask: faults.FIN})
			acks := apply(lab, faults.Drop{Dir: faults.ClientToServer, Flags: faults.ACK, Mask: faults.AllFlags})
			Expect(server.Close()).To(Succeed())
			// The FIN is resent on the retransmission timer (200 ms
			// minimum, doubling); every pure ACK to it is lost.
			Eventually(packets(fins)).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 3))
			Expect(lab.Timeline(server)).To(BeInState(LastAck))
			Expect(acks.Packets()).To(BeNumerically(">=", 3))
			Expect(acks.Undo()).To(Succeed())
			// The next FIN's ACK gets through.
			Eventually(lab.TimelineFunc(server)).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeInState(Closed))
			Expect(lab.Timeline(server)).To(HaveStates(SynRecv, Established, CloseWait, LastAck, Closed))
			Expect(lab.Timeline(server).Dwell(LastAck)).To(BeNumerically(">=", 200*time.Millisecond+400*time.Millisecond),
				"two retransmission timeouts at least (200 ms, then 400 ms)")
			// The client, in TIME_WAIT, answered every resent FIN.
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, FinWait1, FinWait2, TimeWait))
		}, Families(SpecTimeout(30*time.Second)))
})
