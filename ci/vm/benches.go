package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// payload is what the guest runs: the suites (static ginkgo test binaries,
// by name), then the benchmarks.
type payload struct {
	suites  map[string]string
	benches []bench
}

// bench is one package's Go benchmarks, run in the guest because they need
// a kernel feature the host lacks (netem's apply and undo, here). Figures
// taken under TCG compare only with others from the same guest.
type bench struct {
	name  string // the package's base name
	bin   string // its static test binary
	regex string // -test.bench
}

// parseBenches reads -bench: space-separated PKG=REGEX.
func parseBenches(s string) ([]bench, error) {
	var out []bench
	for _, f := range strings.Fields(s) {
		pkg, re, ok := strings.Cut(f, "=")
		if !ok || pkg == "" || re == "" {
			return nil, fmt.Errorf("-bench %q: want PKG=REGEX", f)
		}
		out = append(out, bench{name: filepath.Base(pkg), bin: pkg, regex: re})
	}
	return out, nil
}

// buildPayload compiles the suites and the benchmark packages.
func buildPayload(ctx context.Context, o *options) (*payload, error) {
	p := &payload{suites: map[string]string{}}
	if len(o.suites) > 0 {
		s, err := buildSuites(ctx, o)
		if err != nil {
			return nil, err
		}
		p.suites = s
	}
	dir := filepath.Join(o.cache, "benches")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, b := range o.benches {
		out := filepath.Join(dir, b.name+".test")
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-ldflags=-s -w", "-o", out, b.bin)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build benchmarks of %s: %w: %s", b.bin, err, msg)
		}
		b.bin = out
		p.benches = append(p.benches, b)
	}
	return p, nil
}

// printBenches prints the benchmark lines each guest wrote, prefixed by
// its kernel.
func printBenches(l *leg, benches []bench) {
	for _, b := range benches {
		f, err := os.Open(filepath.Join(l.dir, "bench-"+b.name+".txt"))
		if err != nil {
			fmt.Printf("%s: no results for %s: %v\n", l.kernel.Release, b.name, err)
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "--- SKIP") {
				fmt.Printf("%s: %s\n", l.kernel.Release, line)
			}
		}
		_ = f.Close()
	}
}
