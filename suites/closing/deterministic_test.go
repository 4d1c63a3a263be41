package closing_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
)

var (
	c2s = faults.Match{Dir: faults.ClientToServer}
	s2c = faults.Match{Dir: faults.ServerToClient}
)

// closeBothHeld connects, holds both directions, closes both ends and
// waits until each FIN is held: two sockets in FIN_WAIT1 whose FINs have
// not crossed yet.
func closeBothHeld(ctx SpecContext, lab *Lab) (client, server *harness.Endpoint, toServer, toClient *faults.Queued) {
	GinkgoHelper()
	client, server, _ = lab.Connect(ctx)
	toServer, toClient = lab.Hold(faults.Hold{Match: c2s}), lab.Hold(faults.Hold{Match: s2c})
	Expect(client.Close()).To(Succeed())
	Expect(server.Close()).To(Succeed())
	Eventually(HeldFunc(toServer)).WithContext(ctx).Should(BeNumerically(">=", 1))
	Eventually(HeldFunc(toClient)).WithContext(ctx).Should(BeNumerically(">=", 1))
	return client, server, toServer, toClient
}

// bothThroughClosing waits for both ends' TIME_WAIT and checks each passed
// FIN_WAIT1 -> CLOSING -> TIME_WAIT. The accepted socket's start is not
// asserted: the request hand-over is the handshake suite's business.
func bothThroughClosing(ctx SpecContext, lab *Lab, client, server *harness.Endpoint) {
	GinkgoHelper()
	Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(TimeWait))
	Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(BeInState(TimeWait))
	Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, FinWait1, Closing, TimeWait))
	Expect(lab.Timeline(server)).To(PassThroughStates(Established, FinWait1, Closing, TimeWait))
}

var _ = Describe("simultaneous close, made deterministic", Label("closing"), func() {
	BeforeEach(func() { RequireTracing() })

	DescribeTable("enters CLOSING on both sides when both FINs are held until both have closed",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, toServer, toClient := closeBothHeld(ctx, lab)
			// Each FIN now meets a socket in FIN_WAIT1 whose own FIN
			// is unacknowledged.
			Expect(toServer.Release()).Error().NotTo(HaveOccurred())
			Expect(toClient.Release()).Error().NotTo(HaveOccurred())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(HaveEntered(Closing))
			Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(HaveEntered(Closing))
			// The ACKs of the FINs are held now; letting them through
			// ends CLOSING.
			Expect(toServer.Undo()).To(Succeed())
			Expect(toClient.Undo()).To(Succeed())
			bothThroughClosing(ctx, lab, client, server)
		}, Families(Label("queue"), SpecTimeout(30*time.Second)))

	// A delay of every packet both ways makes the FINs cross: the second
	// close happens microseconds after the first, long before the first
	// FIN arrives. Delaying only the FINs would not do: the ACK of the
	// first FIN could then overtake the second FIN.
	DescribeTable("enters CLOSING on both sides when a delay both ways makes the FINs cross",
		func(ctx SpecContext, f harness.Family, backend faults.Backend) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			d := lab.Apply(faults.Delay{Dir: faults.Both, Delay: 50 * time.Millisecond, Backend: backend})
			Expect(d.Backend()).To(Equal(backend))
			Expect(client.Close()).To(Succeed())
			Expect(server.Close()).To(Succeed())
			bothThroughClosing(ctx, lab, client, server)
		},
		Entry("on the queue, over IPv4", Label("queue"), SpecTimeout(30*time.Second), harness.IPv4, faults.QueueBackend),
		Entry("on the queue, over IPv6", Label("queue", "ipv6"), SpecTimeout(30*time.Second), harness.IPv6, faults.QueueBackend),
		Entry("on netem, over IPv4", Label("netem"), SpecTimeout(30*time.Second), harness.IPv4, faults.NetemBackend),
		Entry("on netem, over IPv6", Label("netem", "ipv6"), SpecTimeout(30*time.Second), harness.IPv6, faults.NetemBackend),
	)

	DescribeTable("passes only the server through CLOSING when the client gets the ACK of its FIN before the server's FIN",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, toServer, toClient := closeBothHeld(ctx, lab)
			// The client's FIN reaches the server in FIN_WAIT1: CLOSING.
			Expect(toServer.Release()).Error().NotTo(HaveOccurred())
			Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(HaveEntered(Closing))
			// The server's ACK of it joins the server's FIN in the hold;
			// the client gets the ACK first (FIN_WAIT2), then the FIN.
			// PAWS drops that first FIN (its timestamp is older than the
			// ACK's); the server's retransmission gets through once the
			// hold is gone, and takes the client to TIME_WAIT.
			var order []int
			Eventually(func() []int { order = ackFirst(toClient.Held()); return order }).WithContext(ctx).ShouldNot(BeNil())
			Expect(toClient.ReleaseIn(order)).Error().NotTo(HaveOccurred())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(FinWait2))
			Expect(toClient.Undo()).To(Succeed())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(TimeWait))
			Expect(toServer.Undo()).To(Succeed())
			Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(BeInState(TimeWait))
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, FinWait1, FinWait2, TimeWait))
			Expect(lab.Timeline(server)).To(PassThroughStates(Established, FinWait1, Closing, TimeWait))
		}, Families(Label("queue"), SpecTimeout(30*time.Second)))
})

// ackFirst orders held packets with the pure ACKs first, keeping arrival
// order otherwise; nil until a pure ACK and a FIN are both held.
func ackFirst(held []faults.Packet) []int {
	var acks, rest []int
	for i, p := range held {
		if p.Flags == faults.ACK {
			acks = append(acks, i)
		} else {
			rest = append(rest, i)
		}
	}
	if len(acks) == 0 || len(rest) == 0 {
		return nil
	}
	return append(acks, rest...)
}
