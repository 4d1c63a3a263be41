// Package rootns takes a snapshot of the root network namespace's
// configuration (links, qdiscs, addresses, routes, rules, the nftables ruleset and
// every readable net.* sysctl) as text, so a run can prove it changed
// nothing there: equal snapshots before and after, byte for byte.
//
// It only reads. Counters and other values the kernel changes by itself
// (link statistics, nf_conntrack_count, ...) are left out, so two snapshots
// of an untouched machine are equal.
package rootns
