package harnesstest

import (
	"errors"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
)

// Apply applies a fault for the rest of the spec, skipping the spec (or
// failing it, in strict mode) when the kernel lacks its backend. The
// backend that ran is written to the spec's report.
func (l *Lab) Apply(f faults.Fault) faults.Active {
	GinkgoHelper()
	a, err := f.Apply(l.Pair)
	if errors.Is(err, harness.ErrNotSupported) {
		SkipUnless(err)
	}
	Expect(err).NotTo(HaveOccurred(), "apply %+v", f)
	DeferCleanup(a.Undo)
	AddReportEntry("fault", a.String())
	return a
}

// Queue starts an Intercept (or a Hold, through its Intercept) for the
// rest of the spec and returns the queue, for Release and Stats.
func (l *Lab) Queue(i faults.Intercept) *faults.Queued {
	GinkgoHelper()
	return l.Apply(i).(*faults.Queued)
}

// Hold holds the packets h matches until Release, for the rest of the spec.
func (l *Lab) Hold(h faults.Hold) *faults.Queued {
	GinkgoHelper()
	return l.Apply(h).(*faults.Queued)
}

// HeldFunc returns how many packets q holds, for Eventually.
func HeldFunc(q *faults.Queued) func() int {
	return func() int { return len(q.Held()) }
}

// expectNoFaultsLeft fails the spec if a fault outlived its Undo.
func expectNoFaultsLeft(p *harness.Pair) {
	GinkgoHelper()
	left, err := faults.Leftovers(p)
	Expect(err).NotTo(HaveOccurred())
	Expect(left).To(BeEmpty(), "faults left after the spec")
}
