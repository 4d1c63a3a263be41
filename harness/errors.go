package harness

import "errors"

var (
	// ErrNotRoot means the process lacks the privileges the lab needs
	// (CAP_NET_ADMIN and CAP_SYS_ADMIN, in practice root).
	ErrNotRoot = errors.New("tcplab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")
	// ErrNotSupported means the running kernel lacks a feature. It is
	// always wrapped with the feature's name.
	ErrNotSupported = errors.New("not supported by this kernel")
	// ErrGlobalSysctl means a sysctl is global to the machine, not per
	// network namespace, so the lab refuses to write it.
	ErrGlobalSysctl = errors.New("sysctl is global, not per network namespace")
	// ErrUnknownSysctl means a sysctl is not one the lab knows to be per
	// network namespace.
	ErrUnknownSysctl = errors.New("sysctl unknown to tcplab")
	// ErrClosed is returned when a closed resource is used.
	ErrClosed = errors.New("use of closed resource")
	// ErrLostEvents means the kernel produced transitions the recorder did
	// not receive: every timeline is then suspect.
	ErrLostEvents = errors.New("recorder lost events")
	// ErrNoSlot means every address slot is taken by running processes.
	ErrNoSlot = errors.New("no free address slot")
)
