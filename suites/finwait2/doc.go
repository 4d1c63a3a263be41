// Package finwait2 proves how FIN_WAIT2 ends: an orphaned socket (closed by
// the application) leaves it after tcp_fin_timeout, or TCP_LINGER2, without
// ever entering TIME_WAIT; a socket half-closed with shutdown(SHUT_WR) and
// still open stays in it for as long as the peer does not close.
package finwait2
