package harness

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Capabilities the lab needs: CAP_NET_ADMIN for links, addresses, qdiscs and
// nftables; CAP_SYS_ADMIN for unshare/setns of network namespaces; CAP_BPF
// and CAP_PERFMON (or CAP_SYS_ADMIN) for the tracepoint program.
var required = []struct {
	bit  uint
	name string
}{
	{unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"},
	{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
}

// CheckPrivileges returns an error wrapping ErrNotRoot, naming the missing
// capabilities, when this process cannot build a lab. Every constructor that
// touches the kernel calls it first, so nothing is half created.
func CheckPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	var missing []string
	for _, c := range required {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %v (euid %d); run with sudo", ErrNotRoot, missing, unix.Geteuid())
	}
	return nil
}
