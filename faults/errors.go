package faults

import "errors"

var (
	// ErrBadFault means a fault's parameters are impossible; nothing was
	// applied.
	ErrBadFault = errors.New("invalid fault")
	// ErrLinkGone means the fault's link or namespace no longer exists;
	// nothing was applied.
	ErrLinkGone = errors.New("lab link is gone")
)
