// Package handshake proves the three-way handshake's states: the client
// CLOSED -> SYN_SENT -> ESTABLISHED, the listener CLOSED -> LISTEN, the
// accepted socket SYN_RECV -> ESTABLISHED.
package handshake
