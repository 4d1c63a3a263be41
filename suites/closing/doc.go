// Package closing proves simultaneous close: when both ends close at once,
// each goes FIN_WAIT1 -> CLOSING -> TIME_WAIT. Here the crossing FINs come
// from two threads closing together; the faults suites will make it
// deterministic by holding packets.
package closing
