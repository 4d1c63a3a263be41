package handshake_test

import (
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
)

var _ = Describe("simultaneous open", Label("handshake", "queue"), func() {
	BeforeEach(func() { RequireTracing() })

	// Two sockets bound to known ports connect to each other. Both SYNs
	// are held until both have been sent, so each arrives at a socket in
	// SYN_SENT (without the hold the first SYN would meet no listener
	// and be answered with an RST). Each side answers with a SYN-ACK, and
	// each SYN-ACK completes the other's handshake.
	DescribeTable("takes both sides through SYN_SENT and SYN_RECV to ESTABLISHED",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			toServer := lab.Hold(faults.Hold{Match: faults.Match{Dir: faults.ClientToServer}})
			toClient := lab.Hold(faults.Hold{Match: faults.Match{Dir: faults.ServerToClient}})
			a, b := bound(lab.Client, f), bound(lab.Server, f)
			Expect(a.StartConnect(localAddr(b))).To(Succeed())
			Expect(b.StartConnect(localAddr(a))).To(Succeed())
			Eventually(HeldFunc(toServer)).WithContext(ctx).Should(BeNumerically(">=", 1))
			Eventually(HeldFunc(toClient)).WithContext(ctx).Should(BeNumerically(">=", 1))
			Expect(toServer.Held()[0].Flags).To(Equal(faults.SYN))
			Expect(toClient.Held()[0].Flags).To(Equal(faults.SYN))
			// Undo lets the SYNs through in order, and then everything.
			Expect(toServer.Undo()).To(Succeed())
			Expect(toClient.Undo()).To(Succeed())
			Expect(a.WaitConnected(ctx)).To(Succeed())
			Expect(b.WaitConnected(ctx)).To(Succeed())
			for _, e := range []*harness.Endpoint{a, b} {
				Eventually(lab.TimelineFunc(e)).WithContext(ctx).Should(BeInState(Established))
				Expect(lab.Timeline(e)).To(HaveStates(SynSent, SynRecv, Established))
			}
		}, Families(SpecTimeout(30*time.Second)))
})

// bound returns a socket of host bound to an ephemeral port, closed at
// cleanup.
func bound(h *harness.Host, f harness.Family) *harness.Endpoint {
	GinkgoHelper()
	e, err := h.Socket(f)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(e.Close)
	Expect(e.Bind(0)).To(Succeed())
	return e
}

func localAddr(e *harness.Endpoint) netip.AddrPort {
	GinkgoHelper()
	a, err := e.LocalAddr()
	Expect(err).NotTo(HaveOccurred())
	return a
}
