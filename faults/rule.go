package faults

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/tcplab/tcplab/harness"
)

// TableName is the nftables table every rule-based fault lives in, one per
// lab namespace (inet family, so one rule serves IPv4 and IPv6).
const TableName = harness.Prefix + "faults"

var ruleIDs atomic.Uint64

// Rule is an nftables rule applied by a fault: its counter tells how many
// packets it hit.
type Rule struct {
	what    string
	backend Backend
	nc      *nsConn
	table   *nftables.Table
	chain   *nftables.Chain
	id      []byte
	undone  bool
}

func (r *Rule) String() string { return r.what }

// Backend is FilterBackend, or QueueBackend for a rule feeding a queue.
func (r *Rule) Backend() Backend { return r.backend }

// ruleSpec is what installRule needs: where, what and a description.
type ruleSpec struct {
	host    *harness.Host
	what    string
	backend Backend
	match   Match
	sel     Select
	action  []expr.Any // after the counter: a verdict, a reject, a queue
}

// installRule adds the rule to the input chain of the host's lab table,
// creating table and chain on first use. Nothing is installed if it fails.
func installRule(s ruleSpec) (*Rule, error) {
	if err := HaveNFTables(); err != nil {
		return nil, err
	}
	nc, err := nftConn(s.host.NS)
	if err != nil {
		return nil, err
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	conn := nc.conn
	r := &Rule{
		what:    s.what,
		backend: s.backend,
		nc:      nc,
		id:      fmt.Appendf(nil, "%s%d", harness.Prefix, ruleIDs.Add(1)),
	}
	r.table = conn.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
	policy := nftables.ChainPolicyAccept
	r.chain = conn.AddChain(&nftables.Chain{
		Name: "input", Table: r.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy,
	})
	sel, err := s.sel.exprs(func(set *nftables.Set, els []nftables.SetElement) error {
		set.Table = r.table
		return conn.AddSet(set, els)
	})
	if err != nil {
		_ = conn.Flush() // drop the half-built batch
		return nil, fmt.Errorf("install %s: %w", r.what, err)
	}
	exprs := append(s.match.exprs(), sel...)
	exprs = append(exprs, &expr.Counter{})
	exprs = append(exprs, s.action...)
	conn.AddRule(&nftables.Rule{Table: r.table, Chain: r.chain, Exprs: exprs, UserData: r.id})
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("install %s: %w", r.what, err)
	}
	return r, nil
}

var errRuleGone = errors.New("rule not found")

// rule finds the installed rule; call with r.nc.mu held.
func (r *Rule) rule() (*nftables.Rule, error) {
	rules, err := r.nc.conn.GetRules(r.table, r.chain)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	for _, x := range rules {
		if bytes.Equal(x.UserData, r.id) {
			return x, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", r.what, errRuleGone)
}

// Packets returns how many packets the rule has hit so far.
func (r *Rule) Packets() (uint64, error) {
	r.nc.mu.Lock()
	defer r.nc.mu.Unlock()
	if r.undone {
		return 0, fmt.Errorf("%s: %w", r.what, harness.ErrClosed)
	}
	x, err := r.rule()
	if err != nil {
		return 0, err
	}
	for _, e := range x.Exprs {
		if c, ok := e.(*expr.Counter); ok {
			return c.Packets, nil
		}
	}
	return 0, fmt.Errorf("%s: no counter", r.what)
}

// Undo removes the rule. A second Undo, or one after the namespace is
// gone, returns nil: there is nothing left to remove. The rule's anonymous
// set, if any, goes with it.
func (r *Rule) Undo() error {
	r.nc.mu.Lock()
	defer r.nc.mu.Unlock()
	if r.undone {
		return nil
	}
	r.undone = true
	x, err := r.rule()
	if err != nil {
		return nil // the rule, or the namespace with it, is gone already
	}
	if err := r.nc.conn.DelRule(x); err != nil {
		return fmt.Errorf("remove %s: %w", r.what, err)
	}
	if err := r.nc.conn.Flush(); err != nil {
		return fmt.Errorf("remove %s: %w", r.what, err)
	}
	return nil
}
