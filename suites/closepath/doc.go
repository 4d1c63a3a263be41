// Package closepath proves the four-way close from both ends: the active
// closer's ESTABLISHED -> FIN_WAIT1 -> FIN_WAIT2 -> TIME_WAIT, the passive
// closer's ESTABLISHED -> CLOSE_WAIT -> LAST_ACK -> CLOSED, the CLOSE_WAIT
// that lasts as long as the application does not close, and the RSTs of
// SO_LINGER {1, 0} and of closing with unread data.
package closepath
