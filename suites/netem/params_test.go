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
	"github.com/vishvananda/netlink"
)

// prob is netem's 32-bit fixed point for a probability, as tc computes it.
func prob(p float64) uint32 { return uint32(math.Round(p * math.MaxUint32)) }

var _ = Describe("netem parameters", Label("netem"), func() {
	// The qdisc read back from the kernel carries what tc would have
	// set: the request is built by hand (the library lacks 64-bit delays,
	// Gilbert-Elliott and the seed), so this checks its encoding.
	DescribeTable("reach the kernel as tc would set them",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			lab.Apply(faults.Netem{Dir: faults.ClientToServer, Delay: 10 * time.Millisecond, Jitter: time.Millisecond,
				Duplicate: 0.05, Reorder: 0.25, ReorderCorrelation: 0.5, Corrupt: 0.01, Rate: 1 << 20, Limit: 500})
			link, err := lab.Client.Link()
			Expect(err).NotTo(HaveOccurred())
			qs, err := lab.Client.NS.Handle().QdiscList(link)
			Expect(err).NotTo(HaveOccurred())
			var n *netlink.Netem
			for _, q := range qs {
				if x, ok := q.(*netlink.Netem); ok {
					n = x
				}
			}
			Expect(n).NotTo(BeNil(), "no netem qdisc on the client's link")
			// qopt carries latency and jitter in scheduler ticks of 64 ns.
			Expect(n.Latency).To(BeEquivalentTo((10 * time.Millisecond).Nanoseconds() >> 6))
			Expect(n.Jitter).To(BeEquivalentTo(time.Millisecond.Nanoseconds() >> 6))
			Expect(n.Limit).To(BeEquivalentTo(500))
			Expect(n.Duplicate).To(Equal(prob(0.05)))
			Expect(n.ReorderProb).To(Equal(prob(0.25)))
			Expect(n.ReorderCorr).To(Equal(prob(0.5)))
			Expect(n.CorruptProb).To(Equal(prob(0.01)))
			Expect(n.Rate64).To(BeEquivalentTo(1 << 20))
		}, Families(SpecTimeout(time.Minute)))

	// P = 1 moves to the bad state at the first packet and R = 0 never
	// leaves it; losing everything there is a deterministic blackhole,
	// which only a correctly encoded model produces.
	DescribeTable("loses everything under a Gilbert-Elliott model stuck in its bad state",
		func(ctx SpecContext, f harness.Family) {
			lab := NewLab(f)
			ln := lab.Listen()
			q := lab.Apply(faults.Netem{Dir: faults.ClientToServer,
				GilbertElliott: &faults.GilbertElliott{P: 1, R: 0, LossInBad: 1, LossInGood: 0}})
			short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
			defer cancel()
			_, err := lab.Client.Dial(short, lab.ServerAddr(ln))
			Expect(err).To(MatchError(context.DeadlineExceeded))
			sent, dropped, err := q.(*faults.Qdisc).Stats()
			Expect(err).NotTo(HaveOccurred())
			Expect(sent).To(BeZero())
			Expect(dropped).To(BeNumerically(">=", 2), "the SYN and its retransmission at 1 s")
		}, Families(SpecTimeout(time.Minute)))
})
