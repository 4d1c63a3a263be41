package faults

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/tcplab/tcplab/harness"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table every filter fault lives in, one per lab
// namespace (inet family, so one rule serves IPv4 and IPv6).
const TableName = harness.Prefix + "faults"

var ruleIDs atomic.Uint64

// Drop drops the TCP packets travelling in Dir whose flags, under Mask,
// equal Flags, counting them.
// Equivalent to, in the receiver's namespace:
//
//	nft add rule inet tcplab-faults input iifname eth0 tcp flags & MASK == FLAGS counter drop
type Drop struct {
	Dir   Direction
	Flags TCPFlags
	Mask  TCPFlags // zero: Flags, that is "at least these flags"
}

// Count counts, without touching them, the TCP packets travelling in Dir
// whose flags under Mask equal Flags: "exactly three FINs arrived".
// Equivalent to: `nft add rule inet tcplab-faults input iifname eth0 tcp flags & MASK == FLAGS counter`.
type Count struct {
	Dir   Direction
	Flags TCPFlags
	Mask  TCPFlags
}

// Apply installs the drop. Nothing is installed if it fails.
func (d Drop) Apply(p *harness.Pair) (*Active, error) {
	return applyRule(p, d.Dir, d.Flags, d.Mask, true, "drop")
}

// Apply installs the count. Nothing is installed if it fails.
func (c Count) Apply(p *harness.Pair) (*Active, error) {
	return applyRule(p, c.Dir, c.Flags, c.Mask, false, "count")
}

// Active is an applied fault: read its counter, then Undo it.
type Active struct {
	what  string
	conn  *nftables.Conn
	table *nftables.Table
	chain *nftables.Chain
	id    []byte
}

func (a *Active) String() string { return a.what }

func applyRule(p *harness.Pair, dir Direction, flags, mask TCPFlags, drop bool, verb string) (*Active, error) {
	if mask == 0 {
		mask = flags
	}
	if flags&^mask != 0 {
		return nil, fmt.Errorf("%w: flags %v outside mask %v can never match", ErrBadFault, flags, mask)
	}
	host, err := dir.receiver(p)
	if err != nil {
		return nil, err
	}
	if err := HaveNFTables(); err != nil {
		return nil, err
	}
	conn, err := nftables.New(nftables.WithNetNSFd(host.NS.FD()), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("open nftables in %s: %w", host.NS, err)
	}
	a := &Active{
		what: fmt.Sprintf("%s %v tcp flags & %v == %v", verb, dir, mask, flags),
		conn: conn,
		id:   fmt.Appendf(nil, "%s%d", harness.Prefix, ruleIDs.Add(1)),
	}
	a.table = conn.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
	policy := nftables.ChainPolicyAccept
	a.chain = conn.AddChain(&nftables.Chain{
		Name: "input", Table: a.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy,
	})
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(harness.LinkName)},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{byte(mask)}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(flags)}},
		&expr.Counter{},
	}
	if drop {
		exprs = append(exprs, &expr.Verdict{Kind: expr.VerdictDrop})
	}
	conn.AddRule(&nftables.Rule{Table: a.table, Chain: a.chain, Exprs: exprs, UserData: a.id})
	if err := conn.Flush(); err != nil {
		_ = conn.CloseLasting()
		return nil, fmt.Errorf("install %s: %w", a.what, err)
	}
	return a, nil
}

// ifname pads an interface name as nftables compares it (IFNAMSIZ bytes).
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

var errRuleGone = errors.New("rule not found")

func (a *Active) rule() (*nftables.Rule, error) {
	rules, err := a.conn.GetRules(a.table, a.chain)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	for _, r := range rules {
		if bytes.Equal(r.UserData, a.id) {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", a.what, errRuleGone)
}

// Packets returns how many packets the fault has hit so far.
func (a *Active) Packets() (uint64, error) {
	r, err := a.rule()
	if err != nil {
		return 0, err
	}
	for _, e := range r.Exprs {
		if c, ok := e.(*expr.Counter); ok {
			return c.Packets, nil
		}
	}
	return 0, fmt.Errorf("%s: no counter", a.what)
}

// Undo removes the fault. A second Undo, or one after the namespace is
// gone, returns nil: there is nothing left to remove.
func (a *Active) Undo() error {
	if a.conn == nil {
		return nil
	}
	defer func() {
		_ = a.conn.CloseLasting()
		a.conn = nil
	}()
	r, err := a.rule()
	if errors.Is(err, errRuleGone) {
		return nil
	}
	if err != nil {
		return nil // the namespace went first: the rule went with it
	}
	if err := a.conn.DelRule(r); err != nil {
		return fmt.Errorf("remove %s: %w", a.what, err)
	}
	if err := a.conn.Flush(); err != nil {
		return fmt.Errorf("remove %s: %w", a.what, err)
	}
	return nil
}
