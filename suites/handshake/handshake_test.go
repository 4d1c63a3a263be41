package handshake_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
)

var _ = Describe("the three-way handshake", Label("handshake"), func() {
	BeforeEach(func() { RequireTracing() })

	DescribeTable("takes the client through SYN_SENT to ESTABLISHED",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, _, _ := lab.Connect(ctx)
			tl := lab.Timeline(client)
			Expect(tl).To(HaveStates(SynSent, Established))
			Expect(tl.Path()[0]).To(Equal(Closed))
			Expect(tl.Local.Addr()).To(Equal(lab.Client.Addr(f)))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("puts the listener in LISTEN",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			ln := lab.Listen()
			tl := lab.Timeline(ln)
			Expect(tl).To(HaveStates(Listen))
			Expect(tl.Path()).To(Equal([]State{Closed, Listen}))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("takes the accepted socket through SYN_RECV to ESTABLISHED",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			tl := lab.Timeline(server)
			// The child is cloned from the listener, so it starts in
			// LISTEN. 6.18 traces its SYN_RECV; 6.1 creates it in
			// SYN_RECV silently, and the recorder marks that birth.
			Expect(tl.Path()).To(Equal([]State{Listen, SynRecv, Established}))
			// It reaches ESTABLISHED after the client does: the final ACK.
			srvEst, _ := tl.Entered(Established)
			cliEst, _ := lab.Timeline(client).Entered(Established)
			Expect(srvEst).To(BeNumerically(">=", cliEst))
			Expect(tl.Remote).To(Equal(mustLocal(client)))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("refuses a connection to a closed port with ECONNREFUSED, SYN_SENT straight to CLOSED",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			ln := lab.Listen()
			addr := lab.ServerAddr(ln)
			Expect(ln.Close()).To(Succeed())
			client, err := lab.Client.Socket(f)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(client.Close)
			Expect(client.Connect(ctx, addr)).To(MatchError(ContainSubstring("connection refused")))
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Closed))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("keeps only a request socket in SYN_RECV, the client ESTABLISHED, until the final ACK counts",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			Expect(lab.Rec.FollowRequests(lab.Server.NS)).To(Succeed())
			ln := lab.Listen()
			// With TCP_DEFER_ACCEPT a bare final ACK is dropped: the
			// client is ESTABLISHED, the server has only a request socket.
			// With 10 s the kernel resends no SYN-ACK for 7 s (it waits
			// for the end of the defer period, syn_ack_recalc), and an
			// ACK to a resent one would complete the handshake.
			Expect(ln.SetDeferAccept(10 * time.Second)).To(Succeed())
			client, err := lab.Client.Dial(ctx, lab.ServerAddr(ln))
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(client.Close)
			request := lab.RequestTimeline
			Eventually(request).WithContext(ctx).Should(BeInState(SynRecv))
			Expect(request().Remote).To(Equal(mustLocal(client)))
			Consistently(request).WithContext(ctx).WithTimeout(time.Second).Should(BeInState(SynRecv))
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established))
			_, err = client.Write(ctx, []byte("x")) // data completes the handshake
			Expect(err).NotTo(HaveOccurred())
			server, err := ln.Accept(ctx)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(server.Close)
			// The accepted socket is the request grown up: the kernel
			// copies the request's cookie into it, and its timeline
			// continues the request's (SYN_RECV since the SYN, with its
			// SYN-ACK retransmits) rather than starting anew.
			Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(HaveStates(SynRecv, Established))
			tl := lab.Timeline(server)
			Expect(tl.Request).To(BeFalse())
			Expect(tl.Remote).To(Equal(mustLocal(client)))
			Expect(lab.RequestTimeline().Transitions).To(BeEmpty(), "no request socket is left")
			// The kernel agrees: the socket is ESTABLISHED.
			d, err := lab.Server.NS.NewDiag()
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(d.Close)
			Expect(d.Sockets(Established.Mask())).To(ContainElement(HaveField("Cookie", server.Cookie())))
		}, Families(SpecTimeout(30*time.Second)))
})

func mustLocal(e *harness.Endpoint) any {
	GinkgoHelper()
	a, err := e.LocalAddr()
	Expect(err).NotTo(HaveOccurred())
	return a
}
