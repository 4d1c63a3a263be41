// Package recorder checks the recorder itself against the kernel: its
// states agree with sock_diag snapshots taken during the same run, every
// event lands on the right connection while other pairs churn the same
// pattern, and without the tracepoint it falls back to polling and says so.
package recorder
