package harness

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// SlotDir holds one lock file per address slot in use. A slot is held by an
// exclusive flock, so it is freed the instant its process dies, even by
// SIGKILL; the file itself is what `tcplab gc` removes.
const SlotDir = "/run/tcplab/slots"

// Slots is how many address slots exist: 198.18.0.0/15 cut into /30s.
const Slots = 1 << 15

// Slot is a block of lab addresses reserved for this process: a /30 in
// 198.18.0.0/15 and a /64 in 2001:2::/48. No two live processes hold the
// same slot, so every Pair running at once on this machine has its own
// addresses, even though each lives in its own namespaces.
type Slot struct {
	N    int
	file *os.File
}

// AcquireSlot reserves a free slot, trying random ones first.
func AcquireSlot() (*Slot, error) {
	if err := os.MkdirAll(SlotDir, 0o755); err != nil {
		return nil, fmt.Errorf("create slot directory: %w", err)
	}
	start := rand.IntN(Slots)
	for i := range Slots {
		n := (start + i) % Slots
		s, err := tryLockSlot(n)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, err
		}
	}
	return nil, ErrNoSlot
}

func tryLockSlot(n int) (*Slot, error) {
	f, err := os.OpenFile(slotPath(n), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open slot %d: %w", n, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, err
	}
	// The previous owner may have removed the path between our open and
	// our flock: then we hold a lock on a dead inode. Treat it as taken.
	var held, now unix.Stat_t
	if unix.Fstat(int(f.Fd()), &held) != nil || unix.Stat(f.Name(), &now) != nil || held.Ino != now.Ino {
		_ = f.Close()
		return nil, unix.EWOULDBLOCK
	}
	return &Slot{N: n, file: f}, nil
}

func slotPath(n int) string { return filepath.Join(SlotDir, fmt.Sprintf("tcplab-slot-%05d", n)) }

// V4 returns host i (1 or 2) of the slot's /30, with its prefix.
func (s *Slot) V4(i int) netip.Prefix {
	base := uint32(198)<<24 | uint32(18)<<16 // 198.18.0.0
	a := base + uint32(s.N)*4 + uint32(i)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 30)
}

// V6 returns host i of the slot's /64: 2001:2:0:<slot>::i.
func (s *Slot) V6(i int) netip.Prefix {
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x00, 0x02
	b[6], b[7] = byte(s.N>>8), byte(s.N)
	b[15] = byte(i)
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// Close releases the slot and removes its lock file.
func (s *Slot) Close() error {
	if s.file == nil {
		return nil
	}
	// Remove while still holding the lock, so no other process can be
	// between open and flock of the same path with the old inode.
	rmErr := os.Remove(s.file.Name())
	err := s.file.Close()
	s.file = nil
	if rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		return fmt.Errorf("remove slot file: %w", rmErr)
	}
	return err
}

// StaleSlots returns the lock files no live process holds: what a killed
// run left behind. RemoveStaleSlots deletes them.
func StaleSlots() ([]string, error) {
	entries, err := os.ReadDir(SlotDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list slots: %w", err)
	}
	var stale []string
	for _, e := range entries {
		p := filepath.Join(SlotDir, e.Name())
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			stale = append(stale, p)
		}
		_ = f.Close()
	}
	return stale, nil
}

// RemoveStaleSlots deletes the lock files no live process holds.
func RemoveStaleSlots() ([]string, error) {
	stale, err := StaleSlots()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, p := range stale {
		if removeStaleSlot(p) == nil {
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				removed = append(removed, p)
			}
		}
	}
	return removed, nil
}
