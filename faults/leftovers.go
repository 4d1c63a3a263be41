package faults

import (
	"fmt"

	"github.com/tcplab/tcplab/harness"
)

// Leftovers lists what faults left in a pair's namespaces: rules in the
// lab table, netem qdiscs, bound packet queues. After every fault's Undo
// it must be empty.
func Leftovers(p *harness.Pair) ([]string, error) {
	var out []string
	for _, h := range p.Hosts() {
		if h.NS.FD() < 0 {
			continue
		}
		rules, err := rulesIn(h)
		if err != nil {
			return nil, err
		}
		out = append(out, rules...)
		link, err := h.Link()
		if err != nil {
			return nil, err
		}
		qs, err := h.NS.Handle().QdiscList(link)
		if err != nil {
			return nil, fmt.Errorf("%s: list qdiscs: %w", h.Name, err)
		}
		for _, q := range qs {
			if q.Type() == "netem" {
				out = append(out, fmt.Sprintf("%s: netem qdisc on %s", h.Name, harness.LinkName))
			}
		}
		bound, err := boundQueues(h.NS)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		for num := range bound {
			out = append(out, fmt.Sprintf("%s: packet queue %d bound", h.Name, num))
		}
	}
	return out, nil
}

// rulesIn lists the rules in a host's namespace, through the connection
// its faults used: a namespace no rule was ever installed in has none.
func rulesIn(h *harness.Host) ([]string, error) {
	connsMu.Lock()
	nc := conns[h.NS]
	connsMu.Unlock()
	if nc == nil {
		return nil, nil
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	conn := nc.conn
	var out []string
	tables, err := conn.ListTables()
	if err != nil {
		return nil, fmt.Errorf("%s: list tables: %w", h.Name, err)
	}
	for _, t := range tables {
		chains, _ := conn.ListChainsOfTableFamily(t.Family)
		for _, c := range chains {
			if c.Table.Name != t.Name {
				continue
			}
			rules, _ := conn.GetRules(t, c)
			for range rules {
				out = append(out, fmt.Sprintf("%s: rule in %s/%s", h.Name, t.Name, c.Name))
			}
		}
	}
	return out, nil
}
