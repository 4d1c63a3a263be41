package faults

import (
	"fmt"

	"github.com/google/nftables/expr"
	"github.com/tcplab/tcplab/harness"
	"golang.org/x/sys/unix"
)

// Drop drops the packets Match and Select choose, in the receiver's
// namespace, counting them. Equivalent to, there:
//
//	nft add rule inet tcplab-faults input iifname eth0 tcp flags & MASK == FLAGS [numgen inc ...] counter drop
type Drop struct {
	Match
	Select
}

// Apply installs the drop. Nothing is installed if it fails.
func (d Drop) Apply(p *harness.Pair) (Active, error) {
	return applyFilter(p, d.Match, d.Select, "drop", &expr.Verdict{Kind: expr.VerdictDrop})
}

// Count counts, without touching them, the packets Match and Select
// choose: "exactly three FINs arrived".
// Equivalent to: `nft add rule inet tcplab-faults input iifname eth0 tcp flags & MASK == FLAGS counter`.
type Count struct {
	Match
	Select
}

// Apply installs the count. Nothing is installed if it fails.
func (c Count) Apply(p *harness.Pair) (Active, error) {
	return applyFilter(p, c.Match, c.Select, "count")
}

// RejectWith is how a rejected packet is answered.
type RejectWith int

// The answers to a rejected packet.
const (
	WithTCPReset    RejectWith = iota // a TCP RST to the sender
	WithPortUnreach                   // ICMP (or ICMPv6) port unreachable
	WithHostUnreach                   // ICMP (or ICMPv6) host unreachable
	WithAdminProhib                   // ICMP administratively prohibited
)

func (w RejectWith) String() string {
	switch w {
	case WithTCPReset:
		return "tcp reset"
	case WithPortUnreach:
		return "icmpx port-unreachable"
	case WithHostUnreach:
		return "icmpx host-unreachable"
	case WithAdminProhib:
		return "icmpx admin-prohibited"
	}
	return fmt.Sprintf("RejectWith(%d)", int(w))
}

// Reject drops the chosen packets and answers the sender, by default with
// a TCP RST. Equivalent to:
//
//	nft add rule inet tcplab-faults input iifname eth0 tcp flags & MASK == FLAGS counter reject with tcp reset
type Reject struct {
	Match
	Select
	With RejectWith
}

// Apply installs the reject. Nothing is installed if it fails.
func (r Reject) Apply(p *harness.Pair) (Active, error) {
	var e *expr.Reject
	switch r.With {
	case WithTCPReset:
		if r.AnyProtocol {
			return nil, fmt.Errorf("%w: a TCP reset answers TCP packets only", ErrBadFault)
		}
		e = &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}
	case WithPortUnreach:
		e = &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}
	case WithHostUnreach:
		e = &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_HOST_UNREACH}
	case WithAdminProhib:
		e = &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}
	default:
		return nil, fmt.Errorf("%w: %v", ErrBadFault, r.With)
	}
	return applyFilter(p, r.Match, r.Select, "reject with "+r.With.String(), e)
}

// Blackhole drops every packet, of any protocol, travelling in Dir.
// Equivalent to: `nft add rule inet tcplab-faults input iifname eth0 counter drop`.
type Blackhole struct {
	Dir Direction
}

// Apply installs the blackhole.
func (b Blackhole) Apply(p *harness.Pair) (Active, error) {
	return Drop{Match: Match{Dir: b.Dir, AnyProtocol: true}}.Apply(p)
}

// Partition cuts the link both ways: a Blackhole in each direction.
// Equivalent to the Blackhole rule in both namespaces.
type Partition struct{}

// Apply installs both blackholes, or neither.
func (Partition) Apply(p *harness.Pair) (Active, error) {
	return Blackhole{Dir: Both}.Apply(p)
}

func applyFilter(p *harness.Pair, m Match, s Select, verb string, action ...expr.Any) (Active, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return eachWay(m.Dir, func(d Direction) (Active, error) {
		m.Dir = d
		host, err := receiverUp(p, d)
		if err != nil {
			return nil, err
		}
		return installRule(ruleSpec{
			host: host, backend: FilterBackend, match: m, sel: s, action: action,
			what: fmt.Sprintf("%s %v%v (filter)", verb, m, s),
		})
	})
}
