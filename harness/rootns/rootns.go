package rootns

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// volatile lists sysctls the kernel changes by itself.
var volatile = []string{
	"net/netfilter/nf_conntrack_count",
	"net/ipv4/route/gc_", // garbage-collector state
	"net/ipv6/route/gc_",
}

// Snapshot returns the root namespace's configuration as sorted text. It
// must run on a thread in the root namespace: any goroutine not inside a
// harness.Namespace.Do.
func Snapshot() ([]byte, error) {
	var b bytes.Buffer
	for _, part := range []func(*bytes.Buffer) error{links, addrs, routes, rules, nft, sysctls} {
		if err := part(&b); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

func links(b *bytes.Buffer) error {
	ls, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	var lines []string
	for _, l := range ls {
		a := l.Attrs()
		lines = append(lines, fmt.Sprintf("link %d %s type=%s mtu=%d flags=%v master=%d mac=%s",
			a.Index, a.Name, l.Type(), a.MTU, a.Flags, a.MasterIndex, a.HardwareAddr))
		qs, err := netlink.QdiscList(l)
		if err != nil {
			return fmt.Errorf("list qdiscs of %s: %w", a.Name, err)
		}
		for _, q := range qs {
			qa := q.Attrs()
			lines = append(lines, fmt.Sprintf("qdisc %s %s handle=%x parent=%x", a.Name, q.Type(), qa.Handle, qa.Parent))
		}
	}
	return writeSorted(b, lines)
}

func addrs(b *bytes.Buffer) error {
	as, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	var lines []string
	for _, a := range as {
		lines = append(lines, fmt.Sprintf("addr %d %s flags=%d scope=%d", a.LinkIndex, a.IPNet, a.Flags, a.Scope))
	}
	return writeSorted(b, lines)
}

func routes(b *bytes.Buffer) error {
	rs, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	var lines []string
	for _, r := range rs {
		lines = append(lines, fmt.Sprintf("route table=%d dst=%v gw=%v src=%v dev=%d proto=%d type=%d metric=%d",
			r.Table, r.Dst, r.Gw, r.Src, r.LinkIndex, r.Protocol, r.Type, r.Priority))
	}
	return writeSorted(b, lines)
}

func rules(b *bytes.Buffer) error {
	rs, err := netlink.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	var lines []string
	for _, r := range rs {
		lines = append(lines, fmt.Sprintf("rule %d %s", r.Family, r.String()))
	}
	return writeSorted(b, lines)
}

func nft(b *bytes.Buffer) error {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	defer func() { _ = c.CloseLasting() }()
	tables, err := c.ListTables()
	if err != nil {
		return fmt.Errorf("list nftables tables: %w", err)
	}
	var lines []string
	for _, t := range tables {
		lines = append(lines, fmt.Sprintf("nft table %d %s flags=%d", t.Family, t.Name, t.Flags))
		chains, err := c.ListChainsOfTableFamily(t.Family)
		if err != nil {
			return fmt.Errorf("list nftables chains: %w", err)
		}
		for _, ch := range chains {
			if ch.Table.Name != t.Name {
				continue
			}
			lines = append(lines, fmt.Sprintf("nft chain %d %s %s", t.Family, t.Name, ch.Name))
			rs, err := c.GetRules(t, ch)
			if err != nil {
				return fmt.Errorf("list nftables rules: %w", err)
			}
			for _, r := range rs {
				lines = append(lines, fmt.Sprintf("nft rule %d %s %s handle=%d exprs=%d", t.Family, t.Name, ch.Name, r.Handle, len(r.Exprs)))
			}
		}
	}
	return writeSorted(b, lines)
}

func sysctls(b *bytes.Buffer) error {
	var lines []string
	err := filepath.WalkDir("/proc/sys/net", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel := strings.TrimPrefix(p, "/proc/sys/")
		for _, v := range volatile {
			if strings.HasPrefix(rel, v) {
				return nil
			}
		}
		v, err := os.ReadFile(p)
		if err != nil {
			return nil // write-only or refused: not configuration we can see
		}
		lines = append(lines, fmt.Sprintf("sysctl %s = %s", rel, strings.TrimSpace(string(v))))
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk /proc/sys/net: %w", err)
	}
	return writeSorted(b, lines)
}

func writeSorted(b *bytes.Buffer, lines []string) error {
	slices.Sort(lines)
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return nil
}
