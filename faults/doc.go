// Package faults is the lab's fault model: a fault is a value applied to
// one direction of a Pair and removed again. Apply returns the active
// fault, whose Undo removes it and whose Packets reads how many packets it
// hit, from a counter in the kernel.
//
// The packet-filter backend (nftables, through github.com/google/nftables)
// is deterministic and selective: it matches TCP packets by their flags
// under a mask, in one direction, and drops or counts them. Rules live in
// the receiving host's namespace (its input hook), never in the root
// namespace: a drop in the sender's output hook would return EPERM to TCP,
// and the segment would never count as sent nor be retransmitted.
//
// Backends the kernel may lack have capability probes (HaveNFTables) that
// run once, are cached, and return an error wrapping
// harness.ErrNotSupported that names the missing feature. The netem and
// packet-queue backends are to come.
package faults
