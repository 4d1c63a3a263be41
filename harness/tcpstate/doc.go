// Package tcpstate names the TCP states the way the Linux kernel numbers them
// (include/net/tcp_states.h) and parses every spelling people use for them:
// the kernel's (TCP_FIN_WAIT1), netstat's (FIN_WAIT1), ss's (FIN-WAIT-1),
// RFC 793's (FIN-WAIT-1, SYN-RECEIVED) and the common variants (SYN_RCVD,
// FIN_WAIT_1, CLOSED).
//
// The eleven states of RFC 793 are all here; so are the kernel's own
// NEW_SYN_RECV (a request socket) and BOUND_INACTIVE (a bound socket that
// never listened or connected, Linux 6.8 and later).
package tcpstate
