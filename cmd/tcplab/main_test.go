package main

import (
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/tcplab/tcplab/harness"
	"github.com/tcplab/tcplab/harness/rootns"
)

func TestMain(m *testing.M) {
	if os.Getenv("TCPLAB_TEST_VICTIM") == "1" {
		victim()
		return
	}
	os.Exit(m.Run())
}

// victim builds pairs and churns connections until it is killed. It
// reports the BPF programs its recorder loaded, so the test follows those
// and not other processes' (a run of the suites beside it, say).
func victim() {
	before := programIDs(nil)
	rec, err := harness.NewRecorder(harness.RecorderOptions{})
	if err != nil {
		panic(err)
	}
	var mine []string
	for _, id := range programIDs(nil) {
		if !slices.Contains(before, id) {
			mine = append(mine, strconv.Itoa(int(id)))
		}
	}
	ctx := context.Background()
	println("ready " + strings.Join(mine, ","))
	for {
		p, err := harness.NewPair(harness.PairOptions{})
		if err != nil {
			panic(err)
		}
		_ = rec.WatchPair(p)
		_ = p.Client.NS.SetSysctl(harness.TCPFinTimeout, "3")
		ln, err := p.Server.Listen(harness.IPv4, 0, 16)
		if err == nil {
			addr, _ := ln.LocalAddr()
			for range 5 {
				if c, err := p.Client.Dial(ctx, addr); err == nil {
					_ = c.Close()
				}
			}
		}
		// Deliberately no Close: the kill decides what is left.
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageConventions(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: tcplab COMMAND"},
		{[]string{"-h"}, 0, "Commands:"},
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"nosuch"}, 2, `unknown command "nosuch"`},
		{[]string{"gc", "-h"}, 0, "usage: tcplab gc"},
		{[]string{"gc", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"gc", "extra"}, 2, "usage: tcplab gc"},
		{[]string{"rootns"}, 2, "usage: tcplab rootns"},
		{[]string{"states", "x"}, 2, "usage: tcplab states"},
		{[]string{"list", "x"}, 2, "usage: tcplab list"},
		{[]string{"run", "-parallel", "0"}, 2, "-parallel must be at least 1"},
		{[]string{"run", "-bogus"}, 2, "flag provided but not defined"},
		{[]string{"run", "/no/such/file.yaml"}, 1, "no such file"},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("tcplab %v: exit %d, output %q; want exit %d and %q", c.args, code, out+errOut, c.code, c.want)
		}
	}
}

func TestStatesListsTheElevenWithEverySpelling(t *testing.T) {
	code, out, _ := runCLI(t, "states")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"CLOSED", "LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN-WAIT-2",
		"CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME-WAIT", "TCP_FIN_WAIT1", "NEW_SYN_RECV"} {
		if !strings.Contains(out, w) {
			t.Errorf("states output lacks %s", w)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if err := harness.CheckPrivileges(); err != nil {
		if os.Getenv("TCPLAB_STRICT") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func TestDoctorPassesOnThisMachine(t *testing.T) {
	needRoot(t)
	code, out, errOut := runCLI(t, "doctor")
	if code != 0 {
		t.Fatalf("doctor exit %d:\n%s%s", code, out, errOut)
	}
}

// A run killed with SIGKILL at any point leaves nothing `tcplab gc` cannot
// remove, and nothing at all in the root namespace.
func TestKilledRunsLeaveNothingGCCannotRemove(t *testing.T) {
	needRoot(t)
	before, err := rootns.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var victims []ebpf.ProgramID
	for i := range 6 {
		cmd := exec.Command("/proc/self/exe", "-test.run=^$")
		cmd.Env = append(cmd.Environ(), "TCPLAB_TEST_VICTIM=1")
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := bufio.NewScanner(stderr)
		if !ready.Scan() || !strings.HasPrefix(ready.Text(), "ready ") {
			t.Fatalf("victim %d did not start: %q", i, ready.Text())
		}
		for _, f := range strings.Split(strings.TrimPrefix(ready.Text(), "ready "), ",") {
			if id, err := strconv.Atoi(f); err == nil {
				victims = append(victims, ebpf.ProgramID(id))
			}
		}
		go func() {
			for ready.Scan() {
			}
		}()
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	left, err := harness.Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		if l.Kind != "slot" {
			t.Errorf("a killed run left %v: only slot files may be left", l)
		}
	}
	if code, out, errOut := runCLI(t, "gc"); code != 0 {
		t.Fatalf("gc exit %d: %s%s", code, out, errOut)
	}
	if left, _ := harness.Leftovers(); len(left) != 0 {
		t.Fatalf("after gc: %v", left)
	}
	// The recorder's programs die with their process.
	if len(victims) < 2*6 {
		t.Fatalf("victims reported %d programs, want two each", len(victims))
	}
	deadline := time.Now().Add(10 * time.Second)
	for left := programIDs(victims); len(left) > 0; left = programIDs(victims) {
		if time.Now().After(deadline) {
			t.Fatalf("BPF programs %v outlived their killed processes", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	after, err := rootns.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("the root namespace changed:\n%s", lineDiff(string(before), string(after)))
	}
}

// programIDs lists the loaded tcplab BPF programs, only those in among
// when it is not nil.
func programIDs(among []ebpf.ProgramID) []ebpf.ProgramID {
	var ids []ebpf.ProgramID
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return ids // os.ErrNotExist at the end
		}
		id = next
		if among != nil && !slices.Contains(among, id) {
			continue
		}
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		if info, err := p.Info(); err == nil && strings.HasPrefix(info.Name, "tcplab_") {
			ids = append(ids, id)
		}
		p.Close()
	}
}
