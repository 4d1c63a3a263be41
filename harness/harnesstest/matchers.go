package harnesstest

import (
	"fmt"
	"slices"

	"github.com/onsi/gomega/types"
	"github.com/tcplab/tcplab/harness"
	"github.com/tcplab/tcplab/harness/tcpstate"
)

type stateMatcher struct {
	want  []tcpstate.State
	exact bool
	what  string
}

// HaveStates succeeds when the timeline entered exactly these states, in
// this order (the starting state left out; self-transitions skipped):
// HaveStates(SynSent, Established, FinWait1, FinWait2, TimeWait, Closed).
func HaveStates(states ...tcpstate.State) types.GomegaMatcher {
	return &stateMatcher{want: states, exact: true, what: "to have exactly the states"}
}

// PassThroughStates succeeds when the timeline entered these states in this
// order, possibly with others between them.
func PassThroughStates(states ...tcpstate.State) types.GomegaMatcher {
	return &stateMatcher{want: states, what: "to pass through, in order, the states"}
}

func (m *stateMatcher) Match(actual any) (bool, error) {
	tl, err := timeline(actual)
	if err != nil {
		return false, err
	}
	got := tl.States()
	if m.exact {
		return slices.Equal(got, m.want), nil
	}
	i := 0
	for _, s := range got {
		if i < len(m.want) && s == m.want[i] {
			i++
		}
	}
	return i == len(m.want), nil
}

func (m *stateMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("Expected timeline %s %v\n%s", m.what, m.want, describe(actual))
}

func (m *stateMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("Expected timeline not %s %v\n%s", m.what, m.want, describe(actual))
}

type currentMatcher struct{ want tcpstate.State }

// BeInState succeeds when the timeline's current state is s.
func BeInState(s tcpstate.State) types.GomegaMatcher { return &currentMatcher{want: s} }

func (m *currentMatcher) Match(actual any) (bool, error) {
	tl, err := timeline(actual)
	if err != nil {
		return false, err
	}
	return tl.Current() == m.want, nil
}

func (m *currentMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("Expected the connection to be in %v\n%s", m.want, describe(actual))
}

func (m *currentMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("Expected the connection not to be in %v\n%s", m.want, describe(actual))
}

type enteredMatcher struct{ want tcpstate.State }

// HaveEntered succeeds when the timeline entered s at some point.
func HaveEntered(s tcpstate.State) types.GomegaMatcher { return &enteredMatcher{want: s} }

func (m *enteredMatcher) Match(actual any) (bool, error) {
	tl, err := timeline(actual)
	if err != nil {
		return false, err
	}
	_, ok := tl.Entered(m.want)
	return ok, nil
}

func (m *enteredMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("Expected the connection to have entered %v\n%s", m.want, describe(actual))
}

func (m *enteredMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("Expected the connection never to enter %v\n%s", m.want, describe(actual))
}

func timeline(actual any) (harness.Timeline, error) {
	switch v := actual.(type) {
	case harness.Timeline:
		return v, nil
	case *harness.Timeline:
		if v != nil {
			return *v, nil
		}
	}
	return harness.Timeline{}, fmt.Errorf("expected a harness.Timeline, got %T", actual)
}

func describe(actual any) string {
	tl, err := timeline(actual)
	if err != nil {
		return fmt.Sprintf("%v", actual)
	}
	return tl.String()
}
