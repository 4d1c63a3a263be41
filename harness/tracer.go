package harness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/tcplab/tcplab/harness/tcpstate"
)

// Layout of one ringbuf record written by the program.
const (
	recTS        = 0  // u64 bpf_ktime_get_ns (CLOCK_MONOTONIC)
	recCookie    = 8  // u64 socket cookie (SO_COOKIE; inherited by a timewait socket)
	recNetCookie = 16 // u64 net->net_cookie (SO_NETNS_COOKIE)
	recOld       = 24 // u32 old state
	recNew       = 28 // u32 new state
	recProto     = 32 // u16 sk_protocol
	recPeerFin   = 34 // u8 SOCK_DONE of sk_flags (0 or 1), or peerFinUnknown
	recRaw       = 40 // the first rawLen bytes of struct sock_common
)

// peerFinUnknown marks a record from a kernel whose BTF did not say
// where SOCK_DONE is (set by tcp_fin() once the peer's FIN arrived).
const peerFinUnknown = 0xff

// Layout of the per-CPU slot: the hit the primary copy handles or handled
// last (see role), and this CPU's counters: one map lookup for both, and
// no cache line that two CPUs write.
const (
	slotCookie = 0  // u64
	slotOld    = 8  // u32
	slotNew    = 12 // u32
	slotSeen   = 16 // u64 events in watched namespaces
	slotFailed = 24 // u64 events dropped because the ring was full
	slotSize   = 32
)

// The reader is never woken by the program: asking the ring how much is
// unread, to wake the reader only past a backlog (BPF_RB_AVAIL_DATA reads
// the reader's position, a cache line the reader keeps writing), took 270
// of the program's 720 ns a run under churn (BPF_STATS_RUN_TIME), and a
// wakeup per event costs far more. It reads every readerTick instead: the
// most an event waits in the ring before it reaches the recorder. The ring
// holds about 130,000 events, so no rate this machine can produce fills it
// in a tick; if one ever did, the lost events are counted, not hidden.
const (
	bpfRBNoWakeup = 1 // include/uapi/linux/bpf.h
	readerTick    = 2 * time.Millisecond
)

// RingSize is the tracer's ring buffer: 16 MiB holds about 130,000 events,
// a fraction of a second of the fastest churn the machine can produce.
const RingSize = 16 << 20

// event is one decoded transition of a full socket.
type event struct {
	ts        int64 // ns, CLOCK_MONOTONIC
	cookie    uint64
	netCookie uint64
	from, to  tcpstate.State
	proto     uint16
	peerFin   uint8 // SOCK_DONE at the transition (0 or 1), or peerFinUnknown
	local     netip.AddrPort
	remote    netip.AddrPort
}

// tracer owns the tp_btf/inet_sock_set_state program, its maps and the
// goroutine that drains the ring.
type tracer struct {
	layout  *sockLayout
	watched *ebpf.Map // hash: net cookie -> u8, the namespaces to record
	perCPU  *ebpf.Map // per-CPU array: last hit and counters (slot*)
	ring    *ebpf.Map
	progs   [2]*ebpf.Program // primary, rescue
	links   [2]link.Link
	reader  *ringbuf.Reader

	received atomic.Uint64
	readErr  atomic.Pointer[error]
	done     chan struct{}
	closeMu  sync.Once
}

// newTracer loads and attaches the program; deliver is called from one
// goroutine for every event, in ring order.
func newTracer(deliver func(*event), ringSize int) (t *tracer, err error) {
	layout, err := loadSockLayout()
	if err != nil {
		return nil, err
	}
	t = &tracer{layout: layout, done: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	if t.watched, err = ebpf.NewMap(&ebpf.MapSpec{Name: "tcplab_watch", Type: ebpf.Hash, KeySize: 8, ValueSize: 1, MaxEntries: 1 << 14}); err != nil {
		return t, fmt.Errorf("create watch map: %w", err)
	}
	if t.ring, err = ebpf.NewMap(&ebpf.MapSpec{Name: "tcplab_ring", Type: ebpf.RingBuf, MaxEntries: uint32(ringSize)}); err != nil {
		return t, fmt.Errorf("create ring buffer (Linux 5.8+): %w", err)
	}
	if t.perCPU, err = ebpf.NewMap(&ebpf.MapSpec{Name: "tcplab_cpu", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: slotSize, MaxEntries: 1}); err != nil {
		return t, fmt.Errorf("create per-cpu map: %w", err)
	}
	fds := mapFDs{watch: t.watched.FD(), ring: t.ring.FD(), perCPU: t.perCPU.FD()}
	for i, role := range []role{primary, rescue} {
		t.progs[i], err = ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         "tcplab_state" + role.suffix(),
			Type:         ebpf.Tracing,
			AttachType:   ebpf.AttachTraceRawTp,
			AttachTo:     "inet_sock_set_state",
			License:      "GPL",
			Instructions: program(layout, role, fds),
		})
		if err != nil {
			return t, fmt.Errorf("load tp_btf/inet_sock_set_state program: %w", err)
		}
		if t.links[i], err = link.AttachTracing(link.TracingOptions{Program: t.progs[i], AttachType: ebpf.AttachTraceRawTp}); err != nil {
			return t, fmt.Errorf("attach tp_btf/inet_sock_set_state: %w", err)
		}
	}
	if t.reader, err = ringbuf.NewReader(t.ring); err != nil {
		return t, fmt.Errorf("open ring buffer: %w", err)
	}
	go t.drain(deliver)
	return t, nil
}

// role is which of the two copies of the program an instance is.
//
// The kernel never runs a tracing program inside itself on one CPU: if the
// program is interrupted (a softirq at the end of an interrupt) and the
// tracepoint fires again there, that call is skipped and only counted in
// the program's recursion_misses. Under connection churn that loses a few
// transitions in a million, silently for the seen/failed counters. So two
// copies are attached, the primary first (tracepoint probes run in attach
// order). The primary's first act is to write the hit it is handling
// (socket cookie, old and new state) into a per-CPU slot; the rescue copy records
// every hit that is not the one in the slot, that is, the ones the primary
// skipped. This tracepoint nests at most once (process context, then
// softirq; never in hardirq), so one copy is always free. An interrupt
// between the rescue copy's start and its read of the slot can make it
// record a hit the primary also recorded: the recorder drops such
// duplicates, which are unmistakable (a transition identical to the one
// before it, or to the one before that).
//
// One loss remains that this does not cover and no counter shows: under
// full churn, about once in fifteen million transitions, both copies miss
// two consecutive transitions of one socket (mostly an orphan's FIN_WAIT1
// -> FIN_WAIT2 -> CLOSE, in a softirq) while ftrace's probe on the same
// tracepoint records them, and neither copy counts a recursion miss. The recorder catches it by continuity (a gap in
// a timeline) and by looking open timelines up at Sync (see checkOpen).
type role int

const (
	primary role = iota
	rescue
)

func (r role) suffix() string {
	if r == rescue {
		return "_r"
	}
	return ""
}

type mapFDs struct{ watch, ring, perCPU int }

// program builds, instruction by instruction, what would be this C:
//
//	SEC("tp_btf/inet_sock_set_state")
//	int tcplab_state(u64 *ctx) {
//		struct slot *s = bpf_map_lookup_elem(&per_cpu, &zero);
//		if (!s) return 0;
//		struct hit me = {bpf_get_socket_cookie(ctx[0]), ctx[1], ctx[2]};
//		// primary: s->hit = me;
//		// rescue:  if (s->hit == me) return 0;
//		struct sock *sk = (void *)ctx[0];
//		u64 nc = sk->__sk_common.skc_net.net->net_cookie;
//		if (!bpf_map_lookup_elem(&watched, &nc)) return 0;
//		__sync_fetch_and_add(&s->seen, 1); // atomic: the other copy may interrupt
//		struct rec *r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);
//		if (!r) { __sync_fetch_and_add(&s->failed, 1); return 0; }
//		r->ts = bpf_ktime_get_ns(); r->cookie = bpf_get_socket_cookie(sk);
//		r->netcookie = nc; r->old = ctx[1]; r->new = ctx[2];
//		r->proto = sk->sk_protocol; r->peer_fin = sk->sk_flags >> SOCK_DONE & 1;
//		bpf_probe_read_kernel(r->raw, RAW, sk);
//		bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
//		return 0;
//	}
func program(l *sockLayout, ro role, fds mapFDs) asm.Instructions {
	recSize := int32(recRaw + l.rawLen)
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // r6 = ctx
	}
	insns = append(insns, lookupZero(fds.perCPU)...)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, "exit"), // never: an array's key 0 exists
		asm.StoreMem(asm.RFP, -24, asm.R0, asm.DWord),
		asm.Mov.Reg(asm.R7, asm.R0), // r7 = slot
		// The socket cookie, not the pointer: a freed socket's address is
		// reused within microseconds by a socket that may make the same
		// transition, but no two sockets ever share a cookie.
		asm.LoadMem(asm.R1, asm.R6, 0, asm.DWord),
		asm.FnGetSocketCookie.Call(),
		asm.Mov.Reg(asm.R1, asm.R0),                // cookie
		asm.LoadMem(asm.R2, asm.R6, 8, asm.DWord),  // old
		asm.LoadMem(asm.R3, asm.R6, 16, asm.DWord), // new
		asm.Mov.Reg(asm.R0, asm.R7),
	)
	if ro == primary {
		insns = append(insns,
			asm.StoreMem(asm.R0, slotCookie, asm.R1, asm.DWord),
			asm.StoreMem(asm.R0, slotOld, asm.R2, asm.Word),
			asm.StoreMem(asm.R0, slotNew, asm.R3, asm.Word),
		)
	} else {
		insns = append(insns,
			asm.LoadMem(asm.R4, asm.R0, slotCookie, asm.DWord),
			asm.JNE.Reg(asm.R4, asm.R1, "body"),
			asm.LoadMem(asm.R4, asm.R0, slotOld, asm.Word),
			asm.JNE.Reg(asm.R4, asm.R2, "body"),
			asm.LoadMem(asm.R4, asm.R0, slotNew, asm.Word),
			asm.JEq.Reg(asm.R4, asm.R3, "exit"), // the primary has this one
		)
	}
	insns = append(insns,
		asm.LoadMem(asm.R7, asm.R6, 0, asm.DWord).WithSymbol("body"), // r7 = sk
		asm.LoadMem(asm.R1, asm.R7, int16(l.skcNet), asm.DWord),      // r1 = sk->skc_net.net
		asm.LoadMem(asm.R8, asm.R1, int16(l.netCookie), asm.DWord),   // r8 = net_cookie
		asm.StoreMem(asm.RFP, -8, asm.R8, asm.DWord),
		asm.LoadMapPtr(asm.R1, fds.watch),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
	)
	insns = append(insns,
		asm.LoadMem(asm.R9, asm.RFP, -24, asm.DWord), // r9 = slot
		asm.Mov.Imm(asm.R1, 1),
		asm.Add.Imm(asm.R9, slotSeen),
		asm.StoreXAdd(asm.R9, asm.R1, asm.DWord), // seen++

		asm.LoadMapPtr(asm.R1, fds.ring),
		asm.Mov.Imm(asm.R2, recSize),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.JNE.Imm(asm.R0, 0, "fill"),
		asm.Mov.Imm(asm.R1, 1),
		asm.Add.Imm(asm.R9, slotFailed-slotSeen),
		asm.StoreXAdd(asm.R9, asm.R1, asm.DWord), // failed++
		asm.Ja.Label("exit"),

		asm.Mov.Reg(asm.R9, asm.R0).WithSymbol("fill"), // r9 = record
		asm.StoreMem(asm.R9, recNetCookie, asm.R8, asm.DWord),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.R9, recTS, asm.R0, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.R9, recCookie, asm.R0, asm.DWord),
		asm.LoadMem(asm.R1, asm.R6, 8, asm.DWord),
		asm.StoreMem(asm.R9, recOld, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, 16, asm.DWord),
		asm.StoreMem(asm.R9, recNew, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R7, int16(l.protocol), asm.Half),
		asm.StoreMem(asm.R9, recProto, asm.R1, asm.Half),
	)
	if l.flags != 0 {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R7, int16(l.flags), asm.DWord),
			asm.RSh.Imm(asm.R1, int32(l.done)),
			asm.And.Imm(asm.R1, 1),
		)
	} else {
		insns = append(insns, asm.Mov.Imm(asm.R1, peerFinUnknown))
	}
	insns = append(insns,
		asm.StoreMem(asm.R9, recPeerFin, asm.R1, asm.Byte),
		asm.Mov.Reg(asm.R1, asm.R9),
		asm.Add.Imm(asm.R1, recRaw),
		asm.Mov.Imm(asm.R2, int32(l.rawLen)),
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.FnProbeReadKernel.Call(),
		asm.Mov.Reg(asm.R1, asm.R9),
		asm.Mov.Imm(asm.R2, bpfRBNoWakeup), // the reader reads every readerTick
		asm.FnRingbufSubmit.Call(),
	)
	insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"))
	return append(insns, asm.Return())
}

// lookupZero is r0 = bpf_map_lookup_elem(map, &(u32){0}), key on the stack.
func lookupZero(mapFD int) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -16, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
	}
}

// misses returns the kernel's recursion_misses of the two programs: calls
// skipped because that program was already running on the CPU.
func (t *tracer) misses() (primary, rescue uint64, err error) {
	var m [2]uint64
	for i, p := range t.progs {
		st, err := p.Stats()
		if err != nil {
			return 0, 0, fmt.Errorf("read program stats: %w", err)
		}
		m[i] = st.RecursionMisses
	}
	return m[0], m[1], nil
}

// watch starts or stops recording a namespace.
func (t *tracer) watch(netCookie uint64, on bool) error {
	if on {
		return t.watched.Put(netCookie, uint8(1))
	}
	if err := t.watched.Delete(netCookie); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return nil
}

// counts returns the kernel's seen and failed counters, summed over CPUs.
func (t *tracer) counts() (seen, failed uint64, err error) {
	var perCPU [][slotSize]byte
	if err := t.perCPU.Lookup(uint32(0), &perCPU); err != nil {
		return 0, 0, fmt.Errorf("read tracer counters: %w", err)
	}
	for _, v := range perCPU {
		seen += binary.NativeEndian.Uint64(v[slotSeen:])
		failed += binary.NativeEndian.Uint64(v[slotFailed:])
	}
	return seen, failed, nil
}

func (t *tracer) drain(deliver func(*event)) {
	defer close(t.done)
	var rec ringbuf.Record
	var ev event
	for {
		t.reader.SetDeadline(time.Now().Add(readerTick))
		if err := t.reader.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if !errors.Is(err, ringbuf.ErrClosed) {
				err = fmt.Errorf("read ring buffer: %w", err)
				t.readErr.Store(&err)
			}
			return
		}
		if t.decode(rec.RawSample, &ev) {
			deliver(&ev)
		}
		t.received.Add(1)
	}
}

func (t *tracer) decode(b []byte, ev *event) bool {
	l := t.layout
	if len(b) < int(recRaw+l.rawLen) {
		return false
	}
	ne := binary.NativeEndian
	ev.ts = int64(ne.Uint64(b[recTS:]))
	ev.cookie = ne.Uint64(b[recCookie:])
	ev.netCookie = ne.Uint64(b[recNetCookie:])
	ev.from = tcpstate.State(ne.Uint32(b[recOld:]))
	ev.to = tcpstate.State(ne.Uint32(b[recNew:]))
	ev.proto = ne.Uint16(b[recProto:])
	ev.peerFin = b[recPeerFin]
	raw := b[recRaw:]
	lport := ne.Uint16(raw[l.num:])
	rport := binary.BigEndian.Uint16(raw[l.dport:])
	switch ne.Uint16(raw[l.family:]) {
	case uint16(IPv4):
		ev.local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[l.rcvSaddr:l.rcvSaddr+4])), lport)
		ev.remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[l.daddr:l.daddr+4])), rport)
	case uint16(IPv6):
		ev.local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(raw[l.v6RcvSaddr:l.v6RcvSaddr+16])).Unmap(), lport)
		ev.remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(raw[l.v6Daddr:l.v6Daddr+16])).Unmap(), rport)
	default:
		ev.local, ev.remote = netip.AddrPort{}, netip.AddrPort{}
	}
	return true
}

// Close detaches the programs and stops the reader.
func (t *tracer) Close() error {
	var errs []error
	t.closeMu.Do(func() {
		for _, l := range t.links {
			if l != nil {
				errs = append(errs, l.Close())
			}
		}
		if t.reader != nil {
			errs = append(errs, t.reader.Close())
			<-t.done
		}
		for _, p := range t.progs {
			if p != nil {
				errs = append(errs, p.Close())
			}
		}
		for _, m := range []*ebpf.Map{t.ring, t.perCPU, t.watched} {
			if m != nil {
				errs = append(errs, m.Close())
			}
		}
	})
	return errors.Join(errs...)
}
