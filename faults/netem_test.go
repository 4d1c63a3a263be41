package faults

import (
	"errors"
	"testing"
	"time"

	"github.com/tcplab/tcplab/harness"
)

func TestNetemProbeNamesTheMissingFeature(t *testing.T) {
	if err := harness.CheckPrivileges(); err != nil {
		t.Skip(err)
	}
	err := HaveNetem()
	if err == nil {
		t.Skip("this kernel has netem: nothing to name")
	}
	if !errors.Is(err, harness.ErrNotSupported) || err.Error() != "sch_netem not available (CONFIG_NET_SCH_NETEM): not supported by this kernel" {
		t.Fatalf("HaveNetem: %v", err)
	}
}

// A netem delay shows in the round trip and the qdisc is gone after Undo.
func TestNetemDelayAndUndo(t *testing.T) {
	p := newPair(t)
	if err := HaveNetem(); err != nil {
		t.Skip(err)
	}
	q := apply(t, p, Netem{Dir: Both, Delay: 20 * time.Millisecond})
	if q.Backend() != NetemBackend {
		t.Errorf("backend %q", q.Backend())
	}
	c, s := connected(t, p)
	pingPong(t, c, s, 3)
	info, err := c.TCPInfo()
	if err != nil {
		t.Fatal(err)
	}
	if rtt := time.Duration(info.Rtt) * time.Microsecond; rtt < 40*time.Millisecond || rtt > 60*time.Millisecond {
		t.Errorf("srtt %v through 20 ms each way", rtt)
	}
	if n, err := q.Packets(); err != nil || n == 0 {
		t.Errorf("packets %d (%v)", n, err)
	}
	if _, err := (Netem{Dir: ClientToServer, Delay: time.Millisecond}).Apply(p); !errors.Is(err, ErrBadFault) {
		t.Errorf("a second netem on the same link: %v", err)
	}
	if err := q.Undo(); err != nil {
		t.Fatal(err)
	}
	for _, h := range p.Hosts() {
		link, _ := h.Link()
		qs, err := h.NS.Handle().QdiscList(link)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range qs {
			if x.Type() == "netem" {
				t.Errorf("%s: netem left after Undo", h.Name)
			}
		}
	}
}

func TestBadNetemIsRefused(t *testing.T) {
	for _, n := range []Netem{
		{Dir: ClientToServer, Delay: -time.Millisecond},
		{Dir: ClientToServer, Loss: 1.1},
		{Dir: ClientToServer, Reorder: 0.5},
		{Dir: ClientToServer, Loss: 0.1, GilbertElliott: &GilbertElliott{P: 0.1}},
		{Dir: 7, Delay: time.Millisecond},
	} {
		if err := n.validate(); !errors.Is(err, ErrBadFault) {
			t.Errorf("%+v: %v", n, err)
		}
	}
}
