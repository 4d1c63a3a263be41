package tcpstate

import (
	"errors"
	"testing"
)

func TestParseEverySpelling(t *testing.T) {
	for _, s := range All {
		for _, name := range []string{s.Kernel(), s.Netstat(), s.SS(), s.String()} {
			if s == NewSynRecv && name == "SYN-RECV" {
				continue // ss shows request sockets as SYN-RECV: it means SynRecv
			}
			if s == BoundInactive && (name == "UNCONN") {
				continue
			}
			got, err := Parse(name)
			if err != nil || got != s {
				t.Errorf("Parse(%q) = %v, %v; want %v", name, got, err, s)
			}
		}
	}
}

func TestParseSeedSpellings(t *testing.T) {
	cases := map[string]State{
		"SYN_RCVD": SynRecv, "SYN-RECEIVED": SynRecv, "fin_wait_1": FinWait1,
		"FIN-WAIT-2": FinWait2, "CLOSED": Closed, "TCP_CLOSE": Closed,
		"close": Closed, "LISTENING": Listen, " time-wait ": TimeWait,
		"CLOSE-WAIT": CloseWait, "LAST_ACK": LastAck, "closing": Closing,
		"ESTAB": Established,
	}
	for in, want := range cases {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestParseRejectsUnknown(t *testing.T) {
	for _, in := range []string{"", "FIN_WAIT3", "OPEN", "TCP_"} {
		if _, err := Parse(in); !errors.Is(err, ErrUnknownState) {
			t.Errorf("Parse(%q) error = %v; want ErrUnknownState", in, err)
		}
	}
}

func TestRFC793HasElevenStates(t *testing.T) {
	if len(RFC793) != 11 {
		t.Fatalf("RFC 793 has 11 states, table has %d", len(RFC793))
	}
	seen := map[State]bool{}
	for _, s := range RFC793 {
		if seen[s] || !s.Valid() {
			t.Errorf("bad or duplicate state %v", s)
		}
		seen[s] = true
	}
}

func TestTextRoundTrip(t *testing.T) {
	for _, s := range All {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := back.UnmarshalText(b); err != nil {
			t.Fatal(err)
		}
		want := s
		if s == NewSynRecv || s == BoundInactive {
			continue
		}
		if back != want {
			t.Errorf("round trip %v -> %q -> %v", s, b, back)
		}
	}
}
