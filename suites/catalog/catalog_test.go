package catalog_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/tcplab/tcplab/harness/harnesstest"
	"github.com/tcplab/tcplab/scenarios"
)

// entries makes one table entry per catalogue file, at tree construction,
// so a file that does not load fails the suite before any spec runs.
func entries() []TableEntry {
	list, err := scenarios.LoadCatalog()
	if err != nil {
		panic(err) // Ginkgo reports it at tree construction
	}
	var out []TableEntry
	for _, s := range list {
		decorators := []any{Label(append([]string{"catalog"}, s.Tags...)...), SpecTimeout(3 * time.Minute)}
		out = append(out, Entry(s.Name, append(decorators, s)...))
	}
	return out
}

var _ = Describe("the built-in catalogue", func() {
	BeforeEach(func() { RequireTracing() })

	DescribeTable("holds what the scenario file expects",
		func(ctx SpecContext, s *scenarios.Scenario) {
			results, err := scenarios.Run(ctx, s, scenarios.Options{Recorder: Recorder()})
			Expect(err).NotTo(HaveOccurred())
			Expect(results).To(HaveLen(len(s.Lab.Families)))
			for _, r := range results {
				var text strings.Builder
				scenarios.WriteText(&text, r)
				AddReportEntry(r.Scenario+" over "+r.Family, text.String())
				Expect(r.Passed).To(BeTrue(), text.String())
			}
		}, entries())
})
