// Package scenarios will hold connect/close patterns as data: load,
// validate, run, report. It is empty until that work lands.
package scenarios
