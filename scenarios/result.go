package scenarios

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tcplab/tcplab/harness"
	"github.com/tcplab/tcplab/harness/tcpstate"
	"golang.org/x/sys/unix"
)

// Result is one run of a scenario in one family.
type Result struct {
	Scenario string        `json:"scenario"`
	File     string        `json:"file"`
	Family   string        `json:"family"`
	Passed   bool          `json:"passed"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	StepsRun int           `json:"steps_run"`
	Checks   []Check       `json:"checks"`
	Faults   []FaultResult `json:"faults,omitempty"`
	Sockets  []Socket      `json:"sockets"`
	Recorder string        `json:"recorder"` // tracepoint, or polling and why
	Kernel   string        `json:"kernel"`
	Frames   []Frame       `json:"frames,omitempty"`
	Pcap     string        `json:"pcap,omitempty"`
	// MonoOffset turns a transition's CLOCK_MONOTONIC time into Unix
	// nanoseconds, to draw states and packets on one axis.
	MonoOffset int64 `json:"mono_offset_ns"`
	// KernelView is what sock_diag and the recorder's counters said when
	// the run failed (at the failed step, or after the expectations).
	KernelView []string `json:"kernel_view,omitempty"`
	// Rerun says why this is a second run (the first one's recorder lost
	// events); empty for a first run.
	Rerun string `json:"rerun,omitempty"`

	lost error // the recorder lost events in this run
}

// Check is one verdict: a step's result, an expectation, or a failure of
// the run itself.
type Check struct {
	Where  string `json:"where"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// FaultResult is what a fault did.
type FaultResult struct {
	ID      string `json:"id"`
	What    string `json:"what"`
	Backend string `json:"backend"`
	Packets uint64 `json:"packets"`
}

// Socket is one named socket's connection as the recorder saw it.
type Socket struct {
	Name     string               `json:"name"`
	Host     string               `json:"host"`
	Local    string               `json:"local"`
	Remote   string               `json:"remote"`
	States   []tcpstate.State     `json:"states"`
	Timeline []harness.Transition `json:"transitions"`
	Text     string               `json:"text"`
}

func (r *Result) fail(where, detail string) {
	r.Checks = append(r.Checks, Check{Where: where, Detail: detail})
}

func (r *Result) pass(where, detail string) {
	r.Checks = append(r.Checks, Check{Where: where, OK: true, Detail: detail})
}

// finish syncs the recorder, reads the timelines and packet counts, and
// checks the expectations.
func (r *run) finish(ctx context.Context) *Result {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.o.Recorder.Sync(sctx, r.pair.Client.NS, r.pair.Server.NS); err != nil {
		r.res.fail("recorder", err.Error())
		if errors.Is(err, harness.ErrLostEvents) {
			r.res.lost = err
		}
	}
	r.res.Recorder = r.o.Recorder.Mode().String()
	if reason := r.o.Recorder.Reason(); reason != "" {
		r.res.Recorder += ": " + reason
	}
	for _, name := range r.order {
		e := r.sockets[name]
		tl := r.o.Recorder.Timeline(e)
		r.res.Sockets = append(r.res.Sockets, Socket{
			Name: name, Host: r.hostOf[name], Local: tl.Local.String(), Remote: tl.Remote.String(),
			States: tl.States(), Timeline: tl.Transitions, Text: tl.String(),
		})
	}
	r.res.Kernel = kernelRelease()
	r.res.MonoOffset = time.Now().UnixNano() - int64(harness.Monotonic())
	if r.capture != nil {
		frames := r.capture.stop()
		r.mu.Lock()
		markFates(frames, r.windows)
		r.mu.Unlock()
		r.res.Frames = frames
		if r.o.PcapDir != "" {
			name := fmt.Sprintf("%s-%s.pcap", r.s.Name, r.res.Family)
			path := filepath.Join(r.o.PcapDir, name)
			if err := os.MkdirAll(r.o.PcapDir, 0o755); err != nil {
				r.res.fail("pcap", err.Error())
			} else if err := writePcap(path, frames); err != nil {
				r.res.fail("pcap", err.Error())
			} else {
				r.res.Pcap = path
			}
		}
	}
	r.mu.Lock()
	for id, a := range r.active {
		if n, err := a.Packets(); err == nil {
			r.packets[id] = n
		}
	}
	for i := range r.res.Faults {
		r.res.Faults[i].Packets = r.packets[r.res.Faults[i].ID]
	}
	r.mu.Unlock()
	for _, e := range r.s.Expect {
		ok, detail := r.check(e)
		r.res.Checks = append(r.res.Checks, Check{Where: e.Pos.String(), OK: ok, Detail: detail})
	}
	r.res.Passed = true
	for _, c := range r.res.Checks {
		r.res.Passed = r.res.Passed && c.OK
	}
	if !r.res.Passed && r.res.KernelView == nil {
		r.res.KernelView = r.kernelView()
	}
	r.res.Duration = time.Since(r.start)
	return r.res
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
