package faults

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"github.com/tcplab/tcplab/harness"
)

// snapLen is how much of each packet the kernel copies to the queue: the
// largest IPv6 and TCP headers, no payload.
const snapLen = 40 + 60

// open binds the queue in the receiver's namespace and starts reading.
func (q *Queued) open() error {
	nf, err := nfqueue.Open(&nfqueue.Config{
		NetNS:        q.host.NS.FD(),
		NfQueue:      q.num,
		MaxPacketLen: snapLen,
		MaxQueueLen:  uint32(q.limit + 256), // the kernel's own bound, past ours
		Copymode:     nfqueue.NfQnlCopyPacket,
		WriteTimeout: time.Second,
	})
	if err != nil {
		return fmt.Errorf("open queue %d in %s: %w", q.num, q.host.NS, err)
	}
	// A packet whose message the socket buffer cannot take stays in the
	// kernel's queue with no verdict: size the buffer past the kernel's
	// own bound on the queue (a message is under 256 bytes), and keep
	// reading should it overflow anyway.
	if err := nf.Con.SetReadBuffer((q.limit + 256) * 512); err != nil {
		_ = nf.Close()
		return fmt.Errorf("queue %d: %w", q.num, err)
	}
	if err := nf.SetOption(netlink.NoENOBUFS, true); err != nil {
		_ = nf.Close()
		return fmt.Errorf("queue %d: %w", q.num, err)
	}
	unstamp, err := stampWanted(q.host)
	if err != nil {
		_ = nf.Close()
		return fmt.Errorf("queue %d: %w", q.num, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q.nf, q.cancel, q.unstamp = nf, cancel, unstamp
	q.later, err = newReleaser(func(id uint32) {
		q.delayed.Add(1) // first: the verdict's effects may be seen at once
		q.verdict(id, nfqueue.NfAccept)
	})
	if err != nil {
		cancel()
		_ = nf.Close()
		unstamp()
		return err
	}
	q.changed = make(chan struct{})
	err = nf.RegisterWithErrorFunc(ctx, q.handle, func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		var op *netlink.OpError
		if errors.As(err, &op) && (op.Timeout() || op.Temporary()) {
			return 0
		}
		q.fail(fmt.Errorf("queue %d: read: %w", q.num, err))
		return 1
	})
	if err != nil {
		q.close()
		return fmt.Errorf("bind queue %d in %s: %w", q.num, q.host.NS, err)
	}
	return nil
}

func (q *Queued) close() {
	q.later.stop() // first: its last verdicts need the socket
	q.cancel()
	_ = q.nf.Close()
	q.unstamp()
}

// handle decides one packet. It runs on the queue's reader and never
// blocks: delays go to the releaser.
func (q *Queued) handle(a nfqueue.Attribute) int {
	if a.PacketID == nil {
		return 0
	}
	var payload []byte
	if a.Payload != nil {
		payload = *a.Payload
	}
	p, perr := ParsePacket(payload)
	p.id, p.At = *a.PacketID, arrival(a.Timestamp, time.Now())
	q.mu.Lock()
	p.N = int(q.stats.Queued)
	q.stats.Queued++
	q.lastID = p.id
	close(q.changed)
	q.changed = make(chan struct{})
	done := q.done
	q.mu.Unlock()

	act := Accept
	if !done && perr == nil {
		act = q.decide(p)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.done {
		act = Accept // Undo is flushing: nothing may stay behind
	}
	if (act.kind == keep || act.kind == later) && len(q.held)+q.later.pending() >= q.limit {
		q.stats.Overflow++
		q.verdict(p.id, nfqueue.NfDrop)
		return 0
	}
	switch act.kind {
	case accept:
		q.stats.Accepted++
		q.verdict(p.id, nfqueue.NfAccept)
	case discard:
		q.stats.Dropped++
		q.verdict(p.id, nfqueue.NfDrop)
	case keep:
		q.held = append(q.held, p)
	case later:
		q.later.add(p.At.Add(act.delay), p.id)
	}
	return 0
}

// verdict sends a verdict. A failure is kept for Packets to report: a
// packet without a verdict stays in the kernel.
func (q *Queued) verdict(id uint32, v int) {
	if err := q.nf.SetVerdict(id, v); err != nil {
		q.fail(fmt.Errorf("queue %d: verdict for packet %d: %w", q.num, id, err))
	}
}

// fail keeps the first failure.
func (q *Queued) fail(err error) {
	q.failMu.Lock()
	defer q.failMu.Unlock()
	if q.failure == nil {
		q.failure = err
	}
}

// Undo removes the rule, then lets every packet still held or delayed
// through (in arrival order) and closes the queue. Packets the kernel
// queued just before the rule went are waited for (up to a second), so
// none is lost to the queue's closing. A second Undo returns nil.
func (q *Queued) Undo() error {
	q.mu.Lock()
	if q.done {
		q.mu.Unlock()
		return nil
	}
	q.mu.Unlock()
	err := q.rule.Undo()
	if last, perr := q.kernelLastID(); perr == nil {
		deadline := time.After(time.Second)
	wait:
		for {
			q.mu.Lock()
			seen, ch := q.lastID, q.changed
			q.mu.Unlock()
			if seen >= last {
				break
			}
			select {
			case <-ch:
			case <-deadline:
				break wait
			}
		}
	}
	q.mu.Lock()
	q.done = true
	q.later.flush()
	held := q.held
	q.held = nil
	rerr := q.verdictAllLocked(held)
	q.mu.Unlock()
	q.close()
	return errors.Join(err, rerr)
}

// kernelLastID reads the id the kernel gave the last packet it queued to
// this queue.
func (q *Queued) kernelLastID() (uint32, error) {
	bound, err := boundQueues(q.host.NS)
	if err != nil {
		return 0, err
	}
	id, ok := bound[q.num]
	if !ok {
		return 0, fmt.Errorf("queue %d not in nfnetlink_queue", q.num)
	}
	return id, nil
}

// boundQueues reads the namespace's bound packet queues, each with the id
// of the last packet the kernel queued to it, from
// /proc/net/netfilter/nfnetlink_queue (columns: queue, portid, waiting,
// copy mode, copy range, dropped, user dropped, last id, 1). A kernel
// without nfnetlink_queue has none.
func boundQueues(ns *harness.Namespace) (map[uint16]uint32, error) {
	var b []byte
	err := ns.Do(func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/netfilter/nfnetlink_queue")
		return err
	})
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[uint16]uint32{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		num, err1 := strconv.ParseUint(f[0], 10, 16)
		id, err2 := strconv.ParseUint(f[7], 10, 32)
		if err1 == nil && err2 == nil {
			out[uint16(num)] = uint32(id)
		}
	}
	return out, nil
}
