package harness

import (
	"fmt"
	"os"
	"testing"
)

// TestMain runs the unprivileged helper when asked (see privileges_test.go)
// and otherwise the tests, most of which need root.
func TestMain(m *testing.M) {
	if os.Getenv("TCPLAB_TEST_UNPRIVILEGED") == "1" {
		_, err := NewPair(PairOptions{})
		fmt.Print(err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// needRoot skips a test that needs privileges, or fails it in strict mode.
func needRoot(t *testing.T) {
	t.Helper()
	if err := CheckPrivileges(); err != nil {
		if os.Getenv("TCPLAB_STRICT") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func newTestPair(t *testing.T, opts PairOptions) *Pair {
	t.Helper()
	needRoot(t)
	p, err := NewPair(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// newTestRecorder starts a tracing recorder watching the pairs, closed at
// the test's end; without tracing the test is skipped with the reason.
func newTestRecorder(t *testing.T, opts RecorderOptions, pairs ...*Pair) *Recorder {
	t.Helper()
	needRoot(t)
	rec, err := NewRecorder(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rec.Close(); err != nil {
			t.Error(err)
		}
	})
	if rec.Mode() != ModeTrace {
		t.Skip(rec.Reason())
	}
	for _, p := range pairs {
		if err := rec.WatchPair(p); err != nil {
			t.Fatal(err)
		}
	}
	return rec
}
