// Package closing proves simultaneous close: when both ends close at once,
// each goes FIN_WAIT1 -> CLOSING -> TIME_WAIT. The crossing FINs come four
// ways: two threads closing together (a race, retried until it happens),
// holding both directions while both close (queue), delaying just the FINs
// in Go (queue), and a netem delay both ways (netem). Holding the ACK
// behind the FIN makes only one side pass through CLOSING.
package closing
