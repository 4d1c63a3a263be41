// Package faults will hold the fault model and its backends (netem, packet
// filters, a Go packet queue), each applied to one direction of a lab link
// and removed again. It is empty until that work lands: nothing here yet.
package faults
