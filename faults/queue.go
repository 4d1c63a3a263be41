package faults

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/tcplab/tcplab/harness"
)

// Action is a queue callback's decision for one packet.
type Action struct {
	kind  actionKind
	delay time.Duration
}

type actionKind int

const (
	accept actionKind = iota
	discard
	keep
	later
)

// The decisions a callback can take. After(d) delays the packet by d.
var (
	Accept  = Action{kind: accept}  // let it through now
	Discard = Action{kind: discard} // drop it
	Keep    = Action{kind: keep}    // hold it until Release or Undo
)

// After lets the packet through d after the queue received it.
func After(d time.Duration) Action { return Action{kind: later, delay: d} }

// DefaultLimit bounds the packets a queue holds or delays at once.
const DefaultLimit = 1024

// Intercept sends the packets Match chooses, in the receiver's namespace,
// to Decide in this process. Decide runs on the queue's reader: it must
// return at once (delays are scheduled, not slept). At most Limit packets
// are held or delayed at once; the queue drops further ones and counts
// them as Overflow. Equivalent to, in the receiver's namespace:
//
//	nft add rule inet tcplab-faults input iifname eth0 tcp flags & MASK == FLAGS counter queue num N
//
// (through the xtables NFQUEUE target, which kernels without
// CONFIG_NFT_QUEUE still have), with a Go program reading queue N.
type Intercept struct {
	Match
	Decide func(Packet) Action // nil: Keep every packet
	Limit  int                 // 0: DefaultLimit
}

// Hold holds the packets Match chooses (every TCP packet of a direction
// by default) until Release, which lets them through in their order.
type Hold struct {
	Match
	Limit int // 0: DefaultLimit
}

// Apply starts holding.
func (h Hold) Apply(p *harness.Pair) (Active, error) { return asActive(h.Queue(p)) }

// Queue starts holding and returns the queue, for Release.
func (h Hold) Queue(p *harness.Pair) (*Queued, error) {
	return Intercept{Match: h.Match, Limit: h.Limit}.Queue(p)
}

// Apply starts intercepting.
func (i Intercept) Apply(p *harness.Pair) (Active, error) { return asActive(i.Queue(p)) }

// asActive keeps a failed Queue's nil from becoming a non-nil Active.
func asActive(q *Queued, err error) (Active, error) {
	if err != nil {
		return nil, err
	}
	return q, nil
}

// Queue starts intercepting and returns the queue.
func (i Intercept) Queue(p *harness.Pair) (*Queued, error) {
	if err := i.validate(); err != nil {
		return nil, err
	}
	if i.Dir == Both {
		return nil, fmt.Errorf("%w: a queue serves one direction; apply one per direction", ErrBadFault)
	}
	if i.Limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", ErrBadFault, i.Limit)
	}
	host, err := receiverUp(p, i.Dir)
	if err != nil {
		return nil, err
	}
	if err := HaveQueue(); err != nil {
		return nil, err
	}
	q := &Queued{decide: i.Decide, limit: i.Limit, host: host}
	if q.decide == nil {
		q.decide = func(Packet) Action { return Keep }
	}
	if q.limit == 0 {
		q.limit = DefaultLimit
	}
	q.num = uint16(queueNums.Add(1))
	if err := q.open(); err != nil {
		return nil, err
	}
	q.rule, err = installRule(ruleSpec{
		host: host, backend: QueueBackend, match: i.Match, action: queueTarget(q.num),
		what: fmt.Sprintf("queue %d %v (queue)", q.num, i.Match),
	})
	if err != nil {
		q.close()
		return nil, err
	}
	return q, nil
}

var queueNums atomic.Uint32

// queueTarget is the xtables NFQUEUE target, revision 3, reached through
// nftables' compat layer: struct xt_NFQ_info_v3 { u16 queuenum;
// u16 queues_total; u16 flags; } in host byte order, padded to 8 bytes.
// No bypass flag: with no reader the packet is dropped, not let through.
func queueTarget(num uint16) []expr.Any {
	info := make([]byte, 8)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	u := xt.Unknown(info)
	return []expr.Any{&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &u}}
}

// QueueStats counts what a queue did.
type QueueStats struct {
	Queued   uint64 // packets received
	Accepted uint64 // let through at once
	Dropped  uint64 // discarded by the callback
	Delayed  uint64 // let through after a delay
	Released uint64 // held, then released
	Overflow uint64 // dropped because Limit packets were already waiting
	Waiting  int    // held or delayed right now
}

// Queued is an applied Intercept or Hold.
type Queued struct {
	host    *harness.Host
	num     uint16
	rule    *Rule
	nf      *nfqueue.Nfqueue
	cancel  context.CancelFunc
	unstamp func() // receive timestamps no longer wanted
	decide  func(Packet) Action
	limit   int

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every new packet
	held    []Packet
	later   *releaser // delayed packets
	stats   QueueStats
	lastID  uint32
	done    bool
	delayed atomic.Uint64 // released by the releaser

	failMu  sync.Mutex
	failure error // the first failure, guarded by failMu
}

func (q *Queued) String() string   { return q.rule.String() }
func (q *Queued) Backend() Backend { return QueueBackend }

// Packets returns how many packets reached the queue.
func (q *Queued) Packets() (uint64, error) {
	q.mu.Lock()
	n := q.stats.Queued
	q.mu.Unlock()
	q.failMu.Lock()
	defer q.failMu.Unlock()
	return n, q.failure
}

// Lateness returns the q-quantile (0 to 1) of how late delayed packets
// were let through: the time of the verdict less the packet's arrival in
// the kernel less its delay, over the last 4,096 delayed packets, and how
// many packets that covers (0 when none was delayed yet). Packets flushed
// early by Undo do not count.
func (q *Queued) Lateness(quantile float64) (time.Duration, int) {
	return q.later.late.quantile(quantile)
}

// Stats returns the queue's counters.
func (q *Queued) Stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.stats
	s.Waiting = len(q.held) + q.later.pending()
	s.Delayed = q.delayed.Load()
	return s
}

// Held returns the packets held now, in arrival order.
func (q *Queued) Held() []Packet {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.held)
}

// Release lets every held packet through in arrival order and returns
// how many it released. Packets arriving later are decided as before.
func (q *Queued) Release() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	held := q.held
	q.held = nil
	return len(held), q.verdictAllLocked(held)
}

// ReleaseReversed lets every held packet through, the last to arrive
// first: the simplest reordering.
func (q *Queued) ReleaseReversed() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	held := q.held
	q.held = nil
	slices.Reverse(held)
	return len(held), q.verdictAllLocked(held)
}

// ReleaseIn lets the held packets through in the given order of their
// indexes in Held: a permutation of all of them, so a reorder is exact.
func (q *Queued) ReleaseIn(order []int) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(order) != len(q.held) {
		return 0, fmt.Errorf("%w: order of %d packets for %d held", ErrBadFault, len(order), len(q.held))
	}
	seen := make([]bool, len(order))
	out := make([]Packet, len(order))
	for i, k := range order {
		if k < 0 || k >= len(order) || seen[k] {
			return 0, fmt.Errorf("%w: %v is not a permutation", ErrBadFault, order)
		}
		seen[k] = true
		out[i] = q.held[k]
	}
	q.held = nil
	return len(out), q.verdictAllLocked(out)
}

func (q *Queued) verdictAllLocked(ps []Packet) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, q.nf.SetVerdict(p.id, nfqueue.NfAccept))
		q.stats.Released++
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// Arrived returns a channel closed at the next packet's arrival, so a
// spec can wait for a packet to be held without polling too often.
func (q *Queued) Arrived() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.changed
}
