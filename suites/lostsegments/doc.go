// Package lostsegments proves what TCP states do when the filter backend
// drops chosen segments: a SYN_SENT whose SYN-ACKs never arrive gives up
// after tcp_syn_retries, and a LAST_ACK whose final ACK is lost keeps
// resending its FIN until an ACK gets through.
package lostsegments
