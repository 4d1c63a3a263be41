package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchKernel fetches (or finds cached) Debian's newest 6.1 kernel.
func benchKernel(b *testing.B) (*options, *kernel) {
	b.Helper()
	if err := needTools(); err != nil {
		b.Skip(err)
	}
	o, err := parseFlags([]string{"-kernels", "6.1", "-suites", "../../suites/handshake", "-label-filter", "handshake", "-out", b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ks, err := resolveKernels(context.Background(), o)
	if err != nil {
		b.Skip("no kernel: ", err)
	}
	return o, ks[0]
}

// BenchmarkBoot measures, under TCG: a bare boot to a shell that powers
// off at once (the baseline), and a boot of the real initramfs to its
// first spec and through a whole leg (the handshake suite). Target: the
// first spec within 10 s of starting qemu. Run with -benchtime=1x.
func BenchmarkBoot(b *testing.B) {
	o, k := benchKernel(b)
	b.Run("shell", func(b *testing.B) {
		var buf bytes.Buffer
		c := &cpioWriter{w: &buf}
		c.dir("bin")
		bb, err := os.ReadFile(busybox)
		if err != nil {
			b.Fatal(err)
		}
		c.file("bin/busybox", 0o755, bb)
		c.file("init", 0o755, []byte("#!/bin/busybox sh\n/bin/busybox echo TCPLAB-SHELL\n/bin/busybox poweroff -f\n"))
		if err := c.close(); err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		initrd := filepath.Join(dir, "shell.cpio")
		if err := os.WriteFile(initrd, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			start := time.Now()
			var at time.Duration
			image := pvhImage(k.Vmlinuz, filepath.Join(o.cache, "pvh", k.Release))
			err := boot(context.Background(), "tcg", image, initrd, filepath.Join(dir, "c.log"), filepath.Join(dir, "r"), time.Minute,
				func(line string, t time.Duration) {
					if strings.Contains(line, "TCPLAB-SHELL") {
						at = t
					}
				})
			if err != nil || at == 0 {
				b.Fatalf("boot: %v", err)
			}
			b.ReportMetric(at.Seconds(), "shell-s")
			b.ReportMetric(time.Since(start).Seconds(), "poweroff-s")
		}
	})
	b.Run("first-spec", func(b *testing.B) {
		bins, err := buildPayload(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			l := &leg{kernel: k, dir: b.TempDir()}
			if err := l.run(context.Background(), o, bins, "tcg"); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(l.boot.Seconds(), "first-spec-s")
			b.ReportMetric(l.total.Seconds(), "leg-s")
		}
	})
}
