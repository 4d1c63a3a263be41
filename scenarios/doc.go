// Package scenarios is tcplab's data format: a scenario file (YAML,
// version 1) describes a lab, the faults applied to it and when, the
// socket steps of client and server, and what must be observed: state
// sequences, dwell times, syscall results, fault packet counts, and counts
// of connections in a state. Load is strict: unknown fields, unknown
// state names and impossible steps are refused with file:line:column, and
// nothing is created for a file that does not validate. Run builds the lab
// with the harness, drives the steps and checks the expectations against
// the recorder's timelines.
//
// The built-in catalogue (catalog/*.yaml, embedded in the binary) covers
// the behaviours of the seed documents and the production close bugs;
// suites/catalog runs every file as a spec, and `tcplab run` runs them
// from the command line. README.md documents the format with a complete
// example.
package scenarios
