package scenarios

import (
	"errors"
	"strings"
	"testing"
)

const good = `version: 1
name: example
steps:
  - server: listen
  - client: connect
  - server: accept
  - client: close
expect:
  - states: [SYN_SENT, ESTABLISHED, FIN_WAIT1]
    of: client
    match: subsequence
`

func TestParseAcceptsAGoodFile(t *testing.T) {
	s, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "example" || len(s.Steps) != 4 || len(s.Expect) != 1 || s.Expect[0].Exact {
		t.Fatalf("%+v", s)
	}
}

// Every mistake is refused with the place it was made and what is wrong.
func TestParseRefusesWithFileLineColumn(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"unknown field", "version: 1\nname: x\ncolour: red\nsteps: [{server: listen}]\n", "x.yaml:3:1: unknown field \"colour\""},
		{"unknown state", strings.Replace(good, "FIN_WAIT1]", "FIN_WAIT_3]", 1), "x.yaml:9:37: unknown TCP state \"FIN_WAIT_3\""},
		{"version", strings.Replace(good, "version: 1", "version: 2", 1), "x.yaml:1:10: version 2"},
		{"no version", strings.Replace(good, "version: 1\n", "", 1), "version is required"},
		{"accept before listen", "version: 1\nname: x\nsteps:\n  - server: accept\n", "x.yaml:4:5: accept: no open listener"},
		{"close twice", strings.Replace(good, "  - client: close\n", "  - client: close\n  - client: close\n", 1), "x.yaml:8:5: client close: socket client is already closed"},
		{"write on nothing", "version: 1\nname: x\nsteps:\n  - client: write\n    bytes: 5\n", "the client has no socket yet"},
		{"bare duration", strings.Replace(good, "  - client: close\n", "  - wait: 5\n", 1), "x.yaml:7:11: want a duration with its unit"},
		{"negative count", strings.Replace(good, "  - client: close\n", "  - repeat: -1\n    steps: [{client: close}]\n", 1), "want a whole number of at least 1"},
		{"fault at unknown step", good + "faults:\n  - id: f\n    drop: {dir: client->server}\n    start: {step: nope}\n", "fault f: no step has id \"nope\""},
		{"probability out of range", good + "faults:\n  - id: f\n    loss: {dir: client->server, probability: 1.5}\n", "want a number in [0, 1]"},
		{"bad direction", good + "faults:\n  - id: f\n    drop: {dir: sideways}\n", "dir \"sideways\""},
		{"two kinds", good + "faults:\n  - id: f\n    drop: {dir: both}\n    hold: {dir: both}\n", "a fault is one kind"},
		{"unknown socket in expect", good + "  - states: [CLOSED]\n    of: ghost\n", "no socket \"ghost\""},
		{"dwell without tolerance", good + "  - dwell: TIME_WAIT\n    of: client\n    is: 60s\n", "dwell needs is and tolerance"},
		{"impossible range", good + "  - count: TIME_WAIT\n    on: client\n    at-least: 5\n    at-most: 2\n", "nothing can satisfy that"},
		{"field on the wrong action", strings.Replace(good, "  - client: close\n", "  - client: close\n    bytes: 4\n", 1), "\"bytes\" does not apply to close"},
		{"two documents", good + "---\nversion: 1\n", "one scenario per file"},
		{"not yaml", "version: [1\n", "x.yaml"},
		{"unknown errno", strings.Replace(good, "  - client: close\n", "  - client: close\n    error: EWHATEVER\n", 1), "error \"EWHATEVER\""},
		{"release of a drop", good + "faults:\n  - id: f\n    drop: {dir: both}\n", ""},
	} {
		_, err := Parse("x.yaml", []byte(c.file))
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant %q", c.name, err, c.want)
		}
	}
}

// FuzzParse: the loader never panics, and what it accepts it accepts
// again the same way.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	entries, _ := Catalog.ReadDir("catalog")
	for _, e := range entries {
		b, _ := Catalog.ReadFile("catalog/" + e.Name())
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("an error that is not ErrInvalid: %v", err)
			}
			return
		}
		if s.Name == "" || len(s.Steps) == 0 {
			t.Fatalf("accepted a scenario with no name or steps")
		}
		if _, err := Parse("fuzz.yaml", data); err != nil {
			t.Fatalf("accepted once, refused again: %v", err)
		}
	})
}
