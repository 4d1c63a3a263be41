package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tcplab/tcplab/harness"
	"github.com/tcplab/tcplab/harness/tcpstate"
	"go.yaml.in/yaml/v3"
)

// Load reads and validates one scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse validates a scenario read from file (the name is for messages).
func Parse(file string, data []byte) (*Scenario, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: empty file", ErrInvalid, file)
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%w: %s:%d:%d: one scenario per file: a second document starts here", ErrInvalid, file, extra.Line, extra.Column)
	}
	d := &decoder{file: file}
	s := &Scenario{File: file, Lab: Lab{Families: []harness.Family{harness.IPv4, harness.IPv6}}}
	root := doc.Content[0]
	version := 0
	d.fields(root, "the scenario", []string{"version", "name", "description", "tags", "lab", "faults", "steps", "expect"}, func(k string, v *yaml.Node) {
		switch k {
		case "version":
			version = d.integer(v, 0)
			if version != Version && d.err == nil {
				d.fail(v, "version %d: this tcplab reads version %d", version, Version)
			}
		case "name":
			s.Name = d.str(v)
		case "description":
			s.Description = d.str(v)
		case "tags":
			d.list(v, "tags", func(n *yaml.Node) { s.Tags = append(s.Tags, d.str(n)) })
		case "lab":
			d.lab(v, &s.Lab)
		case "faults":
			d.list(v, "faults", func(n *yaml.Node) { s.Faults = append(s.Faults, d.fault(n)) })
		case "steps":
			d.list(v, "steps", func(n *yaml.Node) { s.Steps = append(s.Steps, d.step(n, false)) })
		case "expect":
			d.list(v, "expect", func(n *yaml.Node) { s.Expect = append(s.Expect, d.expectation(n)) })
		}
	})
	if d.err == nil {
		switch {
		case version == 0:
			d.fail(root, "version is required (version: %d)", Version)
		case s.Name == "":
			d.fail(root, "name is required")
		case len(s.Steps) == 0:
			d.fail(root, "a scenario needs steps")
		}
	}
	if d.err == nil {
		d.err = validate(s)
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

func (d *decoder) lab(n *yaml.Node, l *Lab) {
	d.fields(n, "lab", []string{"family", "mtu", "sysctls"}, func(k string, v *yaml.Node) {
		switch k {
		case "family":
			switch d.oneOf(v, "family", "ipv4", "ipv6", "both") {
			case "ipv4":
				l.Families = []harness.Family{harness.IPv4}
			case "ipv6":
				l.Families = []harness.Family{harness.IPv6}
			}
		case "mtu":
			l.MTU = d.integer(v, 1280)
			if l.MTU > 65535 {
				d.fail(v, "mtu %d is over 65535", l.MTU)
			}
		case "sysctls":
			l.Sysctls = map[string]map[string]string{}
			d.fields(v, "sysctls", []string{"client", "server"}, func(host string, kv *yaml.Node) {
				l.Sysctls[host] = map[string]string{}
				if kv.Kind != yaml.MappingNode {
					d.fail(kv, "sysctls of %s must map names to values", host)
					return
				}
				for i := 0; i+1 < len(kv.Content); i += 2 {
					name := d.str(kv.Content[i])
					if !strings.HasPrefix(name, "net.") {
						d.fail(kv.Content[i], "sysctl %q: only net.* knobs exist per namespace", name)
					}
					l.Sysctls[host][name] = d.str(kv.Content[i+1])
				}
			})
		}
	})
}

var stepFields = []string{"id", "client", "server", "wait", "repeat", "release", "packets", "order", "steps", "socket", "as", "to",
	"bytes", "port", "backlog", "how", "option", "value", "on", "state", "timeout", "error", "ignore-error"}

// step reads one step: "client: connect", "server: listen", "wait: 2s" or
// "repeat: 200" with "steps".
func (d *decoder) step(n *yaml.Node, inRepeat bool) *Step {
	st := &Step{Pos: d.pos(n)}
	given := map[string]*yaml.Node{}
	d.fields(n, "a step", stepFields, func(k string, v *yaml.Node) {
		given[k] = v
		switch k {
		case "id":
			st.ID = d.str(v)
		case "client", "server":
			if st.Actor != "" {
				d.fail(v, "a step has one actor: client or server")
			}
			st.Actor = k
			st.Action = d.oneOf(v, "action", actions...)
		case "wait":
			st.Action, st.Wait = "wait", d.duration(v)
		case "repeat":
			st.Action, st.Times = "repeat", d.integer(v, 1)
		case "release":
			st.Action, st.Fault = "release", d.str(v)
		case "packets":
			st.Packets = d.integer(v, 1)
		case "order":
			st.Reverse = d.oneOf(v, "order", "arrival", "reverse") == "reverse"
		case "steps":
			d.list(v, "steps", func(c *yaml.Node) { st.Steps = append(st.Steps, d.step(c, true)) })
		case "socket", "to":
			st.Socket = d.str(v)
		case "as":
			st.As = d.str(v)
		case "bytes":
			st.Bytes = d.integer(v, 1)
		case "port":
			st.Port = d.integer(v, 0)
			if st.Port > 65535 {
				d.fail(v, "port %d is over 65535", st.Port)
			}
		case "backlog":
			st.Backlog = d.integer(v, 0)
		case "how":
			st.How = d.oneOf(v, "shutdown", "read", "write", "both")
		case "option":
			st.Option = d.oneOf(v, "option", "linger2", "user-timeout", "keepalive", "reuseaddr", "nodelay")
		case "value":
			st.Value = d.duration(v)
		case "on":
			st.On = d.boolean(v)
		case "state":
			st.State = d.state(v)
		case "timeout":
			st.Timeout = d.duration(v)
		case "error":
			st.Error = d.oneOf(v, "error", errnoNames()...)
		case "ignore-error":
			st.Ignore = d.boolean(v)
		}
	})
	if d.err != nil {
		return st
	}
	kinds := 0
	for _, k := range []string{"client", "server", "wait", "repeat", "release"} {
		if given[k] != nil {
			kinds++
		}
	}
	if kinds != 1 {
		d.fail(n, "a step is one of client: ACTION, server: ACTION, wait: DURATION, repeat: N or release: FAULT")
		return st
	}
	// Which fields each action takes; any other is a mistake worth saying.
	allowed := map[string][]string{
		"listen":        {"port", "backlog", "as"},
		"connect":       {"to", "port", "as", "timeout"},
		"start-connect": {"to", "port", "as"},
		"accept":        {"as", "timeout", "socket"},
		"write":         {"bytes", "socket"},
		"read":          {"bytes", "timeout", "socket"},
		"read-eof":      {"timeout", "socket"},
		"shutdown":      {"how", "socket"},
		"close":         {"socket"},
		"linger":        {"on", "value", "socket"},
		"set":           {"option", "value", "on", "socket"},
		"wait-state":    {"state", "timeout", "socket"},
		"wait":          {},
		"repeat":        {"steps"},
		"release":       {"packets", "order", "timeout"},
	}[st.Action]
	for k, v := range given {
		switch k {
		case "id", "client", "server", "wait", "repeat", "release", "error", "ignore-error":
			continue
		}
		if !contains(allowed, k) {
			d.fail(v, "%q does not apply to %s", k, st.Action)
			return st
		}
	}
	switch {
	case st.Action == "repeat" && len(st.Steps) == 0:
		d.fail(n, "repeat needs steps")
	case st.Action == "wait-state" && given["state"] == nil:
		d.fail(n, "wait-state needs a state")
	case (st.Action == "write" || st.Action == "read") && given["bytes"] == nil:
		d.fail(n, "%s needs bytes", st.Action)
	case st.Action == "shutdown" && st.How == "":
		d.fail(n, "shutdown needs how: read, write or both")
	case st.Action == "set" && st.Option == "":
		d.fail(n, "set needs an option")
	case inRepeat && (st.As != "" || st.ID != ""):
		d.fail(n, "a step inside repeat runs many times: it cannot have an id or name a socket (as)")
	case st.Error != "" && st.Ignore:
		d.fail(n, "error and ignore-error contradict each other")
	case (st.Action == "wait" || st.Action == "repeat" || st.Action == "release") && (st.Error != "" || st.Ignore):
		d.fail(n, "%s has no result to check", st.Action)
	}
	return st
}

var actions = []string{"listen", "connect", "start-connect", "accept", "write", "read", "read-eof", "shutdown", "close", "linger", "set", "wait-state"}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *decoder) expectation(n *yaml.Node) *Expectation {
	e := &Expectation{Pos: d.pos(n), AtMost: -1}
	given := map[string]bool{}
	d.fields(n, "an expectation", []string{"states", "dwell", "count", "packets", "seen", "of", "match", "is", "tolerance", "on", "at-least", "at-most"}, func(k string, v *yaml.Node) {
		given[k] = true
		switch k {
		case "states", "seen":
			e.Kind = k
			d.list(v, k, func(c *yaml.Node) { e.States = append(e.States, d.state(c)) })
		case "dwell":
			e.Kind, e.State = k, d.state(v)
		case "count":
			e.Kind, e.State = k, d.state(v)
		case "packets":
			e.Kind, e.Fault = k, d.str(v)
		case "of":
			e.Socket = d.str(v)
		case "match":
			e.Exact = d.oneOf(v, "match", "exact", "subsequence") == "exact"
		case "is":
			if e.Kind == "dwell" {
				e.Is = d.duration(v)
			} else {
				e.N, e.hasN = d.integer(v, 0), true
			}
		case "tolerance":
			e.Tolerance = d.duration(v)
		case "on":
			e.Host = d.oneOf(v, "host", "client", "server")
		case "at-least":
			e.AtLeast, e.hasRange = d.integer(v, 0), true
		case "at-most":
			e.AtMost, e.hasRange = d.integer(v, 0), true
		}
	})
	if d.err != nil {
		return e
	}
	kinds := 0
	for _, k := range []string{"states", "dwell", "count", "packets", "seen"} {
		if given[k] {
			kinds++
		}
	}
	switch {
	case kinds != 1:
		d.fail(n, "an expectation is one of states, dwell, count, packets or seen")
	case (e.Kind == "states" || e.Kind == "dwell") && e.Socket == "":
		d.fail(n, "%s needs of: the socket (client, server, listener or a name given with as)", e.Kind)
	case e.Kind == "states" && !given["match"]:
		e.Exact = true
	case e.Kind == "dwell" && (!given["is"] || !given["tolerance"]):
		d.fail(n, "dwell needs is and tolerance: a timing claim states its tolerance")
	case e.Kind == "count" && e.Host == "":
		d.fail(n, "count needs on: client or server")
	case (e.Kind == "count" || e.Kind == "packets") && e.hasN == e.hasRange:
		d.fail(n, "%s needs is, or at-least and/or at-most", e.Kind)
	case e.hasRange && e.AtMost >= 0 && e.AtMost < e.AtLeast:
		d.fail(n, "at-most %d is below at-least %d: nothing can satisfy that", e.AtMost, e.AtLeast)
	case e.Kind == "seen" && len(e.States) == 0:
		d.fail(n, "seen needs states")
	}
	if e.Kind == "states" {
		for _, s := range e.States {
			if s == tcpstate.Invalid {
				d.fail(n, "unknown state")
			}
		}
	}
	return e
}
