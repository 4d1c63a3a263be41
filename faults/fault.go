package faults

import (
	"errors"
	"fmt"

	"github.com/tcplab/tcplab/harness"
)

// Backend names the kernel machinery a fault runs on.
type Backend string

// The backends. AutoBackend lets a fault choose the best one the kernel has.
const (
	AutoBackend   Backend = ""
	NetemBackend  Backend = "netem"
	FilterBackend Backend = "filter"
	QueueBackend  Backend = "queue"
)

// Fault is a value that can be applied to a Pair.
type Fault interface {
	Apply(p *harness.Pair) (Active, error)
}

// Active is an applied fault.
type Active interface {
	// String describes the fault as it runs, backend included.
	String() string
	// Backend is the machinery that runs it.
	Backend() Backend
	// Packets is how many packets the fault acted on so far.
	Packets() (uint64, error)
	// Undo removes the fault; a second Undo, or one after the lab is
	// gone, returns nil.
	Undo() error
}

// receiverUp returns the host receiving packets travelling in dir, after
// checking its lab link still exists.
func receiverUp(p *harness.Pair, dir Direction) (*harness.Host, error) {
	host, err := dir.receiver(p)
	if err != nil {
		return nil, err
	}
	return host, linkUp(host)
}

// linkUp fails with ErrLinkGone when the host's namespace or link is gone.
func linkUp(h *harness.Host) error {
	if h.NS.FD() < 0 {
		return fmt.Errorf("%s: %w", h.Name, ErrLinkGone)
	}
	if _, err := h.Link(); err != nil {
		return fmt.Errorf("%w: %w", ErrLinkGone, err)
	}
	return nil
}

// multi is several actives undone together: a partition is a drop in each
// direction.
type multi struct {
	what  string
	parts []Active
}

func (m *multi) String() string   { return m.what }
func (m *multi) Backend() Backend { return m.parts[0].Backend() }

func (m *multi) Packets() (uint64, error) {
	var n uint64
	for _, a := range m.parts {
		k, err := a.Packets()
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

func (m *multi) Undo() error {
	var errs []error
	for _, a := range m.parts {
		errs = append(errs, a.Undo())
	}
	return errors.Join(errs...)
}
