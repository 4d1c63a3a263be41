// Package timewait proves TIME_WAIT: it lasts TCP_TIMEWAIT_LEN (60 s, no
// sysctl changes it), only on the side that closed first, and while it
// lasts the connection's address and port cannot be bound again.
package timewait
