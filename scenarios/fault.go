package scenarios

import (
	"strings"

	"github.com/tcplab/tcplab/faults"
	"go.yaml.in/yaml/v3"
)

var faultKinds = []string{"drop", "reject", "count", "blackhole", "partition", "hold", "delay", "loss", "netem"}

// fault reads one fault: an id, one kind with its parameters, and when it
// starts and ends.
func (d *decoder) fault(n *yaml.Node) *Fault {
	f := &Fault{Pos: d.pos(n)}
	d.fields(n, "a fault", append([]string{"id", "start", "end"}, faultKinds...), func(k string, v *yaml.Node) {
		switch k {
		case "id":
			f.ID = d.str(v)
		case "start":
			f.Start = d.when(v)
		case "end":
			f.End = d.when(v)
		default:
			if f.Kind != "" {
				d.fail(v, "a fault is one kind: %s and %s given", f.Kind, k)
				return
			}
			f.Kind = k
			f.Value = d.faultValue(k, v)
		}
	})
	if d.err == nil && f.Kind == "" {
		d.fail(n, "a fault needs a kind: one of %s", strings.Join(faultKinds, ", "))
	}
	if d.err == nil && f.ID == "" {
		d.fail(n, "a fault needs an id, for its packet count and for the report")
	}
	return f
}

func (d *decoder) when(n *yaml.Node) When {
	w := When{Set: true}
	given := 0
	d.fields(n, "a moment", []string{"step", "after"}, func(k string, v *yaml.Node) {
		given++
		if k == "step" {
			w.Step = d.str(v)
		} else {
			w.After = d.duration(v)
		}
	})
	if d.err == nil && given != 1 {
		d.fail(n, "a moment is step: ID or after: DURATION")
	}
	return w
}

func (d *decoder) direction(n *yaml.Node) faults.Direction {
	switch d.oneOf(n, "dir", "client->server", "server->client", "both") {
	case "client->server":
		return faults.ClientToServer
	case "server->client":
		return faults.ServerToClient
	}
	return faults.Both
}

// flags reads TCP flags as a list ([SYN, ACK]) or one string ("SYN|ACK");
// "all" (a mask) means every flag: an exact match.
func (d *decoder) flags(n *yaml.Node) faults.TCPFlags {
	var names []string
	if n.Kind == yaml.SequenceNode {
		d.list(n, "flags", func(c *yaml.Node) { names = append(names, d.str(c)) })
	} else {
		names = strings.Split(d.str(n), "|")
	}
	var f faults.TCPFlags
	for _, name := range names {
		switch strings.ToUpper(strings.TrimSpace(name)) {
		case "FIN":
			f |= faults.FIN
		case "SYN":
			f |= faults.SYN
		case "RST":
			f |= faults.RST
		case "PSH":
			f |= faults.PSH
		case "ACK":
			f |= faults.ACK
		case "URG":
			f |= faults.URG
		case "ECE":
			f |= faults.ECE
		case "CWR":
			f |= faults.CWR
		case "ALL":
			f |= faults.AllFlags
		default:
			d.fail(n, "unknown TCP flag %q", name)
		}
	}
	return f
}

func (d *decoder) faultValue(kind string, n *yaml.Node) faults.Fault {
	var m faults.Match
	var sel faults.Select
	var with faults.RejectWith
	var limit int
	var delay faults.Delay
	var loss faults.Loss
	var ne faults.Netem
	matchFields := []string{"dir", "flags", "mask", "sport", "dport"}
	selectFields := []string{"nth", "first", "probability", "seed"}
	known := map[string][]string{
		"drop":      append(append([]string{}, matchFields...), selectFields...),
		"count":     append(append([]string{}, matchFields...), selectFields...),
		"reject":    append(append([]string{"with"}, matchFields...), selectFields...),
		"blackhole": {"dir"},
		"partition": {},
		"hold":      append([]string{"limit"}, matchFields...),
		"delay":     {"dir", "delay", "jitter", "seed", "backend"},
		"loss":      {"dir", "probability", "seed", "backend"},
		"netem":     {"dir", "delay", "jitter", "loss", "duplicate", "reorder", "corrupt", "rate", "limit", "seed", "gemodel"},
	}[kind]
	if n.Kind == yaml.ScalarNode && n.Value == "" && kind == "partition" {
		return faults.Partition{}
	}
	dirGiven := false
	d.fields(n, kind, known, func(k string, v *yaml.Node) {
		switch k {
		case "dir":
			dirGiven = true
			dir := d.direction(v)
			m.Dir, delay.Dir, loss.Dir, ne.Dir = dir, dir, dir, dir
		case "flags":
			m.Flags = d.flags(v)
		case "mask":
			m.Mask = d.flags(v)
		case "sport":
			m.SrcPort = uint16(d.integer(v, 1))
		case "dport":
			m.DstPort = uint16(d.integer(v, 1))
		case "nth":
			sel.Nth = d.integer(v, 1)
		case "first":
			sel.First = d.integer(v, 1)
		case "probability":
			p := d.float(v, 0, 1)
			sel.Probability, loss.Probability = p, p
		case "seed":
			s := uint64(d.integer(v, 0))
			sel.Seed, delay.Seed, loss.Seed, ne.Seed = s, s, s, s
		case "with":
			switch d.oneOf(v, "reject with", "tcp-reset", "port-unreachable", "host-unreachable", "admin-prohibited") {
			case "port-unreachable":
				with = faults.WithPortUnreach
			case "host-unreachable":
				with = faults.WithHostUnreach
			case "admin-prohibited":
				with = faults.WithAdminProhib
			}
		case "limit":
			limit = d.integer(v, 1)
			ne.Limit = uint32(limit)
		case "delay":
			delay.Delay, ne.Delay = d.duration(v), d.duration(v)
		case "jitter":
			delay.Jitter, ne.Jitter = d.duration(v), d.duration(v)
		case "backend":
			b := faults.Backend(d.oneOf(v, "backend", "netem", "queue", "filter"))
			delay.Backend, loss.Backend = b, b
		case "loss":
			ne.Loss = d.float(v, 0, 1)
		case "duplicate":
			ne.Duplicate = d.float(v, 0, 1)
		case "reorder":
			ne.Reorder = d.float(v, 0, 1)
		case "corrupt":
			ne.Corrupt = d.float(v, 0, 1)
		case "rate":
			ne.Rate = uint64(d.integer(v, 1))
		case "gemodel":
			ge := &faults.GilbertElliott{}
			d.fields(v, "gemodel", []string{"p", "r", "loss-in-bad", "loss-in-good"}, func(k string, x *yaml.Node) {
				p := d.float(x, 0, 1)
				switch k {
				case "p":
					ge.P = p
				case "r":
					ge.R = p
				case "loss-in-bad":
					ge.LossInBad = p
				case "loss-in-good":
					ge.LossInGood = p
				}
			})
			ne.GilbertElliott = ge
		}
	})
	if d.err != nil {
		return nil
	}
	if kind != "partition" && !dirGiven {
		d.fail(n, "%s needs dir: client->server, server->client or both", kind)
		return nil
	}
	switch kind {
	case "drop":
		return faults.Drop{Match: m, Select: sel}
	case "count":
		return faults.Count{Match: m, Select: sel}
	case "reject":
		return faults.Reject{Match: m, Select: sel, With: with}
	case "blackhole":
		return faults.Blackhole{Dir: m.Dir}
	case "partition":
		return faults.Partition{}
	case "hold":
		if m.Dir == faults.Both {
			d.fail(n, "a hold serves one direction: write one per direction")
		}
		return faults.Hold{Match: m, Limit: limit}
	case "delay":
		return delay
	case "loss":
		return loss
	}
	return ne
}
