package faults

import "strings"

// TCPFlags are the flag bits of the TCP header's 13th byte.
type TCPFlags uint8

// The TCP flags.
const (
	FIN TCPFlags = 0x01
	SYN TCPFlags = 0x02
	RST TCPFlags = 0x04
	PSH TCPFlags = 0x08
	ACK TCPFlags = 0x10
	URG TCPFlags = 0x20
	ECE TCPFlags = 0x40
	CWR TCPFlags = 0x80
	// AllFlags as a mask makes a match exact: ACK under AllFlags is a
	// pure ACK, not a FIN+ACK.
	AllFlags TCPFlags = 0xff
)

func (f TCPFlags) String() string {
	var names []string
	for _, n := range []struct {
		f    TCPFlags
		name string
	}{{FIN, "FIN"}, {SYN, "SYN"}, {RST, "RST"}, {PSH, "PSH"}, {ACK, "ACK"}, {URG, "URG"}, {ECE, "ECE"}, {CWR, "CWR"}} {
		if f&n.f != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}
