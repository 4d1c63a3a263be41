package faults

import (
	"fmt"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/tcplab/tcplab/harness"
)

var (
	nftOnce sync.Once
	nftErr  error
)

// HaveNFTables reports whether the packet-filter backend works here: an
// inet table, a filter chain on the input hook and a rule with payload,
// bitwise, meta, counter and drop expressions, in a scratch namespace. Only
// nil and an error wrapping harness.ErrNotSupported are answers about the
// kernel; anything else (no privileges) is a failure. Run once, cached.
func HaveNFTables() error {
	nftOnce.Do(func() { nftErr = probeNFTables() })
	return nftErr
}

func probeNFTables() error {
	ns, err := harness.NewNamespace()
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	conn, err := nftables.New(nftables.WithNetNSFd(ns.FD()), nftables.AsLasting())
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer func() { _ = conn.CloseLasting() }()
	t := conn.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
	policy := nftables.ChainPolicyAccept
	c := conn.AddChain(&nftables.Chain{Name: "probe", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	conn.AddRule(&nftables.Rule{Table: t, Chain: c, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x12}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x12}},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables (CONFIG_NF_TABLES with payload, bitwise, meta, counter): %w: %w", harness.ErrNotSupported, err)
	}
	return nil
}
