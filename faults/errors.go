package faults

import "errors"

// ErrBadFault means a fault's parameters are impossible; nothing was
// applied.
var ErrBadFault = errors.New("invalid fault")
