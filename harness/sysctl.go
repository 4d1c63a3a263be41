package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sysctls the lab commonly sets; all are per network namespace.
const (
	TCPFinTimeout      = "net.ipv4.tcp_fin_timeout"
	TCPTwReuse         = "net.ipv4.tcp_tw_reuse"
	TCPMaxTwBuckets    = "net.ipv4.tcp_max_tw_buckets"
	TCPSynRetries      = "net.ipv4.tcp_syn_retries"
	TCPSynackRetries   = "net.ipv4.tcp_synack_retries"
	TCPOrphanRetries   = "net.ipv4.tcp_orphan_retries"
	TCPRetries2        = "net.ipv4.tcp_retries2"
	TCPRFC1337         = "net.ipv4.tcp_rfc1337"
	TCPSyncookies      = "net.ipv4.tcp_syncookies"
	TCPMaxSynBacklog   = "net.ipv4.tcp_max_syn_backlog"
	TCPKeepaliveTime   = "net.ipv4.tcp_keepalive_time"
	TCPKeepaliveIntvl  = "net.ipv4.tcp_keepalive_intvl"
	TCPKeepaliveProbes = "net.ipv4.tcp_keepalive_probes"
	IPLocalPortRange   = "net.ipv4.ip_local_port_range"
	Somaxconn          = "net.core.somaxconn"
)

// sysctlPath turns net.ipv4.tcp_fin_timeout (or net/ipv4/tcp_fin_timeout)
// into its /proc/sys path, refusing anything outside net.* and any path
// trick.
func sysctlPath(name string) (string, error) {
	n := strings.ReplaceAll(strings.TrimSpace(name), ".", "/")
	if !strings.HasPrefix(n, "net/") {
		return "", fmt.Errorf("%s: %w (only net.* knobs can be per namespace)", name, ErrGlobalSysctl)
	}
	if strings.Contains(n, "//") || strings.HasSuffix(n, "/") || filepath.Clean("/"+n) != "/"+n {
		return "", fmt.Errorf("%s: %w: malformed name", name, ErrUnknownSysctl)
	}
	return "/proc/sys/" + n, nil
}

// SetSysctl writes a per-namespace sysctl inside this namespace.
// Equivalent to: `ip netns exec NS sysctl -w name=value`.
//
// The kernel decides what is per namespace: a net.* knob it registers in
// every namespace exists under /proc/sys inside ours; a global one (tcp_mem,
// tcp_max_orphans, ...) exists only in the initial namespace. A global knob
// is refused with ErrGlobalSysctl and an unknown one with ErrUnknownSysctl,
// so the lab never changes the machine.
func (ns *Namespace) SetSysctl(name, value string) error {
	p, err := sysctlPath(name)
	if err != nil {
		return err
	}
	err = ns.Do(func() error {
		if err := checkPerNamespace(name, p); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(value), 0); err != nil {
			return fmt.Errorf("set %s=%s in %s: %w", name, value, ns, err)
		}
		return nil
	})
	return classifyMissing(name, p, err)
}

// Sysctl reads a sysctl as this namespace sees it.
func (ns *Namespace) Sysctl(name string) (string, error) {
	p, err := sysctlPath(name)
	if err != nil {
		return "", err
	}
	var v string
	err = ns.Do(func() error {
		if err := checkPerNamespace(name, p); err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s in %s: %w", name, ns, err)
		}
		v = strings.TrimSpace(string(b))
		return nil
	})
	return v, classifyMissing(name, p, err)
}

var errNotInNamespace = errors.New("not registered in this namespace")

// checkPerNamespace runs inside the lab namespace: the knob must exist there.
func checkPerNamespace(name, path string) error {
	_, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return errNotInNamespace
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", name, err)
	}
	return nil
}

// classifyMissing runs on an ordinary thread, in the process's own
// namespace: a knob that exists there but not in the lab is global.
func classifyMissing(name, path string, err error) error {
	if !errors.Is(err, errNotInNamespace) {
		return err
	}
	if _, statErr := os.Stat(path); statErr == nil {
		return fmt.Errorf("%s: %w", name, ErrGlobalSysctl)
	}
	return fmt.Errorf("%s: %w", name, ErrUnknownSysctl)
}
