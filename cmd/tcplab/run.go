package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/harness"
	"github.com/tcplab/tcplab/scenarios"
)

// errFailed makes run exit 1 after printing why.
var errFailed = errors.New("expectations failed")

func runRun(fs *flag.FlagSet, args []string, out io.Writer) error {
	jsonOut := fs.String("json", "", "write every result to this JSON file")
	junitOut := fs.String("junit", "", "write a JUnit report to this file")
	htmlOut := fs.String("html", "", "write the HTML report to this file")
	pcapDir := fs.String("pcap-dir", "", "write one pcap per scenario run into this directory")
	parallel := fs.Int("parallel", 8, "scenarios run at once (each has its own lab)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *parallel < 1 {
		fmt.Fprintln(fs.Output(), "-parallel must be at least 1")
		return errUsage
	}
	// Every file is loaded and validated before anything is created.
	var list []*scenarios.Scenario
	var err error
	if fs.NArg() == 0 {
		list, err = scenarios.LoadCatalog()
	} else {
		list, err = scenarios.LoadPaths(fs.Args())
	}
	if err != nil {
		return err
	}
	if err := harness.CheckPrivileges(); err != nil {
		return err
	}
	rec, err := harness.NewRecorder(harness.RecorderOptions{})
	if err != nil {
		return fmt.Errorf("start the recorder: %w", err)
	}
	defer func() { _ = rec.Close() }()
	if rec.Mode() != harness.ModeTrace {
		fmt.Fprintf(os.Stderr, "note: %s; transient states may be missed\n", rec.Reason())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	results, err := runAll(ctx, list, scenarios.Options{Recorder: rec, Progress: os.Stderr, PcapDir: *pcapDir}, *parallel, out)
	if err != nil {
		return err
	}
	passed := 0
	for _, r := range results {
		if r.Passed {
			passed++
		}
	}
	fmt.Fprintf(out, "\n%d of %d runs passed (%d scenarios) in %.1f s\n", passed, len(results), len(list), time.Since(start).Seconds())
	for _, w := range []struct {
		path  string
		write func(string, []*scenarios.Result) error
	}{{*jsonOut, scenarios.WriteJSON}, {*junitOut, scenarios.WriteJUnit}, {*htmlOut, scenarios.WriteHTML}} {
		if w.path == "" {
			continue
		}
		if err := w.write(w.path, results); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", w.path)
	}
	if passed != len(results) {
		return errFailed
	}
	return nil
}

// runAll runs the scenarios, parallel at a time, printing each result as
// it completes; the results come back in file order.
func runAll(ctx context.Context, list []*scenarios.Scenario, o scenarios.Options, parallel int, out io.Writer) ([]*scenarios.Result, error) {
	var mu sync.Mutex
	var results []*scenarios.Result
	var errs []error
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, s := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rs, err := scenarios.Run(ctx, s, o)
			mu.Lock()
			defer mu.Unlock()
			for _, r := range rs {
				scenarios.WriteText(out, r)
			}
			results = append(results, rs...)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	sort.SliceStable(results, func(i, j int) bool {
		if results[i].File != results[j].File {
			return results[i].File < results[j].File
		}
		return results[i].Family < results[j].Family
	})
	return results, errors.Join(errs...)
}

func runList(fs *flag.FlagSet, args []string, out io.Writer) error {
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	list, err := scenarios.LoadCatalog()
	if err != nil {
		return err
	}
	for _, s := range list {
		tags := ""
		if len(s.Tags) > 0 {
			tags = fmt.Sprintf(" %v", s.Tags)
		}
		fmt.Fprintf(out, "%-26s %s%s\n", s.Name, firstSentence(s.Description), tags)
	}
	return nil
}

// firstSentence keeps a description to its first sentence, cut to fit a
// line.
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}
