package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/harness"
	"github.com/tcplab/tcplab/scenarios"
)

// BenchmarkCatalog runs the whole built-in catalogue as `tcplab run`
// does and reports its wall time as a multiple of the longest kernel wait
// in it: TIME_WAIT's 60 s, which no schedule can shorten.
// Run with -benchtime=1x: one pass is over a minute.
func BenchmarkCatalog(b *testing.B) {
	if err := harness.CheckPrivileges(); err != nil {
		b.Skip(err)
	}
	list, err := scenarios.LoadCatalog()
	if err != nil {
		b.Fatal(err)
	}
	rec, err := harness.NewRecorder(harness.RecorderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = rec.Close() }()
	for b.Loop() {
		start := time.Now()
		results, err := runAll(context.Background(), list, scenarios.Options{Recorder: rec}, 8, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if !r.Passed {
				var report strings.Builder
				scenarios.WriteText(&report, r)
				b.Fatalf("%s over %s failed:\n%s", r.Scenario, r.Family, report.String())
			}
		}
		wall := time.Since(start)
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(wall.Seconds()/harness.TimewaitLen.Seconds(), "x-longest-wait")
		b.ReportMetric(float64(len(results)), "runs")
	}
}
