package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Prefix marks everything tcplab names: slot lock files, and any namespace
// bind mount, root-namespace link or trace instance a future component
// makes. `tcplab gc` removes only what carries it and no live process holds.
const Prefix = "tcplab-"

// Leftover is something a killed run left behind.
type Leftover struct {
	Kind string // "slot", "netns", "link", "trace-instance"
	Name string
	rm   func() error
}

func (l Leftover) String() string { return l.Kind + " " + l.Name }

// Remove deletes the leftover.
func (l Leftover) Remove() error { return l.rm() }

// Leftovers lists what dead tcplab processes left on this machine. Lab
// namespaces are unnamed and die with their process, so normally the only
// leftovers are slot files; the other kinds are looked for all the same.
// It only reads.
func Leftovers() ([]Leftover, error) {
	var out []Leftover
	slots, err := StaleSlots()
	if err != nil {
		return nil, err
	}
	for _, p := range slots {
		out = append(out, Leftover{Kind: "slot", Name: p, rm: func() error { return removeStaleSlot(p) }})
	}
	mounts, _ := filepath.Glob("/run/netns/" + Prefix + "*")
	for _, p := range mounts {
		out = append(out, Leftover{Kind: "netns", Name: p, rm: func() error {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", p, err)
			}
			return os.Remove(p)
		}})
	}
	links, err := netlink.LinkList() // the root namespace's: only read
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, Prefix) {
			out = append(out, Leftover{Kind: "link", Name: l.Attrs().Name, rm: func() error { return netlink.LinkDel(l) }})
		}
	}
	instances, _ := filepath.Glob("/sys/kernel/tracing/instances/" + Prefix + "*")
	for _, p := range instances {
		out = append(out, Leftover{Kind: "trace-instance", Name: p, rm: func() error { return os.Remove(p) }})
	}
	return out, nil
}

func removeStaleSlot(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	// Recheck under the lock: a new owner may have taken it meanwhile.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil
	}
	return os.Remove(p)
}
