package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// The shell baseline builds the same pair the way a script would, with
// iproute2, in namespaces named with the tcplab- prefix and this process's
// id, and on the lab's own addresses.
const shellPair = `set -e
c=tcplab-bench-$$-c; s=tcplab-bench-$$-s
ip netns add $c; ip netns add $s
ip -n $c link add eth0 type veth peer name eth0 netns $s
ip -n $c addr add 198.18.255.1/30 dev eth0; ip -n $s addr add 198.18.255.2/30 dev eth0
ip -n $c addr add 2001:2:0:ffff::1/64 dev eth0 nodad; ip -n $s addr add 2001:2:0:ffff::2/64 dev eth0 nodad
ip -n $c link set eth0 up; ip -n $s link set eth0 up
ip -n $c link set lo up; ip -n $s link set lo up
ip netns del $c; ip netns del $s
`

// BenchmarkPairShellBaseline is the baseline the Pair is measured against.
func BenchmarkPairShellBaseline(b *testing.B) {
	needRootB(b)
	if _, err := exec.LookPath("ip"); err != nil {
		b.Skip("iproute2 not installed: make deps installs it")
	}
	for b.Loop() {
		if out, err := exec.Command("bash", "-c", shellPair).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}

// BenchmarkPairSetupTeardown builds and destroys one pair at a time.
func BenchmarkPairSetupTeardown(b *testing.B) {
	needRootB(b)
	peak := liveNamespaces()
	for i := 0; b.Loop(); i++ {
		p, err := NewPair(PairOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
		if i%50 == 0 {
			peak = max(peak, liveNamespaces())
		}
	}
	b.ReportMetric(float64(peak), "peak-netns")
}

// BenchmarkPairSetupTeardownParallel is the same with pairs built
// concurrently, as ginkgo -p does: the kernel's own waits (RCU grace
// periods in device registration) overlap.
func BenchmarkPairSetupTeardownParallel(b *testing.B) {
	needRootB(b)
	var peak atomic.Int64
	b.SetParallelism(2)
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			p, err := NewPair(PairOptions{})
			if err != nil {
				b.Error(err)
				return
			}
			if err := p.Close(); err != nil {
				b.Error(err)
				return
			}
			if i%50 != 0 {
				continue
			}
			if n := int64(liveNamespaces()); n > peak.Load() {
				peak.Store(n)
			}
		}
	})
	b.ReportMetric(float64(peak.Load()), "peak-netns")
}

// liveNamespaces counts network namespaces alive or dying on the machine
// (the net_namespace slab), -1 if unreadable.
func liveNamespaces() int {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "net_namespace" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

func needRootB(b *testing.B) {
	b.Helper()
	if err := CheckPrivileges(); err != nil {
		b.Skip(err)
	}
}

// A sustained loop of 1,000 pairs must not build a backlog of dying
// namespaces: the kernel's count stays bounded while it runs.
func TestSustainedPairLoopBuildsNoBacklog(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("1,000 pairs")
	}
	base := liveNamespaces()
	if base < 0 {
		t.Skip("/proc/slabinfo unreadable")
	}
	peak := base
	for i := range 1000 {
		p, err := NewPair(PairOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if i%25 == 0 {
			peak = max(peak, liveNamespaces())
		}
	}
	// Measured here: base ~35, peak ~80 while the kernel's cleanup runs
	// in batches. A backlog would grow with the loop: 2,000 namespaces.
	if peak-base > 400 {
		t.Fatalf("dying namespaces piled up: %d at the start, %d at the peak", base, peak)
	}
	fmt.Fprintf(os.Stderr, "namespaces: %d at the start, peak %d over 1,000 pairs\n", base, peak)
}
