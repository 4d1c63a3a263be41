package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
)

// buildSuites compiles the suites as static test binaries, stripped to
// keep the initramfs small, with ginkgo build. Go's build cache makes a
// second run cheap; the initramfs cache keys on the binaries' content.
func buildSuites(ctx context.Context, o *options) (map[string]string, error) {
	dir := filepath.Join(o.cache, "suites")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"run", "github.com/onsi/ginkgo/v2/ginkgo", "build", "--ldflags=-s -w", "-o", dir}, o.suites...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ginkgo build: %w: %s", err, out)
	}
	bins := map[string]string{}
	for _, s := range o.suites {
		name := filepath.Base(s)
		p := filepath.Join(dir, name+".test")
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("ginkgo build made no %s: %w", p, err)
		}
		bins[name] = p
	}
	return bins, nil
}

// initScript is the guest's /init: mount what the harness needs, load the
// modules, run each suite in strict mode, report over the serial ports,
// power off. Lines starting TCPLAB- are read by the host.
var initScript = template.Must(template.New("init").Parse(`#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
mount -t tracefs tracefs /sys/kernel/tracing
mount -t bpf bpf /sys/fs/bpf
echo "TCPLAB-BOOTED $(cut -d' ' -f1 /proc/uptime)"
for m in {{.Modules}}; do
	insmod /lib/modules/$m.ko || echo "TCPLAB-INSMOD-FAILED $m"
done
mkdir -p /out
rc=0
for s in {{.Suites}}; do
	echo "TCPLAB-SUITE $s $(cut -d' ' -f1 /proc/uptime)"
	TCPLAB_STRICT=1 /suites/$s.test -test.timeout=60m -ginkgo.no-color -ginkgo.label-filter='{{.Filter}}' \
		-ginkgo.junit-report=/out/$s.junit.xml -ginkgo.json-report=/out/$s.json > /out/$s.log 2>&1
	r=$?
	tail -n 3 /out/$s.log
	echo "TCPLAB-SUITE-DONE $s $r"
	[ $r -eq 0 ] || rc=1
done
{{range .Benches}}
echo "TCPLAB-BENCH {{.Name}} $(cut -d' ' -f1 /proc/uptime)"
/benches/{{.Name}}.test -test.run '^$' -test.bench '{{.Regex}}' -test.benchtime={{$.Benchtime}} > /out/bench-{{.Name}}.txt 2>&1
r=$?
echo "TCPLAB-BENCH-DONE {{.Name}} $r"
[ $r -eq 0 ] || rc=1
{{end}}echo "TCPLAB-EXIT $rc"
tar -cf - -C /out . | gzip | base64 > /dev/ttyS1
echo "TCPLAB-RESULTS-SENT"
sync
poweroff -f
`))

// initramfs builds (or finds in the cache) the kernel's initramfs: an
// uncompressed cpio, since the kernel copies it faster than it could
// gunzip it under emulation. The name is the hash of everything in it.
func initramfs(k *kernel, bins *payload, filter, benchtime, cache string) (string, error) {
	modDir := filepath.Join(cache, "modules", k.Release)
	order, err := func() ([]string, error) {
		idx, err := indexModules(k.Modules)
		if err != nil {
			return nil, err
		}
		return resolve(idx, wantedModules, modDir)
	}()
	if err != nil {
		return "", fmt.Errorf("modules of %s: %w", k.Release, err)
	}
	names := make([]string, 0, len(bins.suites))
	for n := range bins.suites {
		names = append(names, n)
	}
	type benchItem struct{ Name, Regex string }
	var benches []benchItem
	for _, b := range bins.benches {
		benches = append(benches, benchItem{b.name, strings.ReplaceAll(b.regex, "'", "")})
	}
	sort.Strings(names)
	var script bytes.Buffer
	if err := initScript.Execute(&script, map[string]any{
		"Modules":   strings.Join(order, " "),
		"Suites":    strings.Join(names, " "),
		"Filter":    strings.ReplaceAll(filter, "'", ""),
		"Benches":   benches,
		"Benchtime": strings.ReplaceAll(benchtime, "'", ""),
	}); err != nil {
		return "", err
	}
	type item struct {
		name string
		perm uint32
		src  string
		data []byte
	}
	items := []item{{name: "init", perm: 0o755, data: script.Bytes()}, {name: "bin/busybox", perm: 0o755, src: busybox}}
	for _, m := range order {
		items = append(items, item{name: "lib/modules/" + m + ".ko", perm: 0o644, src: filepath.Join(modDir, m+".ko")})
	}
	for _, n := range names {
		items = append(items, item{name: "suites/" + n + ".test", perm: 0o755, src: bins.suites[n]})
	}
	for _, b := range bins.benches {
		items = append(items, item{name: "benches/" + b.name + ".test", perm: 0o755, src: b.bin})
	}
	if k.Config != "" {
		items = append(items, item{name: "boot/config-" + k.Release, perm: 0o644, src: k.Config})
	}
	h := sha256.New()
	for i := range items {
		if items[i].src != "" {
			if items[i].data, err = os.ReadFile(items[i].src); err != nil {
				return "", err
			}
		}
		fmt.Fprintf(h, "%s %o %d\n", items[i].name, items[i].perm, len(items[i].data))
		h.Write(items[i].data)
	}
	dir := filepath.Join(cache, "initramfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, hex.EncodeToString(h.Sum(nil))[:16]+".cpio")
	if _, err := os.Stat(path); err == nil {
		return path, nil // built before from the same content
	}
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	for _, d := range []string{"bin", "dev", "proc", "sys", "run", "tmp", "boot", "lib", "lib/modules", "suites", "benches", "etc"} {
		c.dir(d)
	}
	c.symlink("bin/sh", "busybox")
	for _, it := range items {
		c.file(it.name, it.perm, it.data)
	}
	if err := c.close(); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}
