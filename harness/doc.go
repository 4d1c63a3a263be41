// Package harness is the lab: network namespaces joined by veth pairs, the
// per-namespace sysctls, real kernel sockets driven step by step, and the
// Recorder that turns the kernel's TCP state transitions into one timeline per
// connection.
//
// Namespaces. The current network namespace is a property of an OS thread,
// not of a goroutine or a process. Namespace.Do is the only code in tcplab
// that switches a thread's namespace: it runs the function on a fresh,
// locked goroutine and retires the thread if it cannot switch back.
// Everything else is created inside a namespace once (netlink handles,
// sock_diag connections, sockets) and then used from any goroutine: a socket
// stays in the namespace it was born in.
//
// Nothing here changes the root namespace. Lab namespaces are unnamed: they
// die with their last file descriptor, so a killed run leaves no namespace,
// link or socket behind. The only named things are address-slot lock files
// under /run/tcplab (see Slot), which `tcplab gc` removes when no live process
// holds them.
//
// Errors are returned as the kernel gave them where they are results
// (ECONNRESET, EADDRINUSE, ETIMEDOUT from an Endpoint step are results to
// assert); failures of the harness itself are wrapped with context and, where
// callers need to test them, with one of the exported sentinels.
package harness
