package scenarios

import (
	"time"

	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
	"github.com/tcplab/tcplab/harness/tcpstate"
)

// Version is the only format version this package reads.
const Version = 1

// Scenario is one loaded, validated scenario file.
type Scenario struct {
	File        string
	Name        string
	Description string
	Tags        []string // "slow" and the like, for filters
	Lab         Lab
	Faults      []*Fault
	Steps       []*Step
	Expect      []*Expectation
}

// Lab is the lab a scenario runs in.
type Lab struct {
	Families []harness.Family // IPv4, IPv6 or both: the scenario runs once per family
	MTU      int
	Sysctls  map[string]map[string]string // "client" or "server" -> knob -> value
}

// Pos is where something was written, for messages.
type Pos struct {
	File         string
	Line, Column int
}

func (p Pos) String() string { return p.File + ":" + itoa(p.Line) + ":" + itoa(p.Column) }

// Fault is a fault of the faults package with when it starts and ends.
type Fault struct {
	Pos   Pos
	ID    string
	Kind  string       // drop, reject, count, blackhole, partition, hold, delay, loss, netem
	Value faults.Fault // what to apply
	Start When
	End   When
}

// When is a moment in a run: before a step, or a duration after the
// start. The zero value is the start (for Start) or the end (for End).
type When struct {
	Step  string
	After time.Duration
	Set   bool
}

// Step is one action of an actor (client or server), a pause, or a
// repetition of steps.
type Step struct {
	Pos    Pos
	ID     string
	Actor  string // client, server; "" for wait and repeat
	Action string // listen, connect, start-connect, accept, write, read, read-eof, shutdown, close, linger, set, wait-state; wait, repeat, release

	Socket string // the socket it acts on (name); "" is the actor's current one
	As     string // the name a new socket (listen, connect, accept) gets

	Bytes   int
	Port    int
	Backlog int
	How     string         // shutdown: read, write, both
	Option  string         // set: linger2, user-timeout, keepalive, reuseaddr, nodelay
	Value   time.Duration  // set: the option's duration; linger: the linger time
	On      bool           // linger, reuseaddr, nodelay
	State   tcpstate.State // wait-state
	Timeout time.Duration  // wait-state, connect, accept, read
	Wait    time.Duration  // wait
	Times   int            // repeat
	Steps   []*Step        // repeat
	Fault   string         // release: the hold to release
	Packets int            // release: wait until this many are held (default 1)
	Reverse bool           // release: in reverse order of arrival
	Error   string         // the errno the step must fail with ("" = must succeed)
	Ignore  bool           // the step's error is not checked (only recorded)
}

// Expectation is one check of a run.
type Expectation struct {
	Pos  Pos
	Kind string // states, dwell, count, packets, seen

	Socket string // states, dwell: which socket ("client", "server" or a name)
	States []tcpstate.State
	Exact  bool // states: the whole sequence, else a subsequence

	State     tcpstate.State // dwell, count
	Is        time.Duration  // dwell
	Tolerance time.Duration  // dwell

	Host           string // count: client or server
	N, AtLeast     int    // count, packets
	AtMost         int    // count, packets (-1: no bound)
	Fault          string // packets
	hasN, hasRange bool
}
