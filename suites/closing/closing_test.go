package closing_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
)

// closeTogether closes both sockets from two goroutines released by one
// spin barrier (each spinning on its own processor), so both FINs leave
// within a microsecond or so.
func closeTogether(a, b *harness.Endpoint) {
	var ready atomic.Int32
	var wg sync.WaitGroup
	for _, e := range []*harness.Endpoint{a, b} {
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			ready.Add(1)
			for ready.Load() < 2 {
			}
			Expect(e.Close()).To(Succeed())
		}()
	}
	wg.Wait()
}

// attempts bounds the tries. Each FIN crosses the other while both
// sockets are still held by their closing threads in about half of the
// tries on this machine; at even 5 % the chance of none in 500 is 1e-11.
const attempts = 500

var _ = Describe("simultaneous close", Label("closing"), func() {
	BeforeEach(func() { RequireTracing() })

	DescribeTable("takes both sides through FIN_WAIT1 and CLOSING to TIME_WAIT when both close at once",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			ln := lab.Listen()
			var client, server *harness.Endpoint
			for i := 0; ; i++ {
				Expect(i).To(BeNumerically("<", attempts), "no simultaneous close in %d tries", attempts)
				c, err := lab.Client.Dial(ctx, lab.ServerAddr(ln))
				Expect(err).NotTo(HaveOccurred())
				s, err := ln.Accept(ctx)
				Expect(err).NotTo(HaveOccurred())
				closeTogether(c, s)
				if bothClosing(ctx, lab, c, s) {
					GinkgoWriter.Printf("both ends in CLOSING at try %d\n", i+1)
					client, server = c, s
					break
				}
			}
			// CLOSING ends when the ACK of our FIN arrives: both ends
			// closed first, so both wait out TIME_WAIT.
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(TimeWait))
			Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(BeInState(TimeWait))
			Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, FinWait1, Closing, TimeWait))
			Expect(lab.Timeline(server)).To(HaveStates(SynRecv, Established, FinWait1, Closing, TimeWait))
		}, Families(SpecTimeout(2*time.Minute)))
})

// bothClosing waits for both ends to settle and reports whether both
// passed through CLOSING. Either way every try's timelines must be among
// the possible outcomes of a close race.
func bothClosing(ctx context.Context, lab *Lab, c, s *harness.Endpoint) bool {
	GinkgoHelper()
	settled := func(e *harness.Endpoint) bool {
		st := lab.Timeline(e).Current()
		return st == TimeWait || st == Closed
	}
	Eventually(func() bool { return settled(c) && settled(s) }).WithContext(ctx).Should(BeTrue())
	for _, e := range []*harness.Endpoint{c, s} {
		// Each end closed first (FIN_WAIT1) or got the other's FIN
		// first (CLOSE_WAIT, then LAST_ACK): nothing else.
		Expect(lab.Timeline(e)).To(Or(
			PassThroughStates(Established, FinWait1),
			PassThroughStates(Established, CloseWait, LastAck, Closed)))
	}
	_, cc := lab.Timeline(c).Entered(Closing)
	_, sc := lab.Timeline(s).Entered(Closing)
	return cc && sc
}
