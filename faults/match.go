package faults

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/tcplab/tcplab/harness"
	"golang.org/x/sys/unix"
)

// Match says which packets a rule-based fault acts on: those travelling in
// Dir, TCP unless AnyProtocol, whose flags under Mask equal Flags (a zero
// Mask means Flags itself: "at least these flags"; both zero: every TCP
// packet), and whose ports equal SrcPort and DstPort where those are set.
type Match struct {
	Dir              Direction
	Flags            TCPFlags
	Mask             TCPFlags
	SrcPort, DstPort uint16
	AnyProtocol      bool // every packet, TCP or not: for partitions
}

// Select narrows a Match to some of its packets. At most one field may be
// set; none selects every matching packet.
type Select struct {
	Nth   int // only the Nth matching packet, counting from 1
	First int // only the first k matching packets
	// Probability, when non-zero, selects each matching packet with this
	// probability, drawn from a generator seeded with Seed, so the same
	// seed selects the same packets (by their order) in every run.
	Probability float64
	Seed        uint64
}

// period is the length of the cycle of a seeded probability: the decisions
// for packets 0..period-1 are drawn once and then repeat.
const period = 4096

func (m Match) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v", m.Dir)
	if !m.AnyProtocol {
		b.WriteString(" tcp")
		if mask := m.mask(); mask != 0 {
			fmt.Fprintf(&b, " flags & %v == %v", mask, m.Flags)
		}
	}
	if m.SrcPort != 0 {
		fmt.Fprintf(&b, " sport %d", m.SrcPort)
	}
	if m.DstPort != 0 {
		fmt.Fprintf(&b, " dport %d", m.DstPort)
	}
	return b.String()
}

func (s Select) String() string {
	switch {
	case s.Nth > 0:
		return fmt.Sprintf(" packet #%d", s.Nth)
	case s.First > 0:
		return fmt.Sprintf(" first %d", s.First)
	case s.Probability > 0:
		return fmt.Sprintf(" p=%g seed=%d", s.Probability, s.Seed)
	}
	return ""
}

func (m Match) mask() TCPFlags {
	if m.Mask == 0 {
		return m.Flags
	}
	return m.Mask
}

func (m Match) validate() error {
	if err := m.Dir.validate(); err != nil {
		return err
	}
	if m.Flags&^m.mask() != 0 {
		return fmt.Errorf("%w: flags %v outside mask %v can never match", ErrBadFault, m.Flags, m.mask())
	}
	if m.AnyProtocol && (m.mask() != 0 || m.SrcPort != 0 || m.DstPort != 0) {
		return fmt.Errorf("%w: flags and ports are TCP's: not with AnyProtocol", ErrBadFault)
	}
	return nil
}

func (s Select) validate() error {
	set := 0
	for _, on := range []bool{s.Nth != 0, s.First != 0, s.Probability != 0} {
		if on {
			set++
		}
	}
	switch {
	case set > 1:
		return fmt.Errorf("%w: choose one of Nth, First and Probability", ErrBadFault)
	case s.Nth < 0, s.First < 0:
		return fmt.Errorf("%w: negative packet count", ErrBadFault)
	case s.Probability < 0, s.Probability > 1, s.Probability != s.Probability:
		return fmt.Errorf("%w: probability %v outside [0,1]", ErrBadFault, s.Probability)
	}
	return nil
}

// exprs returns the match as nftables expressions, for the receiver's
// input chain.
func (m Match) exprs() []expr.Any {
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(harness.LinkName)},
	}
	if m.AnyProtocol {
		return e
	}
	e = append(e,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	)
	if mask := m.mask(); mask != 0 {
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{byte(mask)}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(m.Flags)}},
		)
	}
	for _, p := range []struct {
		off  uint32
		port uint16
	}{{0, m.SrcPort}, {2, m.DstPort}} {
		if p.port != 0 {
			e = append(e,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: p.off, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, p.port)},
			)
		}
	}
	return e
}

// exprs returns the selection as expressions after the match: a counter of
// matching packets (numgen inc) compared with the chosen ones. A seeded
// probability needs a set of the chosen packet numbers, which add creates
// in the rule's table.
func (s Select) exprs(add func(*nftables.Set, []nftables.SetElement) error) ([]expr.Any, error) {
	const big = 1 << 31
	switch {
	case s.Nth > 0:
		return []expr.Any{
			&expr.Numgen{Register: 1, Type: unix.NFT_NG_INCREMENTAL, Modulus: big},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(s.Nth - 1))},
		}, nil
	case s.First > 0:
		// cmp compares bytes in order: make the number big-endian first.
		return []expr.Any{
			&expr.Numgen{Register: 1, Type: unix.NFT_NG_INCREMENTAL, Modulus: big},
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binary.BigEndian.AppendUint32(nil, uint32(s.First))},
		}, nil
	case s.Probability > 0:
		set := &nftables.Set{Anonymous: true, Constant: true, KeyType: nftables.TypeInteger}
		if err := add(set, s.chosen()); err != nil {
			return nil, err
		}
		return []expr.Any{
			&expr.Numgen{Register: 1, Type: unix.NFT_NG_INCREMENTAL, Modulus: period},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		}, nil
	}
	return nil, nil
}

// chosen draws the packet numbers a seeded probability selects. An empty
// draw holds one number numgen never produces, so the set is never empty.
func (s Select) chosen() []nftables.SetElement {
	r := rand.New(rand.NewPCG(s.Seed, 0x7463706c6162)) // "tcplab"
	var els []nftables.SetElement
	for i := range uint32(period) {
		if r.Float64() < s.Probability {
			els = append(els, nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(i)})
		}
	}
	if len(els) == 0 {
		els = append(els, nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(period)})
	}
	return els
}

// Chosen reports whether the seeded probability selects the i-th matching
// packet (from 0), as the kernel will decide it: for tests and reports.
func (s Select) Chosen(i int) bool {
	if s.Probability == 0 {
		return true
	}
	r := rand.New(rand.NewPCG(s.Seed, 0x7463706c6162))
	var hit bool
	for range i%period + 1 {
		hit = r.Float64() < s.Probability
	}
	return hit
}

// ifname pads an interface name as nftables compares it (IFNAMSIZ bytes).
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// Matches reports whether a packet travelling in dir matches, as the
// kernel rule decides it: for reports that replay a capture against the
// faults that were active.
func (m Match) Matches(p Packet, dir Direction) bool {
	if m.Dir != Both && m.Dir != dir {
		return false
	}
	if m.AnyProtocol {
		return true
	}
	if p.Proto != unix.IPPROTO_TCP || p.Flags&m.mask() != m.Flags {
		return false
	}
	return (m.SrcPort == 0 || p.Src.Port() == m.SrcPort) && (m.DstPort == 0 || p.Dst.Port() == m.DstPort)
}

// Selects reports whether the selection takes the i-th matching packet
// (from 0), as the kernel's counter decides it.
func (s Select) Selects(i int) bool {
	switch {
	case s.Nth > 0:
		return i == s.Nth-1
	case s.First > 0:
		return i < s.First
	}
	return s.Chosen(i)
}
