package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/harness"
)

// A run whose recorder lost events is run once more, and the second
// result says why; a run that failed on its own merits is not.
func TestRunIsRepeatedOnlyWhenTheRecorderLostEvents(t *testing.T) {
	lost := fmt.Errorf("%w: 1 timelines lost transitions no counter saw", harness.ErrLostEvents)
	for _, c := range []struct {
		name      string
		first     *Result
		wantRuns  int
		wantRerun string
	}{
		{"lost events", &Result{Passed: false, lost: lost}, 2, "the first run's recorder lost events: recorder lost events"},
		{"a real failure", &Result{Passed: false}, 1, ""},
		{"a pass", &Result{Passed: true}, 1, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			runs := 0
			res, err := rerunOnLoss(context.Background(), func() (*Result, error) {
				runs++
				if runs == 1 {
					return c.first, nil
				}
				return &Result{Passed: true}, nil
			})
			if err != nil || runs != c.wantRuns || !strings.HasPrefix(res.Rerun, c.wantRerun) {
				t.Fatalf("runs %d (want %d), rerun %q (want %q), err %v", runs, c.wantRuns, res.Rerun, c.wantRerun, err)
			}
			if c.wantRerun == "" && res.Rerun != "" {
				t.Fatalf("rerun %q, want none", res.Rerun)
			}
		})
	}
	// A build failure is returned as it is.
	boom := errors.New("build the lab: no slot")
	if _, err := rerunOnLoss(context.Background(), func() (*Result, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

// A second run says so in the text and the HTML report.
func TestReportsSayARunIsASecondOne(t *testing.T) {
	r := &Result{Scenario: "x", Family: "IPv4", Passed: true, Rerun: "the first run's recorder lost events: gone"}
	var text strings.Builder
	WriteText(&text, r)
	if !strings.Contains(text.String(), "  rerun: the first run's recorder lost events: gone\n") {
		t.Fatalf("text report:\n%s", text.String())
	}
	var page strings.Builder
	writeRun(&page, 0, r)
	if !strings.Contains(page.String(), "second run: the first run&#39;s recorder lost events: gone") {
		t.Fatalf("html report:\n%s", page.String())
	}
}
