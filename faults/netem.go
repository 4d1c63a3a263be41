package faults

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tcplab/tcplab/harness"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Netem is the network emulator qdisc on the sender's side of a direction
// (its egress, where netem works): every packet in Dir, of any protocol.
// Probabilities are in [0,1]; correlations too. Equivalent to, in the
// sender's namespace:
//
//	tc qdisc add dev eth0 root netem limit L delay D J C loss P C \
//	    duplicate P C reorder P C corrupt P C rate R seed S
//
// or, with GilbertElliott set, `loss gemodel p r 1-h 1-k` in place of
// loss.
type Netem struct {
	Dir Direction

	Delay, Jitter    time.Duration
	DelayCorrelation float64

	Loss, LossCorrelation float64
	GilbertElliott        *GilbertElliott

	Duplicate, DuplicateCorrelation float64
	// Reorder sends this share of packets at once, the others after
	// Delay (which must be set): netem's reordering.
	Reorder, ReorderCorrelation float64
	Corrupt, CorruptCorrelation float64

	Rate  uint64 // bytes per second; 0: unlimited
	Limit uint32 // packets in the qdisc; 0: netem's 1000
	// Seed makes netem's random choices repeatable (kernels from 6.3;
	// older ones ignore it, and the active fault says so).
	Seed uint64
}

// GilbertElliott is netem's two-state loss model: P is the chance of
// moving from the good to the bad state, R of moving back, and
// LossInBad and LossInGood the loss in each state (1-h and 1-k in the
// model's usual letters).
type GilbertElliott struct {
	P, R, LossInBad, LossInGood float64
}

// The netem attributes vishvananda/netlink does not name.
const (
	tcaNetemLoss      = 5
	tcaNetemLatency64 = 10
	tcaNetemJitter64  = 11
	tcaNetemPrngSeed  = 14
	netemLossGE       = 2
)

func (n Netem) validate() error {
	if err := n.Dir.validate(); err != nil {
		return err
	}
	if n.Delay < 0 || n.Jitter < 0 {
		return fmt.Errorf("%w: negative delay", ErrBadFault)
	}
	probs := map[string]float64{
		"delay correlation": n.DelayCorrelation, "loss": n.Loss, "loss correlation": n.LossCorrelation,
		"duplicate": n.Duplicate, "duplicate correlation": n.DuplicateCorrelation,
		"reorder": n.Reorder, "reorder correlation": n.ReorderCorrelation,
		"corrupt": n.Corrupt, "corrupt correlation": n.CorruptCorrelation,
	}
	if ge := n.GilbertElliott; ge != nil {
		if n.Loss != 0 {
			return fmt.Errorf("%w: Loss and GilbertElliott both set", ErrBadFault)
		}
		probs["ge p"], probs["ge r"], probs["ge loss in bad"], probs["ge loss in good"] = ge.P, ge.R, ge.LossInBad, ge.LossInGood
	}
	for name, p := range probs {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("%w: %s %v outside [0,1]", ErrBadFault, name, p)
		}
	}
	if n.Reorder > 0 && n.Delay == 0 {
		return fmt.Errorf("%w: reorder needs a delay for the packets it does not send at once", ErrBadFault)
	}
	return nil
}

func (n Netem) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "netem %v", n.Dir)
	if n.Delay > 0 {
		fmt.Fprintf(&b, " delay %v", n.Delay)
		if n.Jitter > 0 {
			fmt.Fprintf(&b, " %v", n.Jitter)
		}
	}
	if n.Loss > 0 {
		fmt.Fprintf(&b, " loss %g", n.Loss)
	}
	if ge := n.GilbertElliott; ge != nil {
		fmt.Fprintf(&b, " loss gemodel %g %g %g %g", ge.P, ge.R, ge.LossInBad, ge.LossInGood)
	}
	for _, x := range []struct {
		name string
		p    float64
	}{{"duplicate", n.Duplicate}, {"reorder", n.Reorder}, {"corrupt", n.Corrupt}} {
		if x.p > 0 {
			fmt.Fprintf(&b, " %s %g", x.name, x.p)
		}
	}
	if n.Rate > 0 {
		fmt.Fprintf(&b, " rate %dB/s", n.Rate)
	}
	if n.Seed != 0 {
		fmt.Fprintf(&b, " seed %d", n.Seed)
	}
	return b.String()
}

// Apply installs the qdisc (one per direction for Both).
func (n Netem) Apply(p *harness.Pair) (Active, error) {
	if err := n.validate(); err != nil {
		return nil, err
	}
	return eachWay(n.Dir, func(d Direction) (Active, error) {
		n.Dir = d
		host, err := d.sender(p)
		if err != nil {
			return nil, err
		}
		if err := linkUp(host); err != nil {
			return nil, err
		}
		if err := HaveNetem(); err != nil {
			return nil, err
		}
		return addNetem(host, n)
	})
}

// prob scales a probability to netem's 32-bit fixed point.
func prob(p float64) uint32 { return uint32(math.Round(p * math.MaxUint32)) }

// options builds netem's TCA_OPTIONS: struct tc_netem_qopt, then nested
// attributes.
func (n Netem) options() []byte {
	limit := n.Limit
	if limit == 0 {
		limit = 1000
	}
	qopt := make([]byte, 24) // latency, limit, loss, gap, duplicate, jitter
	binary.NativeEndian.PutUint32(qopt[4:], limit)
	binary.NativeEndian.PutUint32(qopt[8:], prob(n.Loss))
	binary.NativeEndian.PutUint32(qopt[16:], prob(n.Duplicate))
	opts := nl.NewRtAttr(nl.TCA_OPTIONS, qopt)
	u32s := func(v ...float64) []byte {
		b := make([]byte, 0, 4*len(v))
		for _, x := range v {
			b = binary.NativeEndian.AppendUint32(b, prob(x))
		}
		return b
	}
	opts.AddRtAttr(tcaNetemLatency64, binary.NativeEndian.AppendUint64(nil, uint64(n.Delay)))
	opts.AddRtAttr(tcaNetemJitter64, binary.NativeEndian.AppendUint64(nil, uint64(n.Jitter)))
	opts.AddRtAttr(nl.TCA_NETEM_CORR, u32s(n.DelayCorrelation, n.LossCorrelation, n.DuplicateCorrelation))
	if n.Reorder > 0 {
		opts.AddRtAttr(nl.TCA_NETEM_REORDER, u32s(n.Reorder, n.ReorderCorrelation))
	}
	if n.Corrupt > 0 {
		opts.AddRtAttr(nl.TCA_NETEM_CORRUPT, u32s(n.Corrupt, n.CorruptCorrelation))
	}
	if n.Rate > 0 {
		rate := make([]byte, 16) // struct tc_netem_rate; the rate itself in RATE64
		binary.NativeEndian.PutUint32(rate, uint32(min(n.Rate, math.MaxUint32)))
		opts.AddRtAttr(nl.TCA_NETEM_RATE, rate)
		if n.Rate > math.MaxUint32 {
			opts.AddRtAttr(nl.TCA_NETEM_RATE64, binary.NativeEndian.AppendUint64(nil, n.Rate))
		}
	}
	if ge := n.GilbertElliott; ge != nil {
		loss := opts.AddRtAttr(tcaNetemLoss, nil)
		// struct tc_netem_gemodel { p, r, h, k1 }: h and k1 are the
		// chances of NOT losing in the bad and good states.
		loss.AddRtAttr(netemLossGE, u32s(ge.P, ge.R, 1-ge.LossInBad, 1-ge.LossInGood))
	}
	if n.Seed != 0 {
		opts.AddRtAttr(tcaNetemPrngSeed, binary.NativeEndian.AppendUint64(nil, n.Seed))
	}
	return opts.Serialize()
}

// Qdisc is an applied Netem.
type Qdisc struct {
	what  string
	host  *harness.Host
	index int
	gone  bool
}

func (q *Qdisc) String() string   { return q.what }
func (q *Qdisc) Backend() Backend { return NetemBackend }

// netemHandle is the qdisc's handle, 1:0, as `tc qdisc show` prints it.
const netemHandle = 0x10000

func addNetem(h *harness.Host, n Netem) (*Qdisc, error) {
	link, err := h.Link()
	if err != nil {
		return nil, err
	}
	q := &Qdisc{what: n.String() + " (netem)", host: h, index: link.Attrs().Index}
	err = q.add(n)
	if errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("%w: %s: a netem qdisc is already on %v's link", ErrBadFault, q.what, n.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", q.what, err)
	}
	return q, nil
}

// add sends the qdisc to the kernel from inside the host's namespace.
// vishvananda/netlink's Netem has no Gilbert-Elliott model, 64-bit delays
// or seed, so the request is built here with its nl package.
func (q *Qdisc) add(n Netem) error {
	return q.host.NS.Do(func() error {
		req := nl.NewNetlinkRequest(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
		req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(q.index), Handle: netemHandle, Parent: netlink.HANDLE_ROOT})
		req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("netem")))
		req.AddRawData(n.options())
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
}

func (q *Qdisc) find() (netlink.Qdisc, error) {
	qs, err := q.host.NS.Handle().QdiscList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: q.index}})
	if err != nil {
		return nil, fmt.Errorf("list qdiscs: %w", err)
	}
	for _, x := range qs {
		if x.Type() == "netem" && x.Attrs().Parent == netlink.HANDLE_ROOT {
			return x, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", q.what, errRuleGone)
}

// Packets returns how many packets reached the qdisc: those it sent and
// those it dropped.
func (q *Qdisc) Packets() (uint64, error) {
	sent, dropped, err := q.Stats()
	return sent + dropped, err
}

// Stats returns the packets the qdisc sent and dropped, as `tc -s qdisc`
// shows them.
func (q *Qdisc) Stats() (sent, dropped uint64, err error) {
	if q.gone {
		return 0, 0, fmt.Errorf("%s: %w", q.what, harness.ErrClosed)
	}
	x, err := q.find()
	if err != nil {
		return 0, 0, err
	}
	st := x.Attrs().Statistics
	if st == nil || st.Basic == nil {
		return 0, 0, fmt.Errorf("%s: no statistics", q.what)
	}
	if st.Queue != nil {
		dropped = uint64(st.Queue.Drops)
	}
	return uint64(st.Basic.Packets), dropped, nil
}

// Undo deletes the qdisc. Equivalent to: `tc qdisc del dev eth0 root`.
func (q *Qdisc) Undo() error {
	if q.gone {
		return nil
	}
	q.gone = true
	if q.host.NS.FD() < 0 {
		return nil
	}
	x, err := q.find()
	if err != nil {
		return nil // gone with its link
	}
	if err := q.host.NS.Handle().QdiscDel(x); err != nil {
		return fmt.Errorf("remove %s: %w", q.what, err)
	}
	return nil
}
