// Package netem proves the lab under netem, the kernel's network emulator
// (every spec is labelled netem; kernels without sch_netem skip them with
// that reason, and the kernel-matrix legs run them on Debian's kernels): a
// delay shows in the round trip, a seeded loss rate stays within its
// statistical bound, reordering and duplication leave handshake and close
// with the textbook states, and TIME_WAIT still lasts 60 s under loss.
package netem
