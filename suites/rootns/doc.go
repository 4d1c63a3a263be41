// Package rootns checks, after every other suite has run, that the root
// network namespace is byte-identical to the snapshot `tcplab rootns` took
// before them: links, qdiscs, addresses, routes, rules, the nftables
// ruleset and the net.* sysctls. `make test` takes the snapshot, runs the
// suites, then this one with TCPLAB_ROOTNS_BEFORE naming the file.
package rootns
