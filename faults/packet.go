package faults

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Packet is what a queue callback knows of one packet: its place in the
// queue's arrival order and its IP and TCP headers.
type Packet struct {
	N        int       // arrival order at this queue, from 0
	At       time.Time // when it reached the queue (the kernel's timestamp)
	Src, Dst netip.AddrPort
	Proto    uint8 // IP protocol: 6 for TCP
	Flags    TCPFlags
	Seq, Ack uint32
	Len      int // TCP payload bytes

	id uint32 // the kernel's packet id, for the verdict
}

func (p Packet) String() string {
	if p.Proto != 6 {
		return fmt.Sprintf("#%d proto %d %v > %v", p.N, p.Proto, p.Src.Addr(), p.Dst.Addr())
	}
	return fmt.Sprintf("#%d %v > %v [%v] seq %d ack %d len %d", p.N, p.Src, p.Dst, p.Flags, p.Seq, p.Ack, p.Len)
}

var errShortPacket = errors.New("short packet")

// ParsePacket reads the IP and TCP headers of a packet from its IP header
// on (as the queue hands it over, or a capture past its link header),
// maybe cut short after the headers. Extension headers are not followed:
// the lab sends none.
func ParsePacket(b []byte) (Packet, error) {
	var p Packet
	if len(b) < 1 {
		return p, errShortPacket
	}
	var src, dst netip.Addr
	var l4 []byte // as much of the segment as the queue copied
	var l4len int // the segment's length on the wire
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return p, errShortPacket
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < 20 || total < ihl || len(b) < ihl {
			return p, errShortPacket
		}
		p.Proto = b[9]
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		l4, l4len = b[ihl:min(total, len(b))], total-ihl
	case 6:
		if len(b) < 40 {
			return p, errShortPacket
		}
		plen := int(binary.BigEndian.Uint16(b[4:6]))
		p.Proto = b[6]
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		l4, l4len = b[40:min(40+plen, len(b))], plen
	default:
		return p, fmt.Errorf("ip version %d", b[0]>>4)
	}
	if p.Proto != 6 {
		p.Src, p.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		return p, nil
	}
	if len(l4) < 20 {
		return p, errShortPacket
	}
	off := int(l4[12]>>4) * 4
	if off < 20 || off > l4len {
		return p, errShortPacket
	}
	p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:2]))
	p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:4]))
	p.Seq = binary.BigEndian.Uint32(l4[4:8])
	p.Ack = binary.BigEndian.Uint32(l4[8:12])
	p.Flags = TCPFlags(l4[13])
	p.Len = l4len - off
	return p, nil
}
