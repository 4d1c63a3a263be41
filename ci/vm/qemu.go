package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// leg is one kernel's run.
type leg struct {
	kernel *kernel
	dir    string        // reports and logs of this leg
	boot   time.Duration // qemu start to the first suite starting
	total  time.Duration // qemu start to exit
	exit   int           // the guest's verdict, -1 if it never said
}

// errHang means the guest did not finish in time.
var errHang = errors.New("guest did not finish in time")

func (l *leg) run(ctx context.Context, o *options, bins *payload, accel string) error {
	l.exit = -1
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	initrd, err := initramfs(l.kernel, bins, o.filter, o.benchtime, o.cache)
	if err != nil {
		return err
	}
	console := filepath.Join(l.dir, "console.log")
	results := filepath.Join(l.dir, "results.b64")
	_ = os.Remove(results)
	fmt.Printf("%s: booting (%s), serial log %s\n", l.kernel.Release, accel, console)
	start := time.Now()
	image := pvhImage(l.kernel.Vmlinuz, filepath.Join(o.cache, "pvh", l.kernel.Release))
	err = boot(ctx, accel, image, initrd, console, results, o.timeout, func(line string, at time.Duration) {
		switch {
		case (strings.HasPrefix(line, "TCPLAB-SUITE ") || strings.HasPrefix(line, "TCPLAB-BENCH ")) && l.boot == 0:
			l.boot = at
		case strings.HasPrefix(line, "TCPLAB-SUITE-DONE "), strings.HasPrefix(line, "TCPLAB-BENCH-DONE "):
			fmt.Printf("%s: %s\n", l.kernel.Release, line)
		case strings.HasPrefix(line, "TCPLAB-INSMOD-FAILED "):
			fmt.Printf("%s: %s\n", l.kernel.Release, line)
		case strings.HasPrefix(line, "TCPLAB-EXIT "):
			_, _ = fmt.Sscanf(line, "TCPLAB-EXIT %d", &l.exit)
		}
	})
	l.total = time.Since(start)
	if err != nil {
		return fmt.Errorf("%w (serial log: %s)", err, console)
	}
	if err := unpackResults(results, l.dir); err != nil {
		return fmt.Errorf("results: %w (serial log: %s)", err, console)
	}
	if l.exit != 0 {
		return fmt.Errorf("suites or benchmarks failed in the guest (exit %d; logs in %s)", l.exit, l.dir)
	}
	return nil
}

// qemuArgs boots kernel and initrd with no network, the console on one
// serial port and the results on a second.
func qemuArgs(accel, kernel, initrd, console, results string) []string {
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-m", "2048", "-smp", "2",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 loglevel=4 nokaslr",
		"-chardev", "file,id=con,path=" + console, "-serial", "chardev:con",
		"-chardev", "file,id=res,path=" + results, "-serial", "chardev:res",
		"-nic", "none",
	}
	if accel == "kvm" {
		return append(a, "-accel", "kvm", "-cpu", "host")
	}
	return append(a, "-accel", "tcg,thread=multi", "-cpu", "max")
}

// boot runs qemu until it exits or timeout passes (then it is killed and
// errHang returned), calling each for every console line as it appears.
func boot(ctx context.Context, accel, kernel, initrd, console, results string, timeout time.Duration, each func(string, time.Duration)) error {
	_ = os.Remove(console)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", qemuArgs(accel, kernel, initrd, console, results)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start qemu: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var off int64
	var partial string
	follow := func() {
		f, err := os.Open(console)
		if err != nil {
			return
		}
		defer func() { _ = f.Close() }()
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return
		}
		b, _ := io.ReadAll(f)
		off += int64(len(b))
		partial += string(b)
		for {
			i := strings.IndexByte(partial, '\n')
			if i < 0 {
				return
			}
			each(strings.TrimRight(partial[:i], "\r"), time.Since(start))
			partial = partial[i+1:]
		}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			follow()
			if ctx.Err() != nil {
				return fmt.Errorf("%w after %v", errHang, timeout)
			}
			if err != nil {
				return fmt.Errorf("qemu: %w: %s", err, stderr.String())
			}
			return nil
		case <-tick.C:
			follow()
		}
	}
}

// unpackResults decodes what the guest wrote to its second serial port:
// base64 of a gzipped tar of its /out.
func unpackResults(path, dir string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var clean bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		clean.WriteString(strings.TrimSpace(sc.Text()))
	}
	raw, err := base64.StdEncoding.DecodeString(clean.String())
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
}

// probeKVM boots the first kernel under KVM with an init that only says
// hello, and answers "kvm" if that works within a few seconds, else "tcg"
// (nested KVM was seen to hang at boot on the project's machines).
func probeKVM(ctx context.Context, o *options, k *kernel) string {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		return "tcg"
	} else {
		_ = f.Close()
	}
	dir := filepath.Join(o.cache, "kvm-probe")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "tcg"
	}
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	for _, d := range []string{"bin", "dev", "proc"} {
		c.dir(d)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return "tcg"
	}
	c.file("bin/busybox", 0o755, bb)
	c.file("init", 0o755, []byte("#!/bin/busybox sh\n/bin/busybox echo TCPLAB-KVM-OK\n/bin/busybox poweroff -f\n"))
	initrd := filepath.Join(dir, "probe.cpio")
	if c.close() != nil || os.WriteFile(initrd, buf.Bytes(), 0o644) != nil {
		return "tcg"
	}
	ok := false
	err = boot(ctx, "kvm", k.Vmlinuz, initrd, filepath.Join(dir, "console.log"), filepath.Join(dir, "results"), 15*time.Second,
		func(line string, _ time.Duration) { ok = ok || strings.Contains(line, "TCPLAB-KVM-OK") })
	if err == nil && ok {
		fmt.Println("kvm: a probe boot worked, using it")
		return "kvm"
	}
	fmt.Printf("kvm: the probe boot did not finish (%v): using tcg\n", err)
	return "tcg"
}
