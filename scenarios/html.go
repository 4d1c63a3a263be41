package scenarios

import (
	"fmt"

	"github.com/tcplab/tcplab/faults"
	"html"
	"os"
	"sort"
	"strings"
	"time"
)

// WriteHTML writes the report: one self-contained page (no external
// files, scripts or fonts) with, for each run, the verdict, the kernel and
// the fault backends, the expectations, a ladder diagram of the main
// connection's packets with the states drawn along each side, and every
// socket's timeline.
func WriteHTML(path string, results []*Result) error {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>tcplab report</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h2{margin-top:2em;border-top:1px solid #ccc;padding-top:1em}
.pass{color:#186a18}.fail{color:#b00020}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
pre{background:#f6f6f6;padding:8px;overflow:auto}
svg.ladder{background:#fff;border:1px solid #ddd}
svg .pkt{stroke:#333;stroke-width:1.2;marker-end:url(#arrow)}
svg .dropped{stroke:#b00020;stroke-dasharray:4 3;marker-end:none}
svg .held{stroke:#c77700}
svg text{font:11px monospace}
svg .state{fill:#1a4f9c;font-weight:bold}
</style></head><body>
<h1>tcplab report</h1>
`)
	passed := 0
	for _, r := range results {
		if r.Passed {
			passed++
		}
	}
	fmt.Fprintf(&b, `<p id="summary" data-runs="%d" data-passed="%d">%d of %d runs passed.</p><ul>`, len(results), passed, passed, len(results))
	for i, r := range results {
		fmt.Fprintf(&b, `<li><a href="#run%d" class="%s">%s %s [%s]</a></li>`, i, verdictClass(r), verdictWord(r), html.EscapeString(r.Scenario), r.Family)
	}
	b.WriteString("</ul>")
	for i, r := range results {
		writeRun(&b, i, r)
	}
	b.WriteString(`<script>
// Marks the page as rendered, with what the browser drew, for the test
// that opens it in headless Chromium.
document.body.dataset.rendered = "yes";
document.body.dataset.arrows = document.querySelectorAll("svg.ladder line.pkt").length;
document.body.dataset.dropped = document.querySelectorAll("svg.ladder line.dropped").length;
document.body.dataset.states = document.querySelectorAll("svg.ladder text.state").length;
</script></body></html>
`)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func verdictWord(r *Result) string {
	if r.Passed {
		return "PASS"
	}
	return "FAIL"
}

func verdictClass(r *Result) string {
	if r.Passed {
		return "pass"
	}
	return "fail"
}

func writeRun(b *strings.Builder, i int, r *Result) {
	fmt.Fprintf(b, `<h2 id="run%d" class="run %s" data-scenario="%s" data-family="%s">%s %s over %s</h2>`,
		i, verdictClass(r), html.EscapeString(r.Scenario), r.Family, verdictWord(r), html.EscapeString(r.Scenario), r.Family)
	fmt.Fprintf(b, `<p>%s &middot; kernel %s &middot; recorder: %s &middot; %.1f s</p>`,
		html.EscapeString(r.File), html.EscapeString(r.Kernel), html.EscapeString(r.Recorder), r.Duration.Seconds())
	if r.Rerun != "" {
		fmt.Fprintf(b, `<p class="rerun">second run: %s</p>`, html.EscapeString(r.Rerun))
	}
	if len(r.Faults) > 0 {
		b.WriteString("<table><tr><th>fault</th><th>what</th><th>backend</th><th>packets</th></tr>")
		for _, f := range r.Faults {
			fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>", html.EscapeString(f.ID), html.EscapeString(f.What), f.Backend, f.Packets)
		}
		b.WriteString("</table>")
	}
	b.WriteString(`<h3>Expectations</h3><table class="checks">`)
	for _, c := range r.Checks {
		cls, word := "pass", "pass"
		if !c.OK {
			cls, word = "fail", "FAIL"
		}
		fmt.Fprintf(b, `<tr class="%s"><td>%s</td><td>%s</td><td>%s</td></tr>`, cls, word, html.EscapeString(c.Where), html.EscapeString(c.Detail))
	}
	b.WriteString("</table><h3>Ladder</h3>")
	writeLadder(b, r)
	b.WriteString("<h3>Timelines</h3>")
	for _, s := range r.Sockets {
		fmt.Fprintf(b, "<p><b>%s</b> (%s)</p><pre>%s</pre>", html.EscapeString(s.Name), s.Host, html.EscapeString(s.Text))
	}
	if r.Pcap != "" {
		fmt.Fprintf(b, "<p>pcap: %s</p>", html.EscapeString(r.Pcap))
	}
}

// ladderLimit caps the packets drawn: the first ones tell the story.
const ladderLimit = 150

// mark is something drawn at a moment: a packet leaving or a state entered.
type mark struct {
	at    int64 // Unix ns
	frame *Frame
	side  string // for a state: client or server
	state string
}

// writeLadder draws the main connection (the socket named "client" and its
// peer) as a ladder: the client's column on the left, the server's on the
// right, time going down with long quiet gaps shortened, every packet an
// arrow labelled with its flags and relative seq/ack, dropped packets
// dashed red and ending in a cross, held or delayed ones annotated, and
// the states each side enters written along its column.
func writeLadder(b *strings.Builder, r *Result) {
	var cli, srv *Socket
	for i := range r.Sockets {
		s := &r.Sockets[i]
		if s.Name == "client" {
			cli = s
		}
	}
	for i := range r.Sockets {
		s := &r.Sockets[i]
		if cli != nil && s.Host == "server" && s.Remote == cli.Local && s.Local == cli.Remote {
			srv = s
		}
	}
	var marks []mark
	isn := map[string]uint32{}
	for i := range r.Frames {
		f := &r.Frames[i]
		if f.TCP == nil {
			continue
		}
		if cli != nil && cli.Local != "" && f.TCP.Src.String() != cli.Local && f.TCP.Dst.String() != cli.Local {
			continue
		}
		if _, ok := isn[f.FromSide]; !ok {
			isn[f.FromSide] = f.TCP.Seq
		}
		marks = append(marks, mark{at: f.At.UnixNano(), frame: f})
		if len(marks) >= ladderLimit {
			break
		}
	}
	for _, s := range []*Socket{cli, srv} {
		if s == nil {
			continue
		}
		for _, tr := range s.Timeline {
			if tr.From == tr.To {
				continue
			}
			marks = append(marks, mark{at: int64(tr.At) + r.MonoOffset, side: s.Host, state: tr.To.String()})
		}
	}
	if len(marks) == 0 {
		b.WriteString("<p>(no packets captured)</p>")
		return
	}
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].at < marks[j].at })
	const xc, xs, top = 170, 570, 40
	y := top
	t0 := marks[0].at
	var body strings.Builder
	prev := marks[0].at
	for _, m := range marks {
		gap := time.Duration(m.at - prev)
		step := min(max(int(gap.Milliseconds())*2, 16), 60)
		if m == marks[0] {
			step = 0
		}
		if gap > time.Second {
			fmt.Fprintf(&body, `<text x="300" y="%d" fill="#888">&#8942; %.1f s</text>`, y+step/2+4, gap.Seconds())
		}
		y += step
		prev = m.at
		fmt.Fprintf(&body, `<text x="4" y="%d" fill="#888">+%.3fs</text>`, y+4, float64(m.at-t0)/1e9)
		if m.frame == nil {
			x, anchor := xc-8, "end"
			if m.side == "server" {
				x, anchor = xs+8, "start"
			}
			fmt.Fprintf(&body, `<text class="state" x="%d" y="%d" text-anchor="%s">%s</text>`, x, y+4, anchor, m.state)
			continue
		}
		f := m.frame
		x1, x2 := xc, xs
		if f.FromSide == "server" {
			x1, x2 = xs, xc
		}
		cls := "pkt"
		switch {
		case strings.HasPrefix(f.Fate, "dropped"), strings.HasPrefix(f.Fate, "rejected"):
			cls = "pkt dropped"
			x2 = x1 + (x2-x1)*6/10
			fmt.Fprintf(&body, `<text x="%d" y="%d" fill="#b00020">&#10005;</text>`, x2-4, y+14)
		case f.Fate != "":
			cls = "pkt held"
		}
		fmt.Fprintf(&body, `<line class="%s" x1="%d" y1="%d" x2="%d" y2="%d"/>`, cls, x1, y, x2, y+10)
		peer := "client"
		if f.FromSide == "client" {
			peer = "server"
		}
		label := fmt.Sprintf("%v seq %d", f.TCP.Flags, f.TCP.Seq-isn[f.FromSide])
		if f.TCP.Flags&faults.ACK != 0 {
			label += fmt.Sprintf(" ack %d", f.TCP.Ack-isn[peer])
		}
		label += fmt.Sprintf(" len %d", f.TCP.Len)
		if f.Fate != "" {
			label += " (" + f.Fate + ")"
		}
		fmt.Fprintf(&body, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, (xc+xs)/2, y-2, html.EscapeString(label))
	}
	h := y + 40
	fmt.Fprintf(b, `<svg class="ladder" xmlns="http://www.w3.org/2000/svg" width="760" height="%d" viewBox="0 0 760 %d">`, h, h)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#333"/></marker></defs>`)
	fmt.Fprintf(b, `<text x="%d" y="20" text-anchor="middle" font-weight="bold">client</text><text x="%d" y="20" text-anchor="middle" font-weight="bold">server</text>`, xc, xs)
	fmt.Fprintf(b, `<line x1="%d" y1="28" x2="%d" y2="%d" stroke="#999"/><line x1="%d" y1="28" x2="%d" y2="%d" stroke="#999"/>`, xc, xc, h-10, xs, xs, h-10)
	b.WriteString(body.String())
	b.WriteString("</svg>")
}
