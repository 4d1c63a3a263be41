package harness

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestSysctlIsPerNamespace(t *testing.T) {
	p := newTestPair(t, PairOptions{})
	root, err := os.ReadFile("/proc/sys/net/ipv4/tcp_fin_timeout")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Client.NS.SetSysctl(TCPFinTimeout, "7"); err != nil {
		t.Fatal(err)
	}
	if v, err := p.Client.NS.Sysctl(TCPFinTimeout); err != nil || v != "7" {
		t.Fatalf("client reads %q, %v; want 7", v, err)
	}
	if v, _ := p.Server.NS.Sysctl(TCPFinTimeout); v != "60" {
		t.Fatalf("server reads %q; a new namespace starts at 60", v)
	}
	after, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_fin_timeout")
	if string(after) != string(root) {
		t.Fatalf("the root namespace changed: %q -> %q", root, after)
	}
}

func TestSysctlSetsEveryKnobTheLabUses(t *testing.T) {
	p := newTestPair(t, PairOptions{})
	for knob, v := range map[string]string{
		TCPFinTimeout: "5", TCPTwReuse: "1", TCPMaxTwBuckets: "100", TCPSynRetries: "2",
		TCPSynackRetries: "2", TCPOrphanRetries: "1", TCPRetries2: "5", TCPRFC1337: "1",
		TCPSyncookies: "0", TCPMaxSynBacklog: "64", TCPKeepaliveTime: "30",
		TCPKeepaliveIntvl: "5", TCPKeepaliveProbes: "3", IPLocalPortRange: "40000\t40009", Somaxconn: "64",
	} {
		if err := p.Client.NS.SetSysctl(knob, v); err != nil {
			t.Errorf("%s: %v", knob, err)
			continue
		}
		if got, _ := p.Client.NS.Sysctl(knob); got != v {
			t.Errorf("%s reads %q after writing %q", knob, got, v)
		}
	}
}

func TestSysctlRefusesGlobalKnobs(t *testing.T) {
	p := newTestPair(t, PairOptions{})
	for _, knob := range []string{"net.ipv4.tcp_mem", "net.ipv4.tcp_max_orphans", "kernel.pid_max", "vm.swappiness"} {
		err := p.Client.NS.SetSysctl(knob, "1")
		if !errors.Is(err, ErrGlobalSysctl) {
			t.Errorf("SetSysctl(%s) = %v, want ErrGlobalSysctl", knob, err)
		}
	}
	if err := p.Client.NS.SetSysctl("net.ipv4.tcp_no_such_knob", "1"); !errors.Is(err, ErrUnknownSysctl) {
		t.Errorf("unknown knob: %v, want ErrUnknownSysctl", err)
	}
	if err := p.Client.NS.SetSysctl("net/../../kernel/pid_max", "1"); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("path trick: %v, want a malformed-name error", err)
	}
}
