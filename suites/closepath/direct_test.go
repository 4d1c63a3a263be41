package closepath_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
)

var _ = Describe("closing when the peer's FIN carries the ACK of ours", Label("close", "filter"), func() {
	BeforeEach(func() { RequireTracing() })

	// The server's pure ACKs are dropped, so the first segment to
	// acknowledge the client's FIN is the server's own FIN: FIN and ACK
	// arrive together, and FIN_WAIT1 goes to TIME_WAIT on that one
	// segment. Linux sets FIN_WAIT2 on its ACK and TIME_WAIT on its FIN in
	// the same call (tcp_rcv_state_process, then tcp_fin), so FIN_WAIT2
	// lasts only as long as the kernel takes over one segment: microseconds
	// here, about 2 ms under qemu's emulation. What proves it is the same
	// segment: the entry into TIME_WAIT is traced with the kernel's
	// timestamp (the recorder only does that when the peer's FIN was in
	// hand as the socket closed), and it came far sooner than any
	// retransmission (the RTO is at least 200 ms).
	DescribeTable("goes from FIN_WAIT1 to TIME_WAIT on one segment",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			acks := lab.Apply(faults.Drop{Match: faults.Match{Dir: faults.ServerToClient, Flags: faults.ACK, Mask: faults.AllFlags}})
			Expect(client.Close()).To(Succeed())
			Expect(server.ReadAll(ctx)).To(BeZero(), "the server reads the FIN as EOF")
			Eventually(acks.Packets).WithContext(ctx).Should(BeNumerically(">=", 1), "the ACK of the client's FIN is dropped")
			Expect(lab.Timeline(client)).To(BeInState(FinWait1))
			Expect(server.Close()).To(Succeed())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(TimeWait))
			Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(BeInState(Closed))
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, FinWait1, FinWait2, TimeWait))
			tl := lab.Timeline(client)
			last := tl.Transitions[len(tl.Transitions)-1]
			Expect(last.To).To(Equal(TimeWait), tl.String())
			Expect(last.Source).To(Equal(harness.Traced), tl.String())
			Expect(tl.Dwell(FinWait2)).To(BeNumerically("<", 20*time.Millisecond), tl.String())
			Expect(lab.Timeline(server)).To(PassThroughStates(Established, CloseWait, LastAck, Closed))
		}, Families(SpecTimeout(30*time.Second)))
})
