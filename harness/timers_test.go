package harness

import (
	"testing"
	"time"
)

func TestTimerSlackFollowsTheWheel(t *testing.T) {
	hz, err := KernelHZ()
	if err != nil {
		t.Skipf("HZ unknown: %v", err)
	}
	j := time.Second / time.Duration(hz)
	// Level starts 63, 504, 4032, 32256 jiffies; at HZ=250 a 60 s timer
	// (15000 jiffies) is on level 3, granularity 512 jiffies.
	cases := []struct {
		d    time.Duration
		gran int64
	}{
		{10 * j, 1},
		{62 * j, 1},
		{63 * j, 8},
		{503 * j, 8},
		{504 * j, 64},
		{4032 * j, 512},
		{32256 * j, 4096},
	}
	for _, c := range cases {
		if got, want := TimerSlack(c.d), time.Duration(c.gran+1)*j; got != want {
			t.Errorf("TimerSlack(%v) = %v, want %v", c.d, got, want)
		}
	}
	if hz == 250 {
		if s := TimerSlack(60 * time.Second); s < 2*time.Second || s > 2100*time.Millisecond {
			t.Errorf("60 s at HZ=250: slack %v, DESIGN.md measured about 2 s", s)
		}
	}
}
