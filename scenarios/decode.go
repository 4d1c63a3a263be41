package scenarios

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
	"go.yaml.in/yaml/v3"
)

// ErrInvalid wraps every error of a file that does not validate; the
// message starts with file:line:column.
var ErrInvalid = errors.New("invalid scenario")

// decoder turns YAML nodes into values, keeping the first error with its
// position. Every field is read explicitly, so an unknown one is an error
// at its own line and column.
type decoder struct {
	file string
	err  error
}

func itoa(i int) string { return strconv.Itoa(i) }

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Column: n.Column} }

func (d *decoder) fail(n *yaml.Node, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s", ErrInvalid, d.pos(n), fmt.Sprintf(format, args...))
	}
}

// fields walks a mapping, calling set for each key; keys not in known are
// refused, and so are repeated ones.
func (d *decoder) fields(n *yaml.Node, what string, known []string, set func(key string, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, "%s must be a mapping", what)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(known, k.Value) {
			d.fail(k, "unknown field %q in %s (known: %s)", k.Value, what, strings.Join(known, ", "))
			return
		}
		if seen[k.Value] {
			d.fail(k, "%q given twice in %s", k.Value, what)
			return
		}
		seen[k.Value] = true
		set(k.Value, v)
	}
}

func (d *decoder) str(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, "want a string")
		return ""
	}
	return n.Value
}

func (d *decoder) integer(n *yaml.Node, min int) int {
	v, err := strconv.Atoi(d.str(n))
	if err != nil || v < min {
		d.fail(n, "want a whole number of at least %d, not %q", min, n.Value)
	}
	return v
}

func (d *decoder) float(n *yaml.Node, lo, hi float64) float64 {
	v, err := strconv.ParseFloat(d.str(n), 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		d.fail(n, "want a number in [%g, %g], not %q", lo, hi, n.Value)
	}
	return v
}

func (d *decoder) boolean(n *yaml.Node) bool {
	switch d.str(n) {
	case "true", "yes", "on":
		return true
	case "false", "no", "off":
		return false
	}
	d.fail(n, "want true or false, not %q", n.Value)
	return false
}

// duration reads Go's spelling: 300ms, 60s, 1m30s. Bare numbers are
// refused: a unit must be said.
func (d *decoder) duration(n *yaml.Node) time.Duration {
	v, err := time.ParseDuration(d.str(n))
	if err != nil {
		d.fail(n, "want a duration with its unit (300ms, 60s), not %q", n.Value)
		return 0
	}
	if v < 0 {
		d.fail(n, "negative duration %s", n.Value)
	}
	return v
}

func (d *decoder) state(n *yaml.Node) tcpstate.State {
	s, err := tcpstate.Parse(d.str(n))
	if err != nil {
		d.fail(n, "unknown TCP state %q (the kernel's TCP_FIN_WAIT1, netstat's FIN_WAIT1 and ss's FIN-WAIT-1 all work)", n.Value)
	}
	return s
}

func (d *decoder) list(n *yaml.Node, what string, each func(*yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "%s must be a list", what)
		return
	}
	for _, c := range n.Content {
		each(c)
	}
}

func (d *decoder) oneOf(n *yaml.Node, what string, allowed ...string) string {
	v := d.str(n)
	if !slices.Contains(allowed, v) {
		d.fail(n, "%s %q: want one of %s", what, v, strings.Join(allowed, ", "))
	}
	return v
}
