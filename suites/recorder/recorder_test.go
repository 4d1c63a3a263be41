package recorder_test

import (
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	. "github.com/tcplab/tcplab/harness/tcpstate"
)

type snapshot struct {
	t0, t1 time.Duration
	socks  []harness.DiagSocket
}

func snap(d *harness.Diag) snapshot {
	GinkgoHelper()
	t0 := harness.Monotonic()
	socks, err := d.Sockets(harness.AllStates)
	Expect(err).NotTo(HaveOccurred())
	return snapshot{t0: t0, t1: harness.Monotonic(), socks: socks}
}

// agrees reports whether the timeline allows state s at some moment of the
// snapshot's interval [t0, t1]: the state then, a state entered during it,
// or either side of a transition whose window overlaps it (the recorder
// only knows a polled change happened in [At-Window, At]).
func agrees(tl harness.Timeline, s State, t0, t1 time.Duration) bool {
	if tl.StateAt(t0) == s || tl.StateAt(t1) == s {
		return true
	}
	for _, tr := range tl.Transitions {
		if tr.At >= t0 && tr.At <= t1 && tr.To == s {
			return true
		}
		if tr.At-tr.Window <= t1 && tr.At >= t0 && (tr.From == s || tr.To == s) {
			return true
		}
	}
	return false
}

var _ = Describe("the recorder", Label("recorder"), func() {
	DescribeTable("agrees with sock_diag snapshots taken during the same run",
		func(ctx SpecContext, f harness.Family) {
			RequireTracing()
			lab := NewLab(f)
			var diags []*harness.Diag
			for _, h := range lab.Hosts() {
				d, err := h.NS.NewDiag()
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(d.Close)
				diags = append(diags, d)
			}
			var snaps []snapshot
			take := func() {
				for _, d := range diags {
					snaps = append(snaps, snap(d))
				}
			}
			take()
			c1, s1, ln := lab.Connect(ctx)
			take()
			c2, err := lab.Client.Dial(ctx, lab.ServerAddr(ln))
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(c2.Close)
			s2, err := ln.Accept(ctx)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s2.Close)
			take()
			Expect(c1.Close()).To(Succeed()) // c1 FIN_WAIT2, s1 CLOSE_WAIT
			Eventually(lab.TimelineFunc(s1)).WithContext(ctx).Should(BeInState(CloseWait))
			take()
			Expect(s2.Close()).To(Succeed()) // s2 FIN_WAIT2, c2 CLOSE_WAIT
			Expect(s1.Close()).To(Succeed()) // c1 TIME_WAIT
			Eventually(lab.TimelineFunc(c1)).WithContext(ctx).Should(BeInState(TimeWait))
			take()
			Expect(c2.Close()).To(Succeed()) // s2 TIME_WAIT
			Eventually(lab.TimelineFunc(s2)).WithContext(ctx).Should(BeInState(TimeWait))
			take()
			Expect(lab.Sync(ctx)).To(Succeed())

			checked := 0
			for _, s := range snaps {
				for _, d := range s.socks {
					tl := lab.Rec.TimelineOf(d.Cookie)
					Expect(tl.Transitions).NotTo(BeEmpty(), "sock_diag shows %v %v -> %v, the recorder has nothing", d.State, d.Local, d.Remote)
					Expect(agrees(tl, d.State, s.t0, s.t1)).To(BeTrue(),
						"sock_diag saw %v between +%v and +%v\n%s", d.State, s.t0, s.t1, tl)
					checked++
				}
			}
			// listener, then 2+2 sockets in three snapshots, then the rest.
			Expect(checked).To(BeNumerically(">=", 14))
		}, Families(SpecTimeout(30*time.Second)))

	DescribeTable("attributes every transition to its own connection while other pairs run the same pattern",
		func(ctx SpecContext, f harness.Family) {
			RequireTracing()
			const pairs, conns = 3, 40
			labs := make([]*Lab, pairs)
			clients := make([][]*harness.Endpoint, pairs)
			for i := range labs {
				labs[i] = NewLab(f)
			}
			var wg sync.WaitGroup
			for i, lab := range labs {
				ln := lab.Listen()
				wg.Add(1)
				go func() {
					defer GinkgoRecover()
					defer wg.Done()
					for range conns {
						c, err := lab.Client.Dial(ctx, lab.ServerAddr(ln))
						Expect(err).NotTo(HaveOccurred())
						s, err := ln.Accept(ctx)
						Expect(err).NotTo(HaveOccurred())
						Expect(c.Close()).To(Succeed())
						_, err = s.ReadAll(ctx)
						Expect(err).NotTo(HaveOccurred())
						Expect(s.Close()).To(Succeed())
						clients[i] = append(clients[i], c)
					}
				}()
			}
			wg.Wait()
			for i, lab := range labs {
				Expect(lab.Sync(ctx)).To(Succeed())
				for _, c := range clients[i] {
					Eventually(lab.TimelineFunc(c)).WithContext(ctx).Should(BeInState(TimeWait))
					tl := lab.Rec.Timeline(c)
					Expect(tl).To(HaveStates(SynSent, Established, FinWait1, FinWait2, TimeWait))
					Expect(tl.Namespace).To(Equal(lab.Client.NS.String()))
					Expect(tl.Local.Addr()).To(Equal(lab.Client.Addr(f)))
				}
				// The server namespace holds the listener and one child per
				// connection, nothing from the other pairs.
				tls := lab.Rec.Timelines(lab.Server.NS)
				Expect(tls).To(HaveLen(conns + 1))
				for _, tl := range tls[1:] {
					Expect(tl).To(HaveStates(SynRecv, Established, CloseWait, LastAck, Closed))
					Expect(tl.Remote.Addr()).To(Equal(lab.Client.Addr(f)))
				}
			}
		}, Families(SpecTimeout(60*time.Second)))

	DescribeTable("falls back to sock_diag polling without the tracepoint, and says so",
		func(ctx SpecContext, f harness.Family) {
			rec, err := harness.NewRecorder(harness.RecorderOptions{ForcePoll: true, PollInterval: 5 * time.Millisecond})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(rec.Close)
			Expect(rec.Mode()).To(Equal(harness.ModePoll))
			Expect(rec.Reason()).To(ContainSubstring("ForcePoll"))
			lab := NewLab(f)
			Expect(rec.WatchPair(lab.Pair)).To(Succeed())
			client, server, _ := lab.Connect(ctx)
			polled := func() harness.Timeline {
				Expect(rec.Sync(ctx, lab.Client.NS, lab.Server.NS)).To(Succeed())
				return rec.Timeline(client)
			}
			Eventually(polled).WithContext(ctx).Should(BeInState(Established))
			Expect(client.Close()).To(Succeed())
			_, err = server.ReadAll(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(server.Close()).To(Succeed())
			// The lasting states are seen; transient ones may be missed.
			Eventually(polled).WithContext(ctx).Should(BeInState(TimeWait))
			tl := polled()
			Expect(tl).To(PassThroughStates(Established, TimeWait))
			Expect(tl.Mode).To(Equal(harness.ModePoll))
			for _, tr := range tl.Transitions {
				Expect(tr.Source).To(Equal(harness.Polled))
			}
		}, Families(SpecTimeout(30*time.Second)))
})
