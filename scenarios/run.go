package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
)

// Options tunes Run.
type Options struct {
	// Recorder watches the lab; one per process, shared by parallel runs.
	Recorder *harness.Recorder
	// Progress receives countdowns during long waits (a 60 s TIME_WAIT);
	// nil keeps quiet.
	Progress io.Writer
	// PcapDir, if set, gets one pcap per run of the packets on the lab's
	// link.
	PcapDir string
}

// defaultTimeout bounds a step that waits (connect, accept, read,
// wait-state) when the file gives none.
const defaultTimeout = 10 * time.Second

// countdownAfter is the wait past which a step reports its countdown.
const countdownAfter = 10 * time.Second

// Run runs the scenario once per family of its lab and returns one result
// each. An error is returned only when the lab itself cannot be built;
// failed steps and expectations are in the results.
//
// The families run at once, each in its own lab: a 60 s TIME_WAIT costs
// 60 s, not 120. A run whose recorder lost events (harness.ErrLostEvents:
// its timelines cannot be trusted, whatever they say) is run once more in
// a fresh lab, and its result says why in Rerun.
func Run(ctx context.Context, s *Scenario, o Options) ([]*Result, error) {
	out := make([]*Result, len(s.Lab.Families))
	errs := make([]error, len(s.Lab.Families))
	var wg sync.WaitGroup
	for i, f := range s.Lab.Families {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = rerunOnLoss(ctx, func() (*Result, error) { return runFamily(ctx, s, f, o) })
		}()
	}
	wg.Wait()
	var done []*Result
	for _, r := range out {
		if r != nil {
			done = append(done, r)
		}
	}
	return done, errors.Join(errs...)
}

// rerunOnLoss runs once, and once more if the recorder lost events in the
// first run: the loss is the measurement's, not the kernel behaviour's
// the scenario is about.
func rerunOnLoss(ctx context.Context, once func() (*Result, error)) (*Result, error) {
	res, err := once()
	if err != nil || res == nil || res.lost == nil || ctx.Err() != nil {
		return res, err
	}
	first := res.lost
	res, err = once()
	if res != nil {
		res.Rerun = fmt.Sprintf("the first run's recorder lost events: %v", first)
	}
	return res, err
}

// run is one family's run: the lab, the sockets by name, the faults.
type run struct {
	s      *Scenario
	family harness.Family
	o      Options
	pair   *harness.Pair
	res    *Result
	start  time.Time

	sockets map[string]*harness.Endpoint
	order   []string          // socket names in creation order
	hostOf  map[string]string // socket name -> client or server
	current map[string]string // actor -> current socket
	namer   socketNames

	mu      sync.Mutex
	active  map[string]faults.Active
	packets map[string]uint64 // fault id -> packets when undone
	timers  []*time.Timer
	windows []window
	capture *capture
}

func runFamily(ctx context.Context, s *Scenario, f harness.Family, o Options) (*Result, error) {
	r := &run{s: s, family: f, o: o, start: time.Now(),
		sockets: map[string]*harness.Endpoint{}, hostOf: map[string]string{}, current: map[string]string{},
		active: map[string]faults.Active{}, packets: map[string]uint64{}}
	r.res = &Result{Scenario: s.Name, File: s.File, Family: f.String(), Started: r.start}
	p, err := harness.NewPair(harness.PairOptions{MTU: s.Lab.MTU})
	if err != nil {
		return nil, fmt.Errorf("%s: build the lab: %w", s.Name, err)
	}
	r.pair = p
	defer func() { _ = p.Close() }()
	if err := o.Recorder.WatchPair(p); err != nil {
		return nil, fmt.Errorf("%s: watch the lab: %w", s.Name, err)
	}
	defer func() {
		_ = o.Recorder.Unwatch(p.Client.NS)
		_ = o.Recorder.Unwatch(p.Server.NS)
	}()
	for host, kv := range s.Lab.Sysctls {
		ns := p.Client.NS
		if host == "server" {
			ns = p.Server.NS
		}
		for k, v := range kv {
			if err := ns.SetSysctl(k, v); err != nil {
				r.res.fail("lab", fmt.Sprintf("%s sysctl %s=%s: %v", host, k, v, err))
				return r.finish(ctx), nil
			}
		}
	}
	if c, err := startCapture(p.Client); err != nil {
		r.res.fail("capture", err.Error())
	} else {
		r.capture = c
	}
	defer r.undoAll()
	if err := r.applyAt(When{}); err != nil {
		r.res.fail("faults", err.Error())
		return r.finish(ctx), nil
	}
	r.scheduleTimed()
	for _, st := range s.Steps {
		if err := r.step(ctx, st); err != nil {
			r.res.fail(st.Pos.String(), err.Error())
			if errors.Is(err, harness.ErrLostEvents) {
				r.res.lost = err
			}
			r.res.KernelView = r.kernelView() // now, before anything moves on
			break
		}
	}
	return r.finish(ctx), nil
}

// applyAt undoes the faults that end before step id and applies those
// that start there; id "" is the start of the run (faults with no start,
// or after: 0).
func (r *run) applyAt(w When) error {
	for _, f := range r.s.Faults {
		if w.Step != "" && f.End.Step == w.Step {
			r.undo(f)
		}
	}
	for _, f := range r.s.Faults {
		starts := f.Start.Step == w.Step
		if w.Step == "" {
			starts = f.Start.Step == "" && f.Start.After == 0
		}
		if !starts {
			continue
		}
		if err := r.apply(f); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) apply(f *Fault) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, on := r.active[f.ID]; on {
		return nil
	}
	a, err := f.Value.Apply(r.pair)
	if err != nil {
		return fmt.Errorf("fault %s (%s): %w", f.ID, f.Pos, err)
	}
	r.active[f.ID] = a
	r.windows = append(r.windows, window{fault: f, start: time.Now()})
	r.res.Faults = append(r.res.Faults, FaultResult{ID: f.ID, What: a.String(), Backend: string(a.Backend())})
	return nil
}

func (r *run) undo(f *Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, on := r.active[f.ID]
	if !on {
		return
	}
	if n, err := a.Packets(); err == nil {
		r.packets[f.ID] = n
	}
	if err := a.Undo(); err != nil {
		r.res.fail("faults", fmt.Sprintf("undo %s: %v", f.ID, err))
	}
	delete(r.active, f.ID)
	for i := range r.windows {
		if r.windows[i].fault == f && r.windows[i].end.IsZero() {
			r.windows[i].end = time.Now()
		}
	}
}

func (r *run) undoAll() {
	for _, t := range r.timers {
		t.Stop()
	}
	for _, f := range r.s.Faults {
		r.undo(f)
	}
}

// scheduleTimed starts and ends the faults timed by durations.
func (r *run) scheduleTimed() {
	for _, f := range r.s.Faults {
		if f.Start.Set && f.Start.Step == "" && f.Start.After > 0 {
			r.timers = append(r.timers, time.AfterFunc(f.Start.After, func() {
				if err := r.apply(f); err != nil {
					r.mu.Lock()
					r.res.fail("faults", err.Error())
					r.mu.Unlock()
				}
			}))
		}
		if f.End.Set && f.End.Step == "" && f.End.After > 0 {
			r.timers = append(r.timers, time.AfterFunc(f.End.After, func() { r.undo(f) }))
		}
	}
}

func (r *run) listenerAddr(name string) (netip.AddrPort, error) {
	if name == "" {
		name = "listener"
	}
	ln := r.sockets[name]
	if ln == nil {
		return netip.AddrPort{}, fmt.Errorf("no listener %q", name)
	}
	return ln.LocalAddr()
}

// remember names a new socket, as the validator did.
func (r *run) remember(st *Step, kind string, e *harness.Endpoint) {
	name, _ := r.namer.next(st.As, kind) // the validator refused taken names
	r.sockets[name] = e
	r.order = append(r.order, name)
	r.hostOf[name] = st.Actor
	if kind != "listener" {
		r.current[st.Actor] = name
	}
}

func (r *run) target(st *Step) (*harness.Endpoint, string) {
	name := st.Socket
	if name == "" {
		name = r.current[st.Actor]
	}
	return r.sockets[name], name
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// countdown reports a long wait every 5 s until done is closed.
func (r *run) countdown(what string, d time.Duration, done <-chan struct{}) {
	if r.o.Progress == nil || d < countdownAfter {
		return
	}
	end := time.Now().Add(d)
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(r.o.Progress, "  %s [%s] %s: at most %.0f s left\n", r.s.Name, r.family, what, time.Until(end).Seconds())
			}
		}
	}()
}

var errWrongResult = errors.New("wrong result")
