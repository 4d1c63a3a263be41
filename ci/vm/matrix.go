package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// junit is the part of Ginkgo's JUnit report the table needs.
type junit struct {
	Suites []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Status  string `xml:"status,attr"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// result is one spec's outcome on one kernel.
type result struct {
	status, reason string
}

func (r result) String() string {
	switch {
	case r.status == "":
		return "-"
	case r.reason != "":
		return r.status + " (" + r.reason + ")"
	}
	return r.status
}

// matrix is spec by kernel.
type matrix struct {
	kernels []string
	specs   []string                     // "suite: spec", sorted
	cells   map[string]map[string]result // spec -> kernel -> result
}

// readJUnit adds a report's specs to the matrix under column. Ginkgo
// reports suite-level nodes (BeforeSuite and the like) as cases too; only
// [It] specs are kept.
func (m *matrix) readJUnit(path, column string, only map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var j junit
	if err := xml.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			name, ok := strings.CutPrefix(c.Name, "[It] ")
			if !ok {
				continue
			}
			key := s.Name + ": " + name
			if only != nil && !only[key] {
				continue
			}
			r := result{status: c.Status}
			if c.Skipped != nil {
				r.reason = strings.TrimPrefix(c.Skipped.Message, "skipped - ")
				if r.status == "" {
					r.status = "skipped"
				}
			}
			if c.Failure != nil && r.status == "" {
				r.status = "failed"
			}
			if r.status == "" {
				r.status = "passed"
			}
			if r.status == "skipped" && strings.Contains(r.reason, "label filter") || r.status == "pending" {
				continue
			}
			if m.cells[key] == nil {
				m.cells[key] = map[string]result{}
				m.specs = append(m.specs, key)
			}
			m.cells[key][column] = r
		}
	}
	return nil
}

// buildMatrix reads each leg's reports, and the host's for the same specs.
func buildMatrix(hostJUnit string, legs []*leg) (*matrix, error) {
	m := &matrix{cells: map[string]map[string]result{}}
	for _, l := range legs {
		m.kernels = append(m.kernels, l.kernel.Release)
		reports, _ := filepath.Glob(filepath.Join(l.dir, "*.junit.xml"))
		if len(reports) == 0 {
			continue // the leg's error says why
		}
		for _, r := range reports {
			if err := m.readJUnit(r, l.kernel.Release, nil); err != nil {
				return nil, err
			}
		}
	}
	if hostJUnit != "" {
		only := map[string]bool{}
		for _, s := range m.specs {
			only[s] = true
		}
		err := m.readJUnit(hostJUnit, "host", only)
		if err == nil {
			m.kernels = append([]string{"host"}, m.kernels...)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	sort.Strings(m.specs)
	return m, nil
}

// render lays the matrix out as a Markdown table, one spec per row.
func (m *matrix) render() string {
	var b strings.Builder
	b.WriteString("| spec | " + strings.Join(m.kernels, " | ") + " |\n")
	b.WriteString("|---" + strings.Repeat("|---", len(m.kernels)) + "|\n")
	for _, s := range m.specs {
		row := make([]string, len(m.kernels))
		for i, k := range m.kernels {
			row[i] = m.cells[s][k].String()
		}
		b.WriteString("| " + strings.ReplaceAll(s, "|", "/") + " | " + strings.Join(row, " | ") + " |\n")
	}
	return b.String()
}

func (m *matrix) write(dir string) error {
	return os.WriteFile(filepath.Join(dir, "matrix.md"), []byte(m.render()), 0o644)
}
