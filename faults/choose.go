package faults

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tcplab/tcplab/harness"
)

// Delay delays every packet travelling in Dir by Delay, give or take a
// uniform Jitter. It runs on netem where the kernel has it and on the
// packet queue where it does not (Backend forces one); the active fault's
// Backend says which ran. Equivalent to `tc qdisc add dev eth0 root netem
// delay D J` in the sender's namespace.
type Delay struct {
	Dir           Direction
	Delay, Jitter time.Duration
	Seed          uint64 // the jitter's random draws
	Backend       Backend
}

// Apply installs the delay.
func (d Delay) Apply(p *harness.Pair) (Active, error) {
	if d.Delay < 0 || d.Jitter < 0 || d.Jitter > d.Delay {
		return nil, fmt.Errorf("%w: delay %v with jitter %v", ErrBadFault, d.Delay, d.Jitter)
	}
	switch d.Backend.choose(QueueBackend) {
	case NetemBackend:
		return Netem{Dir: d.Dir, Delay: d.Delay, Jitter: d.Jitter, Seed: d.Seed}.Apply(p)
	case QueueBackend:
		return eachWay(d.Dir, func(dir Direction) (Active, error) {
			r := rand.New(rand.NewPCG(d.Seed, uint64(dir)))
			return Intercept{Match: Match{Dir: dir, AnyProtocol: true}, Decide: func(Packet) Action {
				j := time.Duration(0)
				if d.Jitter > 0 {
					j = time.Duration(r.Int64N(int64(2*d.Jitter)+1)) - d.Jitter
				}
				return After(d.Delay + j)
			}}.Apply(p)
		})
	}
	return nil, fmt.Errorf("%w: delay on backend %q", ErrBadFault, d.Backend)
}

// Loss drops each packet travelling in Dir with Probability, drawn from a
// generator seeded with Seed. It runs on netem where the kernel has it and
// on the packet queue where it does not; FilterBackend runs it in
// nftables (Drop with a seeded Select). Equivalent to `tc qdisc add dev
// eth0 root netem loss P` in the sender's namespace.
type Loss struct {
	Dir         Direction
	Probability float64
	Seed        uint64
	Backend     Backend
}

// Apply installs the loss.
func (l Loss) Apply(p *harness.Pair) (Active, error) {
	if !(l.Probability >= 0 && l.Probability <= 1) {
		return nil, fmt.Errorf("%w: loss %v outside [0,1]", ErrBadFault, l.Probability)
	}
	switch l.Backend.choose(QueueBackend) {
	case NetemBackend:
		return Netem{Dir: l.Dir, Loss: l.Probability, Seed: l.Seed}.Apply(p)
	case FilterBackend:
		return Drop{Match: Match{Dir: l.Dir, AnyProtocol: true}, Select: Select{Probability: l.Probability, Seed: l.Seed}}.Apply(p)
	case QueueBackend:
		return eachWay(l.Dir, func(dir Direction) (Active, error) {
			r := rand.New(rand.NewPCG(l.Seed, uint64(dir)))
			return Intercept{Match: Match{Dir: dir, AnyProtocol: true}, Decide: func(Packet) Action {
				if r.Float64() < l.Probability {
					return Discard
				}
				return Accept
			}}.Apply(p)
		})
	}
	return nil, fmt.Errorf("%w: loss on backend %q", ErrBadFault, l.Backend)
}

// choose resolves AutoBackend: netem if the kernel has it, else fallback.
func (b Backend) choose(fallback Backend) Backend {
	if b != AutoBackend {
		return b
	}
	if HaveNetem() == nil {
		return NetemBackend
	}
	return fallback
}
