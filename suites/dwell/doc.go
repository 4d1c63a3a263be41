// Package dwell proves how long a socket stays in a transient state when
// one packet is late: delaying only the ACK of the client's FIN by 300 ms
// (the queue backend, deciding packet by packet in Go) keeps the client in
// FIN_WAIT1 for 300 ms, and delaying only the final ACK keeps the server in
// LAST_ACK for 300 ms. The retransmissions such a delay provokes (a tail
// loss probe and an RTO, both under 300 ms) are counted and held too.
package dwell
