package harness

import (
	"os"
	"slices"
	"testing"
)

func TestSlotsAreDistinctAndInTheBenchmarkingRanges(t *testing.T) {
	needRoot(t)
	a, err := AcquireSlot()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := AcquireSlot()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.N == b.N {
		t.Fatalf("two live slots share number %d", a.N)
	}
	for _, s := range []*Slot{a, b} {
		for i := 1; i <= 2; i++ {
			v4, v6 := s.V4(i), s.V6(i)
			if !mustPrefix("198.18.0.0/15").Contains(v4.Addr()) || !mustPrefix("2001:2::/48").Contains(v6.Addr()) {
				t.Errorf("slot %d host %d: %v %v outside the lab ranges", s.N, i, v4, v6)
			}
		}
	}
}

func TestStaleSlotsAreFoundAndRemoved(t *testing.T) {
	needRoot(t)
	held, err := AcquireSlot()
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	// A file nobody locks: what a killed process leaves.
	stale := slotPath((held.N + 1) % Slots)
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveStaleSlots()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, stale) || slices.Contains(removed, slotPath(held.N)) {
		t.Fatalf("removed %v: want %s and not the held slot", removed, stale)
	}
	if _, err := os.Stat(slotPath(held.N)); err != nil {
		t.Fatalf("the held slot's file is gone: %v", err)
	}
}
