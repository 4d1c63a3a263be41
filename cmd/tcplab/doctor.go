package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
)

type check struct {
	name     string
	disables string // what a failure disables
	probe    func() (string, error)
}

var checks = []check{
	{"privileges", "everything", func() (string, error) { return "root with CAP_NET_ADMIN and CAP_SYS_ADMIN", harness.CheckPrivileges() }},
	{"BTF", "the tracepoint recorder (falls back to sock_diag polling)", func() (string, error) {
		_, err := btf.LoadKernelSpec()
		return "/sys/kernel/btf/vmlinux", err
	}},
	{"tracepoint", "transient states (SYN_SENT, FIN_WAIT1, CLOSING, LAST_ACK): their specs skip", probeTracepoint},
	{"sock_diag", "TIME_WAIT and request-socket observation", probeDiag},
	{"per-namespace sysctls", "sysctl-driven specs (tcp_fin_timeout, ...)", probeSysctl},
	{"HZ", "exact timer tolerances (HZ=100 assumed: wider)", func() (string, error) {
		hz, err := harness.KernelHZ()
		return fmt.Sprintf("CONFIG_HZ=%d, 60 s timers fire up to %v late", hz, harness.TimerSlack(harness.TimewaitLen)), err
	}},
	{"nftables", "the filter backend (drops, rejects, counts, partitions): those specs skip", func() (string, error) {
		return "inet tables with payload, bitwise, counter, numgen, reject", faults.HaveNFTables()
	}},
	{"NFQUEUE", "the queue backend (hold, release, per-packet delays) and Delay/Loss without netem", func() (string, error) {
		return "nfnetlink_queue through the xtables NFQUEUE target", faults.HaveQueue()
	}},
	{"netem", "the netem backend: netem specs skip (the kernel-matrix VM legs run them); Delay and Loss use the queue", func() (string, error) {
		return "sch_netem", faults.HaveNetem()
	}},
	{"tracefs", "nothing yet (tp_btf needs none); classic tracepoints later", func() (string, error) {
		if _, err := os.Stat("/sys/kernel/tracing/events"); err != nil {
			return "", fmt.Errorf("not mounted at /sys/kernel/tracing (mount -t tracefs tracefs /sys/kernel/tracing): %w", err)
		}
		return "/sys/kernel/tracing", nil
	}},
}

func probeTracepoint() (string, error) {
	rec, err := harness.NewRecorder(harness.RecorderOptions{})
	if err != nil {
		return "", err
	}
	defer func() { _ = rec.Close() }()
	if rec.Mode() != harness.ModeTrace {
		return "", errors.New(rec.Reason())
	}
	return "tp_btf/inet_sock_set_state with ring buffer", nil
}

func probeDiag() (string, error) {
	ns, err := harness.NewNamespace()
	if err != nil {
		return "", err
	}
	defer func() { _ = ns.Close() }()
	d, err := ns.NewDiag()
	if err != nil {
		return "", err
	}
	defer func() { _ = d.Close() }()
	_, err = d.Sockets(harness.AllStates)
	return "inet_diag for TCP, IPv4 and IPv6", err
}

func probeSysctl() (string, error) {
	ns, err := harness.NewNamespace()
	if err != nil {
		return "", err
	}
	defer func() { _ = ns.Close() }()
	if err := ns.SetSysctl(harness.TCPFinTimeout, "5"); err != nil {
		return "", err
	}
	return "net.ipv4.tcp_fin_timeout and friends per namespace", nil
}

func runDoctor(fs *flag.FlagSet, args []string, out io.Writer) error {
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	failed := 0
	for _, c := range checks {
		start := time.Now()
		detail, err := c.probe()
		if errors.Is(err, harness.ErrNotSupported) {
			// A feature this kernel lacks is an answer, not a failure.
			fmt.Fprintf(out, "no    %-22s %v\n      disables: %s\n", c.name, err, c.disables)
			continue
		}
		if err != nil {
			failed++
			fmt.Fprintf(out, "FAIL  %-22s %v\n      disables: %s\n", c.name, err, c.disables)
			continue
		}
		fmt.Fprintf(out, "ok    %-22s %s (%v)\n", c.name, detail, time.Since(start).Round(time.Millisecond))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(checks))
	}
	return nil
}
