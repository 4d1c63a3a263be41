package dwell_test

import (
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
)

const (
	delay = 300 * time.Millisecond
	// tolerance above the delay: the Go timer that releases the ACKs
	// wakes up to a few milliseconds late on a loaded 2-core machine
	// (the queue benchmark's p99), then one netlink verdict and one
	// veth hop. Below the delay there is none: nothing can arrive early.
	tolerance = 20 * time.Millisecond
)

// lateAcks delays the first pure ACK by delay, and every pure ACK after it
// until the same moment, so the retransmissions' ACKs cannot end the state
// early: all are released together, delay after the first.
func lateAcks() func(faults.Packet) faults.Action {
	var mu sync.Mutex
	var first time.Time
	return func(p faults.Packet) faults.Action {
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			first = p.At
		}
		if left := delay - p.At.Sub(first); left > 0 {
			return faults.After(p.At.Sub(first) + left) // until first + delay
		}
		return faults.Accept
	}
}

var pureACK = func(dir faults.Direction) faults.Match {
	return faults.Match{Dir: dir, Flags: faults.ACK, Mask: faults.AllFlags}
}

var _ = Describe("a late ACK", Label("queue", "dwell"), func() {
	BeforeEach(func() { RequireTracing() })

	DescribeTable("keeps the client in FIN_WAIT1 for as long as the ACK of its FIN is delayed",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			fins := lab.Apply(faults.Count{Match: faults.Match{Dir: faults.ClientToServer, Flags: faults.FIN}})
			acks := lab.Queue(faults.Intercept{Match: pureACK(faults.ServerToClient), Decide: lateAcks()})
			Expect(client.Close()).To(Succeed())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(FinWait2))
			tl := lab.Timeline(client)
			Expect(tl).To(HaveStates(SynSent, Established, FinWait1, FinWait2))
			Expect(tl.Dwell(FinWait1)).To(And(BeNumerically(">=", delay), BeNumerically("<=", delay+tolerance)), tl.String())
			accountRetransmissions(fins, acks)
			Expect(server.Close()).To(Succeed())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(TimeWait))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("keeps the server in LAST_ACK for as long as the final ACK is delayed",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			client, server, _ := lab.Connect(ctx)
			Expect(client.Close()).To(Succeed())
			Expect(server.ReadAll(ctx)).To(BeZero())
			Eventually(lab.TimelineFunc(client)).WithContext(ctx).Should(BeInState(FinWait2))
			fins := lab.Apply(faults.Count{Match: faults.Match{Dir: faults.ServerToClient, Flags: faults.FIN}})
			acks := lab.Queue(faults.Intercept{Match: pureACK(faults.ClientToServer), Decide: lateAcks()})
			Expect(server.Close()).To(Succeed())
			Eventually(lab.TimelineFunc(server)).WithContext(ctx).Should(BeInState(Closed))
			tl := lab.Timeline(server)
			Expect(tl).To(PassThroughStates(Established, CloseWait, LastAck, Closed))
			Expect(tl.Dwell(LastAck)).To(And(BeNumerically(">=", delay), BeNumerically("<=", delay+tolerance)), tl.String())
			accountRetransmissions(fins, acks)
		}, Families(SpecTimeout(30*time.Second)))
})

// accountRetransmissions checks that the FIN went out more than once while
// its ACK was held (a tail loss probe and the RTO both fire before 300 ms),
// that every copy drew an ACK the queue delayed, and reports the counts.
func accountRetransmissions(fins faults.Active, acks *faults.Queued) {
	GinkgoHelper()
	// The ACKs are released together; the first ends the state before
	// the others' timers have run.
	Eventually(func() int { return acks.Stats().Waiting }).Should(BeZero())
	sent, err := fins.Packets()
	Expect(err).NotTo(HaveOccurred())
	st := acks.Stats()
	AddReportEntry("FINs sent", sent)
	AddReportEntry("ACKs delayed", st.Delayed)
	Expect(sent).To(BeNumerically(">=", 2), "a 300 ms delay outlasts the RTO: the FIN is sent again")
	Expect(st.Delayed).To(And(BeNumerically(">=", 2), BeNumerically("<=", sent)), "one ACK per FIN copy, all held")
}
