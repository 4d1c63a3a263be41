package scenarios

import "testing"

// Every built-in scenario loads and validates.
func TestCatalogLoads(t *testing.T) {
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(cat) < 17 {
		t.Fatalf("%d scenarios in the catalogue", len(cat))
	}
	names := map[string]bool{}
	for _, s := range cat {
		if names[s.Name] {
			t.Errorf("name %q used twice", s.Name)
		}
		names[s.Name] = true
		if s.Description == "" {
			t.Errorf("%s: no description", s.File)
		}
	}
}
