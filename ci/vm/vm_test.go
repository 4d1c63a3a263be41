package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPickNewestTakesTheGenericFlavourOfTheSeries(t *testing.T) {
	names := []string{
		"linux-image-6.1.0-9-amd64", "linux-image-6.1.0-47-amd64", "linux-image-6.1.0-50-cloud-amd64",
		"linux-image-6.1.0-50-rt-amd64", "linux-image-6.1.0-50-amd64-dbg", "linux-image-6.1.0-50-amd64-unsigned",
		"linux-image-6.12.43+deb12-amd64", "linux-image-6.12.9+deb12-amd64", "linux-image-6.12.73+deb12-amd64",
	}
	for series, want := range map[string]string{
		"6.1":  "linux-image-6.1.0-47-amd64",
		"6.12": "linux-image-6.12.73+deb12-amd64",
		"5.10": "",
	} {
		if got := pickNewest(series, names); got != want {
			t.Errorf("%s: %q, want %q", series, got, want)
		}
	}
}

func TestSoftdepPreResolvesCryptoAliases(t *testing.T) {
	if got := softdepPre("pre: crc32c foo post: bar"); !slices.Equal(got, []string{"crc32c_generic", "foo"}) {
		t.Fatal(got)
	}
}

// The cpio the runner writes is one busybox's cpio can list, with the
// files, links and contents it was given.
func TestCpioIsReadableByCpio(t *testing.T) {
	if _, err := os.Stat(busybox); err != nil {
		t.Skip("busybox-static not installed: make deps installs it")
	}
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.dir("bin")
	c.file("bin/hello", 0o755, []byte("hi\n"))
	c.symlink("bin/sh", "busybox")
	c.file("odd", 0o644, []byte("12345"))
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(busybox, "cpio", "-i", "-d")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "bin/hello")); string(b) != "hi\n" {
		t.Errorf("bin/hello: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "odd")); string(b) != "12345" {
		t.Errorf("odd: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "bin/sh")); l != "busybox" {
		t.Errorf("bin/sh -> %q", l)
	}
}

func TestQemuHasNoNetworkAndTwoSerialPorts(t *testing.T) {
	for _, accel := range []string{"tcg", "kvm"} {
		a := strings.Join(qemuArgs(accel, "k", "i", "c.log", "r.b64"), " ")
		for _, want := range []string{"-nic none", "-nodefaults", "path=c.log", "path=r.b64", "-accel " + accel} {
			if !strings.Contains(a, want) {
				t.Errorf("%s: %q lacks %q", accel, a, want)
			}
		}
	}
}

func TestFlagsRefuseWhatCannotWork(t *testing.T) {
	for _, args := range [][]string{
		{"-vmlinuz", "x"},
		{"-accel", "hvf"},
		{"-kernels", ""},
		{"extra"},
		{"-suites", ""},          // nothing to run
		{"-bench", "./faults"},   // no regex
		{"-bench", "=ApplyUndo"}, // no package
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	o, err := parseFlags([]string{"-deb", "k.deb"})
	if err != nil || o.kernels != nil || o.deb != "k.deb" {
		t.Errorf("-deb: %+v %v", o, err)
	}
	o, err = parseFlags([]string{"-suites", "", "-bench", "./faults=ApplyUndo/ ./harness=Pair"})
	if err != nil || len(o.suites) != 0 || len(o.benches) != 2 ||
		o.benches[0] != (bench{name: "faults", bin: "./faults", regex: "ApplyUndo/"}) || o.benches[1].name != "harness" {
		t.Errorf("-bench: %+v %v", o, err)
	}
}

const junitFixture = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3">
  <testsuite name="netem" tests="4">
    <testcase name="[BeforeSuite]" classname="netem" status="passed"></testcase>
    <testcase name="[It] netem shows a delay over IPv4 [netem]" classname="netem" status="passed"></testcase>
    <testcase name="[It] netem drops a share over IPv4 [netem]" classname="netem" status="skipped">
      <skipped message="skipped - sch_netem not available"></skipped>
    </testcase>
    <testcase name="[It] netem keeps TIME_WAIT over IPv4 [netem, slow]" classname="netem" status="failed">
      <failure message="boom" type="failed"></failure>
    </testcase>
  </testsuite>
</testsuites>`

func TestMatrixShowsEverySpecOnEveryKernel(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"6.1.0-50-amd64", "6.12.73+deb12-amd64"} {
		if err := os.MkdirAll(filepath.Join(dir, k), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, k, "netem.junit.xml"), []byte(junitFixture), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	host := filepath.Join(dir, "host.xml")
	if err := os.WriteFile(host, []byte(junitFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := buildMatrix(host, []*leg{
		{kernel: &kernel{Release: "6.1.0-50-amd64"}, dir: filepath.Join(dir, "6.1.0-50-amd64")},
		{kernel: &kernel{Release: "6.12.73+deb12-amd64"}, dir: filepath.Join(dir, "6.12.73+deb12-amd64")},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := m.render()
	for _, want := range []string{
		"| spec | host | 6.1.0-50-amd64 | 6.12.73+deb12-amd64 |",
		"| netem: netem shows a delay over IPv4 [netem] | passed | passed | passed |",
		"| netem: netem drops a share over IPv4 [netem] | skipped (sch_netem not available) |",
		"| netem: netem keeps TIME_WAIT over IPv4 [netem, slow] | failed | failed | failed |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "BeforeSuite") {
		t.Errorf("suite nodes are not specs:\n%s", out)
	}
}

// A cached Debian kernel yields a vmlinux qemu can enter through PVH.
func TestPVHImageFromACachedKernel(t *testing.T) {
	images, _ := filepath.Glob(filepath.Join(defaultCache(), "kernels", "*", "boot", "vmlinuz-*"))
	if len(images) == 0 {
		t.Skip("no kernel in the cache yet: make test-vm fetches them")
	}
	out := pvhImage(images[0], t.TempDir())
	if out == images[0] || !hasPVH(out) {
		t.Fatalf("%s: no PVH image extracted", images[0])
	}
	if hasPVH(images[0]) {
		t.Fatal("a bzImage is not an ELF kernel")
	}
}
