// Package harnesstest is the Ginkgo side of the lab: it builds pairs whose
// cleanup is registered with DeferCleanup right where they are made, holds
// the process's one Recorder, skips (or in strict mode fails) specs whose
// kernel feature is missing, and offers Gomega matchers that read like the
// textbook:
//
//	Expect(lab.Timeline(client)).To(HaveStates(SynSent, Established, FinWait1, FinWait2, TimeWait, Closed))
//	Expect(lab.Timeline(server)).To(PassThroughStates(CloseWait, LastAck))
//	Eventually(lab.TimelineFunc(client)).Should(BeInState(TimeWait))
//
// Every helper calls GinkgoHelper, so a failure points at the spec line.
package harnesstest
