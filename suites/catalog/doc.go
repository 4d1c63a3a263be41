// Package catalog runs every built-in scenario (scenarios/catalog/*.yaml)
// as a spec, so the data-written scenarios are tested in CI like the Go
// suites: a scenario tagged slow gets the slow label.
package catalog
