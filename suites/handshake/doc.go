// Package handshake proves the three-way handshake's states: the client
// CLOSED -> SYN_SENT -> ESTABLISHED, the listener CLOSED -> LISTEN, the
// accepted socket SYN_RECV -> ESTABLISHED; and simultaneous open, where
// both SYNs cross (held by the queue until both are sent) and both sides
// go SYN_SENT -> SYN_RECV -> ESTABLISHED.
package handshake
