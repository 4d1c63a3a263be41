package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// defaultSuites are the suites a VM leg runs: the netem specs, and the
// core close-path suites to see kernel differences in them.
const defaultSuites = "./suites/netem ./suites/closing ./suites/closepath ./suites/handshake"

// defaultFilter selects, from those suites, the specs that make sense on
// one vCPU pair under emulation: everything but the hold-and-race specs
// whose timing is the host's business.
const defaultFilter = "netem || close || closing || handshake"

type options struct {
	kernels   []string
	deb       string
	vmlinuz   string
	modules   string
	suites    []string
	benches   []bench
	benchtime string
	filter    string
	out       string
	cache     string
	accel     string
	timeout   time.Duration
	mirror    string
	hostJUnit string
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("vm", flag.ContinueOnError)
	o := &options{}
	kernels := fs.String("kernels", "6.1 6.12", "Debian kernel series to fetch and boot, space-separated")
	fs.StringVar(&o.deb, "deb", "", "boot this linux-image .deb instead of fetching")
	fs.StringVar(&o.vmlinuz, "vmlinuz", "", "boot this kernel image instead of fetching (with -modules)")
	fs.StringVar(&o.modules, "modules", "", "the kernel's modules directory (lib/modules/RELEASE)")
	suites := fs.String("suites", defaultSuites, "suite packages to run, space-separated (may be empty)")
	benches := fs.String("bench", "", "Go benchmarks to run after the suites, space-separated PKG=REGEX")
	fs.StringVar(&o.benchtime, "benchtime", "50x", "-test.benchtime for the benchmarks")
	fs.StringVar(&o.filter, "label-filter", defaultFilter, "Ginkgo label filter inside the VM")
	fs.StringVar(&o.out, "out", "out/vm", "where reports, serial logs and the results table go")
	fs.StringVar(&o.cache, "cache", defaultCache(), "download and initramfs cache")
	fs.StringVar(&o.accel, "accel", "auto", "qemu accelerator: tcg, kvm, or auto (kvm only if a quick probe boots)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "per-kernel limit; a VM still running then is killed")
	fs.StringVar(&o.mirror, "mirror", "http://deb.debian.org/debian", "Debian mirror for the kernel packages")
	fs.StringVar(&o.hostJUnit, "host-junit", "out/junit.xml", "the host run's JUnit report, for the table's host column (optional)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.kernels = strings.Fields(*kernels)
	o.suites = strings.Fields(*suites)
	var err error
	if o.benches, err = parseBenches(*benches); err != nil {
		return nil, err
	}
	if len(o.suites) == 0 && len(o.benches) == 0 {
		return nil, errors.New("nothing to run: give -suites or -bench")
	}
	if (o.vmlinuz == "") != (o.modules == "") {
		return nil, errors.New("-vmlinuz and -modules go together")
	}
	if o.deb != "" || o.vmlinuz != "" {
		o.kernels = nil
	}
	if len(o.kernels) == 0 && o.deb == "" && o.vmlinuz == "" {
		return nil, errors.New("no kernel: give -kernels, -deb or -vmlinuz with -modules")
	}
	switch o.accel {
	case "tcg", "kvm", "auto":
	default:
		return nil, fmt.Errorf("-accel %q: want tcg, kvm or auto", o.accel)
	}
	return o, nil
}

func defaultCache() string {
	if d := os.Getenv("TCPLAB_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "tcplab")
	}
	return filepath.Join(os.TempDir(), "tcplab-cache")
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "vm:", err)
		os.Exit(1)
	}
}

// run does every leg, then prints and writes the table. A failed leg does
// not stop the others: the table shows what each kernel did.
func run(ctx context.Context, o *options) error {
	if err := needTools(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	kernels, err := resolveKernels(ctx, o)
	if err != nil {
		return err
	}
	bins, err := buildPayload(ctx, o)
	if err != nil {
		return err
	}
	accel := o.accel
	if accel == "auto" {
		accel = probeKVM(ctx, o, kernels[0])
	}
	var legs []*leg
	var failed []string
	for _, k := range kernels {
		l := &leg{kernel: k, dir: filepath.Join(o.out, k.Release)}
		legs = append(legs, l)
		if err := l.run(ctx, o, bins, accel); err != nil {
			fmt.Fprintf(os.Stderr, "vm: %s: %v\n", k.Release, err)
			failed = append(failed, k.Release)
		}
	}
	if len(o.suites) > 0 {
		table, err := buildMatrix(o.hostJUnit, legs)
		if err != nil {
			return err
		}
		fmt.Print(table.render())
		if err := table.write(o.out); err != nil {
			return err
		}
	}
	for _, l := range legs {
		printBenches(l, bins.benches)
	}
	for _, l := range legs {
		if l.boot > 0 {
			fmt.Printf("%s: first spec %.1f s after qemu started, whole leg %.1f s (%s)\n",
				l.kernel.Release, l.boot.Seconds(), l.total.Seconds(), accel)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed on %s", strings.Join(failed, ", "))
	}
	return nil
}
