package scenarios

import (
	"context"

	"errors"
	"fmt"
	"github.com/tcplab/tcplab/faults"
	"time"

	"github.com/tcplab/tcplab/harness"
	"golang.org/x/sys/unix"
)

// step runs one step, checking its result against the file's
// expectation: an error named in error:, or success.
func (r *run) step(ctx context.Context, st *Step) error {
	if st.ID != "" {
		if err := r.applyAt(When{Step: st.ID}); err != nil {
			return err
		}
	}
	switch st.Action {
	case "wait":
		done := make(chan struct{})
		r.countdown("waiting", st.Wait, done)
		err := sleepCtx(ctx, st.Wait)
		close(done)
		return err
	case "release":
		return r.release(ctx, st)
	case "repeat":
		for i := range st.Times {
			for _, c := range st.Steps {
				if err := r.step(ctx, c); err != nil {
					return fmt.Errorf("repeat %d of %d: %w", i+1, st.Times, err)
				}
			}
		}
		return nil
	}
	err := r.act(ctx, st)
	r.res.StepsRun++
	if st.Ignore {
		return nil
	}
	if st.Error != "" {
		want := errnos[st.Error]
		if errors.Is(err, want) {
			r.res.pass(st.Pos.String(), fmt.Sprintf("%s %s failed with %s", st.Actor, st.Action, st.Error))
			return nil
		}
		if err == nil {
			return fmt.Errorf("%s %s succeeded, want %s: %w", st.Actor, st.Action, st.Error, errWrongResult)
		}
		return fmt.Errorf("%s %s: %w, want %s: %w", st.Actor, st.Action, err, st.Error, errWrongResult)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", st.Actor, st.Action, err)
	}
	return nil
}

func timeout(st *Step) time.Duration {
	if st.Timeout > 0 {
		return st.Timeout
	}
	return defaultTimeout
}

// act does the step's syscalls and returns the kernel's error.
func (r *run) act(ctx context.Context, st *Step) error {
	host := r.pair.Client
	if st.Actor == "server" {
		host = r.pair.Server
	}
	switch st.Action {
	case "listen":
		backlog := st.Backlog
		if backlog == 0 {
			backlog = 128
		}
		ln, err := host.Listen(r.family, st.Port, backlog)
		if err != nil {
			return err
		}
		r.remember(st, "listener", ln)
		return nil
	case "connect", "start-connect":
		addr, err := r.listenerAddr(st.Socket)
		if err != nil {
			return err
		}
		e, err := host.Socket(r.family)
		if err != nil {
			return err
		}
		r.remember(st, "client", e)
		if st.Port != 0 {
			if err := e.Bind(st.Port); err != nil {
				return err
			}
		}
		if err := e.StartConnect(addr); err != nil || st.Action == "start-connect" {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, timeout(st))
		defer cancel()
		return e.WaitConnected(cctx)
	case "accept":
		name := st.Socket
		if name == "" {
			name = "listener"
		}
		cctx, cancel := context.WithTimeout(ctx, timeout(st))
		defer cancel()
		e, err := r.sockets[name].Accept(cctx)
		if err != nil {
			return err
		}
		st2 := *st
		st2.Socket = ""
		r.remember(&st2, "server", e)
		return nil
	}
	e, name := r.target(st)
	if e == nil {
		return fmt.Errorf("no socket %q", name)
	}
	switch st.Action {
	case "write":
		cctx, cancel := context.WithTimeout(ctx, timeout(st))
		defer cancel()
		_, err := e.Write(cctx, make([]byte, st.Bytes))
		return err
	case "read":
		cctx, cancel := context.WithTimeout(ctx, timeout(st))
		defer cancel()
		buf := make([]byte, st.Bytes)
		for got := 0; got < st.Bytes; {
			n, err := e.Read(cctx, buf[got:])
			if err != nil {
				return err
			}
			got += n
		}
		return nil
	case "read-eof":
		cctx, cancel := context.WithTimeout(ctx, timeout(st))
		defer cancel()
		_, err := e.ReadAll(cctx)
		return err
	case "shutdown":
		how := map[string]int{"read": unix.SHUT_RD, "write": unix.SHUT_WR, "both": unix.SHUT_RDWR}[st.How]
		return e.Shutdown(how)
	case "close":
		return e.Close()
	case "linger":
		return e.SetLinger(st.On, st.Value)
	case "set":
		switch st.Option {
		case "linger2":
			return e.SetLinger2(st.Value)
		case "user-timeout":
			return e.SetUserTimeout(st.Value)
		case "keepalive":
			return e.SetKeepalive(st.Value, st.Value, 3)
		case "reuseaddr":
			return e.SetReuseAddr(st.On)
		case "nodelay":
			return e.SetNoDelay(st.On)
		}
	case "wait-state":
		return r.waitState(ctx, st, e, name)
	}
	return fmt.Errorf("unknown action %q", st.Action)
}

// errStateTimeout means wait-state ran out of time.
var errStateTimeout = errors.New("state not reached in time")

// waitState polls the recorder until the socket's connection is in the
// state, with a countdown for long waits.
func (r *run) waitState(ctx context.Context, st *Step, e *harness.Endpoint, name string) error {
	d := timeout(st)
	done := make(chan struct{})
	defer close(done)
	r.countdown(fmt.Sprintf("waiting for %s to reach %s", name, st.State), d, done)
	deadline := time.Now().Add(d)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.o.Recorder.Sync(sctx, r.pair.Client.NS, r.pair.Server.NS)
		cancel()
		if err != nil {
			return err
		}
		tl := r.o.Recorder.Timeline(e)
		if tl.Current() == st.State {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is in %s after %v, want %s: %w", name, tl.Current(), d, st.State, errStateTimeout)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// release lets a hold's packets through, once it holds st.Packets (one
// by default), in arrival order or reversed; the hold goes on holding
// what comes next.
func (r *run) release(ctx context.Context, st *Step) error {
	r.mu.Lock()
	a := r.active[st.Fault]
	r.mu.Unlock()
	q, ok := a.(*faults.Queued)
	if !ok {
		return fmt.Errorf("release %s: the hold is not active", st.Fault)
	}
	want := max(st.Packets, 1)
	deadline := time.After(timeout(st))
	for len(q.Held()) < want {
		select {
		case <-q.Arrived():
		case <-deadline:
			return fmt.Errorf("release %s: %d packets held after %v, want %d", st.Fault, len(q.Held()), timeout(st), want)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !st.Reverse {
		_, err := q.Release()
		return err
	}
	_, err := q.ReleaseReversed()
	return err
}
