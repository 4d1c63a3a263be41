package ci

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type workflow struct {
	Name string                 `yaml:"name"`
	On   map[string]any         `yaml:"on"`
	Jobs map[string]workflowJob `yaml:"jobs"`
}

type workflowJob struct {
	RunsOn   string `yaml:"runs-on"`
	Timeout  int    `yaml:"timeout-minutes"`
	Strategy struct {
		FailFast bool                `yaml:"fail-fast"`
		Matrix   map[string][]string `yaml:"matrix"`
	} `yaml:"strategy"`
	Steps []struct {
		Name string            `yaml:"name"`
		If   string            `yaml:"if"`
		Uses string            `yaml:"uses"`
		Run  string            `yaml:"run"`
		With map[string]string `yaml:"with"`
	} `yaml:"steps"`
}

// The workflow users copy parses strictly, has both jobs, and calls only
// make targets and kernel series that exist.
func TestWorkflowIsValid(t *testing.T) {
	f, err := os.Open("workflow.yml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var w workflow
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("workflow.yml: %v", err)
	}
	if w.Name == "" || len(w.On) == 0 {
		t.Fatal("workflow.yml: no name or no trigger")
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z-]+):`).FindAllStringSubmatch(string(makefile), -1) {
		targets[m[1]] = true
	}
	for _, job := range []string{"host", "kernels"} {
		j, ok := w.Jobs[job]
		if !ok {
			t.Fatalf("no %s job", job)
		}
		if j.RunsOn == "" || j.Timeout == 0 || len(j.Steps) == 0 {
			t.Errorf("%s: runs-on, timeout-minutes and steps are required", job)
		}
		ran := false
		for _, s := range j.Steps {
			if (s.Uses == "") == (s.Run == "") {
				t.Errorf("%s: step %q needs exactly one of uses and run", job, s.Name)
			}
			// ${{ ... }} expressions are GitHub's, filled in before the shell runs.
			fields := strings.Fields(regexp.MustCompile(`\$\{\{[^}]*\}\}`).ReplaceAllString(s.Run, "X"))
			for i, f := range fields {
				if f != "make" {
					continue
				}
				ran = true
				for _, tgt := range fields[i+1:] {
					if strings.Contains(tgt, "=") {
						continue
					}
					if !targets[tgt] {
						t.Errorf("%s: make %s: no such target", job, tgt)
					}
				}
			}
		}
		if !ran {
			t.Errorf("%s: runs no make target", job)
		}
	}
	if k := w.Jobs["kernels"].Strategy.Matrix["kernel"]; strings.Join(k, " ") != "6.1 6.12" {
		t.Errorf("kernel matrix %v, want 6.1 and 6.12", k)
	}
}
