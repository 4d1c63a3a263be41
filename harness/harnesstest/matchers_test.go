package harnesstest

import (
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/harness"
	. "github.com/tcplab/tcplab/harness/tcpstate"
)

func client() harness.Timeline {
	at := func(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }
	return harness.Timeline{Cookie: 7, Transitions: []harness.Transition{
		{From: Closed, To: SynSent, At: at(0), Source: harness.Traced},
		{From: SynSent, To: Established, At: at(1), Source: harness.Traced},
		{From: Established, To: FinWait1, At: at(5), Source: harness.Traced},
		{From: FinWait1, To: FinWait2, At: at(6), Source: harness.Traced},
		{From: FinWait2, To: FinWait2, At: at(7), Source: harness.Traced},
		{From: FinWait2, To: TimeWait, At: at(9), Source: harness.Traced},
	}, Now: at(10)}
}

func TestMatchersReadLikeTheTextbook(t *testing.T) {
	tl := client()
	cases := []struct {
		name string
		m    interface{ Match(any) (bool, error) }
		want bool
	}{
		{"exact", HaveStates(SynSent, Established, FinWait1, FinWait2, TimeWait), true},
		{"exact misses one", HaveStates(SynSent, Established, FinWait2, TimeWait), false},
		{"exact is not a prefix", HaveStates(SynSent, Established), false},
		{"subsequence", PassThroughStates(SynSent, FinWait2, TimeWait), true},
		{"subsequence out of order", PassThroughStates(TimeWait, SynSent), false},
		{"current", BeInState(TimeWait), true},
		{"not current", BeInState(FinWait2), false},
		{"entered", HaveEntered(FinWait1), true},
		{"never entered", HaveEntered(Closing), false},
	}
	for _, c := range cases {
		got, err := c.m.Match(tl)
		if err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := HaveStates(Listen).Match("not a timeline"); err == nil {
		t.Error("a non-timeline must be an error, not a mismatch")
	}
}

func TestFailureMessagesPrintTheWholeTimeline(t *testing.T) {
	msg := HaveStates(SynSent, Closed).FailureMessage(client())
	for _, want := range []string{"[SYN_SENT CLOSED]", "CLOSED -> SYN_SENT", "+0.005000s  ESTABLISHED -> FIN_WAIT1",
		"FIN_WAIT2 -> FIN_WAIT2   (self-transition)", "FIN_WAIT2 -> TIME_WAIT", "now +0.010000s in TIME_WAIT"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}
}
