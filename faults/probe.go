package faults

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/tcplab/tcplab/harness"
	"golang.org/x/sys/unix"
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

var (
	queueOnce sync.Once
	queueErr  error
)

// HaveQueue reports whether the packet-queue backend works here: a queue
// bound by this process in a scratch namespace, fed by an nftables rule
// with the xtables NFQUEUE target (CONFIG_NETFILTER_NETLINK_QUEUE,
// CONFIG_NETFILTER_XT_TARGET_NFQUEUE, CONFIG_NFT_COMPAT). Run once, cached.
func HaveQueue() error {
	queueOnce.Do(func() { queueErr = probeQueue() })
	return queueErr
}

func probeQueue() error {
	if err := HaveNFTables(); err != nil {
		return err
	}
	ns, err := harness.NewNamespace()
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	q := &Queued{host: &harness.Host{Name: "probe", NS: ns}, limit: 1, num: 1,
		decide: func(Packet) Action { return Accept }}
	if err := q.open(); err != nil {
		return fmt.Errorf("packet queue (CONFIG_NETFILTER_NETLINK_QUEUE): %w: %w", harness.ErrNotSupported, err)
	}
	defer q.close()
	r, err := installRule(ruleSpec{host: q.host, what: "probe", match: Match{Dir: ClientToServer}, action: queueTarget(1)})
	if err != nil {
		return fmt.Errorf("nftables NFQUEUE target (CONFIG_NFT_COMPAT, CONFIG_NETFILTER_XT_TARGET_NFQUEUE): %w: %w", harness.ErrNotSupported, err)
	}
	return r.Undo()
}

var (
	netemOnce sync.Once
	netemErr  error
)

// HaveNetem reports whether the netem qdisc works here (CONFIG_NET_SCH_NETEM):
// a netem delay on the loopback of a scratch namespace. Run once, cached.
func HaveNetem() error {
	netemOnce.Do(func() { netemErr = probeNetem() })
	return netemErr
}

func probeNetem() error {
	ns, err := harness.NewNamespace()
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	lo, err := ns.Handle().LinkByName("lo")
	if err != nil {
		return fmt.Errorf("probe netem: %w", err)
	}
	q := &Qdisc{what: "probe", host: &harness.Host{Name: "probe", NS: ns}, index: lo.Attrs().Index}
	err = q.add(Netem{Delay: time.Millisecond})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("sch_netem not available (CONFIG_NET_SCH_NETEM): %w", harness.ErrNotSupported)
	}
	if err != nil {
		return fmt.Errorf("probe netem: %w", err)
	}
	return q.Undo()
}
