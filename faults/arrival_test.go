package faults

import (
	"testing"
	"time"
)

func TestArrivalTrustsOnlyARecentKernelStamp(t *testing.T) {
	now := time.Now()
	stamp := func(ago time.Duration) *time.Time { s := time.Unix(0, now.UnixNano()-int64(ago)); return &s }
	for _, c := range []struct {
		name  string
		stamp *time.Time
		want  time.Duration // before now
	}{
		{"no stamp", nil, 0},
		{"zero stamp", &time.Time{}, 0},
		{"5ms old", stamp(5 * time.Millisecond), 5 * time.Millisecond},
		{"from the future (clock stepped)", stamp(-time.Second), 0},
		{"older than maxStampAge", stamp(2 * maxStampAge), 0},
	} {
		got := arrival(c.stamp, now)
		if d := now.Sub(got); d != c.want {
			t.Errorf("%s: arrival %v before now, want %v", c.name, d, c.want)
		}
		// The result stays on the monotonic clock: its String carries m=.
		if !containsMono(got) {
			t.Errorf("%s: arrival lost the monotonic reading: %v", c.name, got)
		}
	}
}

func containsMono(t time.Time) bool { return t.Round(0) != t }

func TestLateRingQuantiles(t *testing.T) {
	var l lateRing
	if d, n := l.quantile(0.99); d != 0 || n != 0 {
		t.Fatalf("empty ring: %v over %d", d, n)
	}
	for i := range 5000 {
		l.note(time.Duration(i) * time.Microsecond)
	}
	// The ring keeps the last 4,096: 904 us to 4,999 us.
	if d, n := l.quantile(0); d != 904*time.Microsecond || n != 4096 {
		t.Fatalf("min %v over %d, want 904us over 4096", d, n)
	}
	if d, _ := l.quantile(1); d != 4999*time.Microsecond {
		t.Fatalf("max %v, want 4999us", d)
	}
}
