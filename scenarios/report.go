package scenarios

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"
)

// WriteText prints a result as people read it: the verdict, every check,
// and each named socket's timeline.
func WriteText(w io.Writer, r *Result) {
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s %s [%s] %.1fs (%s)\n", verdict, r.Scenario, r.Family, r.Duration.Seconds(), r.File)
	if r.Rerun != "" {
		fmt.Fprintf(w, "  rerun: %s\n", r.Rerun)
	}
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Where, c.Detail)
	}
	for _, f := range r.Faults {
		fmt.Fprintf(w, "  fault %s: %s, %d packets\n", f.ID, f.What, f.Packets)
	}
	for _, s := range r.Sockets {
		fmt.Fprintf(w, "  %s (%s): %s\n", s.Name, s.Host, strings.ReplaceAll(s.Text, "\n", "\n    "))
	}
	if len(r.KernelView) > 0 {
		fmt.Fprintf(w, "  the kernel, when the run failed:\n")
		for _, l := range r.KernelView {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

// WriteJSON writes every result as one JSON document.
func WriteJSON(path string, results []*Result) error {
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes one testsuite per scenario file and one testcase per
// run (family), with the failed checks as the failure.
func WriteJUnit(path string, results []*Result) error {
	var out junitSuites
	index := map[string]int{}
	for _, r := range results {
		i, ok := index[r.File]
		if !ok {
			i = len(out.Suites)
			index[r.File] = i
			out.Suites = append(out.Suites, junitSuite{Name: r.Scenario})
		}
		s := &out.Suites[i]
		var text strings.Builder
		WriteText(&text, r)
		c := junitCase{Name: r.Scenario + " over " + r.Family, Classname: r.File, Time: r.Duration.Seconds(), SystemOut: text.String()}
		if !r.Passed {
			var failed []string
			for _, ch := range r.Checks {
				if !ch.OK {
					failed = append(failed, ch.Where+": "+ch.Detail)
				}
			}
			c.Failure = &junitFailure{Message: strings.Join(failed, "; "), Text: text.String()}
			s.Failures++
		}
		s.Tests++
		s.Time += c.Time
		s.Cases = append(s.Cases, c)
	}
	b, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}
