package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Catalog holds the built-in scenarios, one file each.
//
//go:embed catalog/*.yaml
var Catalog embed.FS

// LoadCatalog loads every built-in scenario, in file name order.
func LoadCatalog() ([]*Scenario, error) {
	names, err := fs.Glob(Catalog, "catalog/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []*Scenario
	for _, n := range names {
		b, err := Catalog.ReadFile(n)
		if err != nil {
			return nil, err
		}
		s, err := Parse("scenarios/"+n, b)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// LoadPaths loads scenario files and every *.yaml in directories, and
// validates them all before anything runs: one bad file fails the lot.
func LoadPaths(paths []string) ([]*Scenario, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		m, _ := filepath.Glob(filepath.Join(p, "*.yaml"))
		if len(m) == 0 {
			return nil, fmt.Errorf("%s: no *.yaml scenario files", p)
		}
		sort.Strings(m)
		files = append(files, m...)
	}
	var out []*Scenario
	var errs []error
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
