package harnesstest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/tcplab/tcplab/harness"
)

var (
	recOnce sync.Once
	rec     *harness.Recorder
	recErr  error
)

// Recorder returns the process's recorder, starting it on first use. Ginkgo
// runs each parallel process separately, so each has its own; its program
// is detached when the process exits.
func Recorder() *harness.Recorder {
	GinkgoHelper()
	recOnce.Do(func() { rec, recErr = harness.NewRecorder(harness.RecorderOptions{}) })
	Expect(recErr).NotTo(HaveOccurred(), "start the recorder")
	return rec
}

// Strict reports whether TCPLAB_STRICT=1: a missing kernel feature then
// fails the spec instead of skipping it.
func Strict() bool { return os.Getenv("TCPLAB_STRICT") == "1" }

// SkipUnless skips the spec with err's text when a probe returned an error
// (or fails it in strict mode).
func SkipUnless(err error) {
	GinkgoHelper()
	if err == nil {
		return
	}
	if Strict() {
		Fail("TCPLAB_STRICT=1 but: " + err.Error())
	}
	Skip(err.Error())
}

// RequireTracing skips a spec that needs transient states (SYN_SENT,
// FIN_WAIT1, CLOSING, LAST_ACK) when the recorder can only poll.
func RequireTracing() {
	GinkgoHelper()
	if r := Recorder(); r.Mode() != harness.ModeTrace {
		SkipUnless(errors.New("needs the tracepoint for transient states: " + r.Reason()))
	}
}

// Lab is a Pair watched by the process's recorder.
type Lab struct {
	*harness.Pair
	Rec    *harness.Recorder
	Family harness.Family
}

// NewLab builds a pair, watches it and registers its cleanup.
func NewLab(f harness.Family, opts ...harness.PairOptions) *Lab {
	GinkgoHelper()
	var o harness.PairOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	r := Recorder()
	p, err := harness.NewPair(o)
	Expect(err).NotTo(HaveOccurred(), "build the pair")
	DeferCleanup(p.Close)
	Expect(r.WatchPair(p)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			reportKernelView(r, p)
		}
		// Lost events fail the spec that was running: its timelines
		// may be incomplete.
		Expect(r.Sync(ctx, p.Client.NS, p.Server.NS)).To(Succeed(), "the recorder lost events")
		expectNoFaultsLeft(p)
		Expect(errors.Join(r.Unwatch(p.Client.NS), r.Unwatch(p.Server.NS))).To(Succeed())
	}, NodeTimeout(10*time.Second))
	return &Lab{Pair: p, Rec: r, Family: f}
}

// Listen opens a listener on the server; it is closed at cleanup.
func (l *Lab) Listen() *harness.Endpoint {
	GinkgoHelper()
	ln, err := l.Server.Listen(l.Family, 0, 128)
	Expect(err).NotTo(HaveOccurred(), "listen")
	DeferCleanup(ln.Close)
	return ln
}

// ServerAddr returns the listener's address as the client dials it.
func (l *Lab) ServerAddr(ln *harness.Endpoint) netip.AddrPort {
	GinkgoHelper()
	a, err := ln.LocalAddr()
	Expect(err).NotTo(HaveOccurred())
	return a
}

// Connect opens a listener and one connection to it, returning the client
// socket, the accepted server socket and the listener, all closed at
// cleanup (a second close is harmless).
func (l *Lab) Connect(ctx context.Context) (client, server, listener *harness.Endpoint) {
	GinkgoHelper()
	listener = l.Listen()
	client, err := l.Client.Dial(ctx, l.ServerAddr(listener))
	Expect(err).NotTo(HaveOccurred(), "connect")
	DeferCleanup(client.Close)
	server, err = listener.Accept(ctx)
	Expect(err).NotTo(HaveOccurred(), "accept")
	DeferCleanup(server.Close)
	return client, server, listener
}

// Sync syncs the recorder for this lab: it fails only on events this
// lab lost (or on a dropped event, which cannot be placed).
func (l *Lab) Sync(ctx context.Context) error {
	return l.Rec.Sync(ctx, l.Client.NS, l.Server.NS)
}

// Timeline syncs the recorder and returns the endpoint's timeline.
func (l *Lab) Timeline(e *harness.Endpoint) harness.Timeline {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	Expect(l.Sync(ctx)).To(Succeed(), "recorder sync")
	return l.Rec.Timeline(e)
}

// TimelineFunc is Timeline for Eventually and Consistently.
func (l *Lab) TimelineFunc(e *harness.Endpoint) func() harness.Timeline {
	return func() harness.Timeline { return l.Timeline(e) }
}

// RequestTimeline returns the timeline of the server's request socket (a
// SYN_RECV waiting for the final ACK), once Recorder.FollowRequests made
// the recorder follow them; an empty timeline while there is none. Its
// method value suits Eventually.
func (l *Lab) RequestTimeline() harness.Timeline {
	for _, tl := range l.Rec.Timelines(l.Server.NS) {
		if tl.Request {
			return tl
		}
	}
	return harness.Timeline{}
}

// Families are the table entries every spec runs in, each with the given
// decorators (a SpecTimeout, Labels).
func Families(decorators ...any) []TableEntry {
	v4 := append(append([]any{}, decorators...), harness.IPv4)
	v6 := append(append([]any{Label("ipv6")}, decorators...), harness.IPv6)
	return []TableEntry{Entry("over IPv4", v4...), Entry("over IPv6", v6...)}
}

// reportKernelView adds to a failed spec's report what the kernel itself
// says: the recorder's counters and every socket sock_diag shows in the
// lab, so a timeline that disagrees with the kernel is plain to see.
func reportKernelView(r *harness.Recorder, p *harness.Pair) {
	st, err := r.Stats()
	AddReportEntry("recorder stats", fmt.Sprintf("%+v (err %v)", st, err))
	for _, h := range p.Hosts() {
		d, err := h.NS.NewDiag()
		if err != nil {
			continue
		}
		socks, err := d.Sockets(harness.AllStates)
		_ = d.Close()
		var b strings.Builder
		for _, s := range socks {
			fmt.Fprintf(&b, "%v %v -> %v cookie %d timer %d\n", s.State, s.Local, s.Remote, s.Cookie, s.Timer)
		}
		AddReportEntry("sock_diag in "+h.Name, fmt.Sprintf("%s(err %v)", b.String(), err))
	}
}
