// Package faults is the lab's fault model: a fault is a value applied to
// one direction of a Pair (or Both) and removed again. Apply returns the
// Active fault, whose Undo removes it and whose Packets reads how many
// packets it acted on. Several faults may be active at once, and every one
// lives in the lab's namespaces, never in the root namespace.
//
// Three backends:
//
//   - netem (Netem, and Delay or Loss where the kernel has it): the tc
//     qdisc on the sender's egress: delay, jitter, loss (random or
//     Gilbert-Elliott), duplicate, reorder, corrupt, rate.
//   - filter (Drop, Reject, Count, Blackhole, Partition): nftables rules,
//     deterministic and selective: by TCP flags, ports, the n-th packet,
//     the first k, a seeded probability. Each rule has a kernel counter.
//   - queue (Intercept, Hold, and Delay or Loss without netem): NFQUEUE to
//     a Go callback deciding each packet: accept, discard, delay, keep
//     until Release (in order, or in a chosen order). Bounded by a limit.
//
// Filter and queue rules live in the receiving host's namespace (its
// input hook): a drop in the sender's output hook would return EPERM to
// TCP, and the segment would never count as sent nor be retransmitted.
// netem works on egress, so it sits on the sender's link; its losses are
// reported to TCP as sent.
//
// Capability probes (HaveNFTables, HaveQueue, HaveNetem) run once, are
// cached, and return an error wrapping harness.ErrNotSupported that names
// the missing kernel feature. Impossible parameters are refused with
// ErrBadFault, a link that is gone with ErrLinkGone, and nothing is
// applied either way.
package faults
