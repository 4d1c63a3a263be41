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

// giveUp returns when the kernel abandons a segment nobody acknowledges:
// its retransmission timer fires at rto x (2^k - 1) after the first send,
// backing off, and at each firing after the first it gives up once the
// time since the first retransmission reaches limit (TCP_USER_TIMEOUT, or
// for an orphan (2^(tcp_orphan_retries+1) - 1) x 200 ms). With a user
// timeout (clamp) the kernel shortens the last timer to fire exactly at the
// limit (tcp_clamp_rto_to_user_timeout). With the tail-loss probe off
// (tcp_early_retrans 0) no probe shifts the schedule. early and late bound
// the drift: each jiffy timer may fire up to a jiffy early, or late by the
// wheel's rounding of its length.
func giveUp(rto, limit time.Duration, clamp bool) (at, early, late time.Duration) {
	first := rto
	for k := 0; ; k++ {
		step := rto << k
		if clamp && k >= 1 && at+step-first > limit {
			step = first + limit - at
		}
		at += step
		early += harness.Jiffy()
		late += harness.TimerSlack(step)
		if k >= 1 && at-first >= limit {
			return at, early, late
		}
	}
}

// rtoOf reads the socket's retransmission timeout from TCP_INFO.
func rtoOf(e *harness.Endpoint) time.Duration {
	GinkgoHelper()
	info, err := e.TCPInfo()
	Expect(err).NotTo(HaveOccurred())
	return time.Duration(info.Rto) * time.Microsecond
}

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
				syns := lab.Apply(faults.Count{Match: faults.Match{Dir: faults.ClientToServer, Flags: faults.SYN, Mask: faults.SYN | faults.ACK}})
				lab.Apply(faults.Drop{Match: faults.Match{Dir: faults.ServerToClient, Flags: faults.SYN | faults.ACK, Mask: faults.SYN | faults.ACK}})
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
			fins := lab.Apply(faults.Count{Match: faults.Match{Dir: faults.ServerToClient, Flags: faults.FIN, Mask: faults.FIN}})
			acks := lab.Apply(faults.Drop{Match: faults.Match{Dir: faults.ClientToServer, Flags: faults.ACK, Mask: faults.AllFlags}})
			Expect(server.Close()).To(Succeed())
			// The FIN is resent on the retransmission timer (200 ms
			// minimum, doubling); every pure ACK to it is lost.
			Eventually(fins.Packets).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 3))
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

	DescribeTable("keeps a request socket in SYN_RECV, resending its SYN-ACK per tcp_synack_retries, when the final ACK is lost",
		Label("slow"),
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			Expect(lab.Server.NS.SetSysctl(harness.TCPSynackRetries, "2")).To(Succeed())
			Expect(lab.Rec.FollowRequests(lab.Server.NS)).To(Succeed())
			ln := lab.Listen()
			synacks := lab.Apply(faults.Count{Match: faults.Match{Dir: faults.ServerToClient, Flags: faults.SYN | faults.ACK, Mask: faults.SYN | faults.ACK}})
			lab.Apply(faults.Drop{Match: faults.Match{Dir: faults.ClientToServer, Flags: faults.ACK, Mask: faults.AllFlags}})
			client, err := lab.Client.Dial(ctx, lab.ServerAddr(ln))
			Expect(err).NotTo(HaveOccurred(), "the client cannot know its final ACK was lost")
			DeferCleanup(client.Close)
			request := lab.RequestTimeline
			Eventually(request).WithContext(ctx).Should(BeInState(SynRecv))
			Eventually(request).WithContext(ctx).WithTimeout(15 * time.Second).Should(BeInState(Closed))
			tl := request()
			Expect(tl).To(HaveStates(SynRecv, Closed))
			Expect(tl.Retransmits).To(Equal(2))
			Expect(synacks.Packets()).To(Equal(uint64(3)), "the first SYN-ACK and tcp_synack_retries more")
			// The request gives up at its third timer firing, 1 + 2 + 4 s,
			// each timer up to a jiffy early or late by the wheel's
			// rounding; both ends of the stay are seen by sock_diag
			// (DwellRange).
			lo, hi, ok := tl.DwellRange(SynRecv)
			Expect(ok).To(BeTrue())
			slack := harness.TimerSlack(time.Second) + harness.TimerSlack(2*time.Second) + harness.TimerSlack(4*time.Second)
			Expect(hi).To(BeNumerically(">=", 7*time.Second-3*harness.Jiffy()), tl.String())
			Expect(lo).To(BeNumerically("<=", 7*time.Second+slack), tl.String())
			Expect(lab.Timeline(client)).To(BeInState(Established))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("ends ESTABLISHED with ETIMEDOUT TCP_USER_TIMEOUT after the first retransmission when the peer is gone",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			Expect(lab.Client.NS.SetSysctl("net.ipv4.tcp_early_retrans", "0")).To(Succeed())
			client, _, _ := lab.Connect(ctx)
			const userTimeout = time.Second
			Expect(client.SetUserTimeout(userTimeout)).To(Succeed())
			rto := rtoOf(client)
			blackhole := lab.Apply(faults.Drop{Match: faults.Match{Dir: faults.ClientToServer}}) // every TCP segment
			sent := harness.Monotonic()
			_, err := client.Write(ctx, []byte("hello"))
			Expect(err).NotTo(HaveOccurred())
			_, err = client.Read(ctx, make([]byte, 16))
			Expect(err).To(MatchError(unix.ETIMEDOUT))
			Expect(blackhole.Packets()).To(BeNumerically(">=", 2), "the segment and at least one retransmission")
			tl := lab.Timeline(client)
			Expect(tl).To(HaveStates(SynSent, Established, Closed))
			// Measured here: RTO 204 ms, firings at 0.2 and 0.6 s, then
			// the timer clamped to what is left: ETIMEDOUT at 1.2 s, one
			// second after the first retransmission.
			want, early, late := giveUp(rto, userTimeout, true)
			end := tl.Transitions[len(tl.Transitions)-1].At - sent
			Expect(end).To(And(BeNumerically(">=", want-early), BeNumerically("<=", want+late)),
				"RTO %v: want the firing at %v\n%s", rto, want, tl)
		}, Families(SpecTimeout(30*time.Second)))

	for _, retries := range []int{1, 2} {
		DescribeTable(fmt.Sprintf("gives up an orphan in FIN_WAIT1 after tcp_orphan_retries=%d when the peer is blackholed", retries),
			func(ctx SpecContext, f harness.Family) {
				lab := NewLab(f)
				Expect(lab.Client.NS.SetSysctl("net.ipv4.tcp_early_retrans", "0")).To(Succeed())
				Expect(lab.Client.NS.SetSysctl(harness.TCPOrphanRetries, fmt.Sprint(retries))).To(Succeed())
				client, _, _ := lab.Connect(ctx)
				rto := rtoOf(client)
				fins := lab.Apply(faults.Drop{Match: faults.Match{Dir: faults.ClientToServer, Flags: faults.FIN, Mask: faults.FIN}})
				Expect(client.Close()).To(Succeed()) // orphaned: FIN sent, never acknowledged
				Eventually(lab.TimelineFunc(client)).WithContext(ctx).WithTimeout(15 * time.Second).Should(BeInState(Closed))
				tl := lab.Timeline(client)
				Expect(tl).To(HaveStates(SynSent, Established, FinWait1, Closed))
				limit := time.Duration((2<<retries)-1) * 200 * time.Millisecond
				want, early, late := giveUp(rto, limit, false)
				Expect(tl.Dwell(FinWait1)).To(And(BeNumerically(">=", want-early), BeNumerically("<=", want+late)),
					"RTO %v, limit %v: want the firing at %v\n%s", rto, limit, want, tl)
				Expect(fins.Packets()).To(BeNumerically(">=", retries+1), "the FIN and its retransmissions, all lost")
			}, Families(SpecTimeout(30*time.Second)))
	}
})
