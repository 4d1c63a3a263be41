// Package lostsegments proves what TCP states do when the filter backend
// drops chosen segments: a SYN_SENT whose SYN-ACKs never arrive gives up
// after tcp_syn_retries; a SYN_RECV whose final ACK is lost resends its
// SYN-ACK per tcp_synack_retries; a LAST_ACK whose final ACK is lost keeps
// resending its FIN until an ACK gets through; an orphan in FIN_WAIT1 gives
// up after tcp_orphan_retries; an ESTABLISHED connection to a dead peer ends
// with ETIMEDOUT after tcp_retries2 or TCP_USER_TIMEOUT; and a SYN flood
// without syncookies piles SYN_RECV request sockets up to the backlog.
package lostsegments
