package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tcplab/tcplab/harness"
)

func TestListShowsTheCatalogue(t *testing.T) {
	code, out, _ := runCLI(t, "list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"client-path", "simultaneous-close", "close-wait-leak", "time-wait-length", "[slow]"} {
		if !strings.Contains(out, w) {
			t.Errorf("list lacks %q:\n%s", w, out)
		}
	}
}

// A bad file is refused with its place before anything runs, and with
// exit 1; so is a run without privileges (tested as nobody).
func TestRunRefusesBadFilesAndNoPrivileges(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nname: x\nsteps:\n  - server: accept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "run", bad)
	if code != 1 || !strings.Contains(errOut, "bad.yaml:4:5: accept: no open listener") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot drop to nobody")
	}
	// A file nobody can read: the test's own directory is root's alone.
	f, err := os.CreateTemp("", "tcplab-good-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.WriteString("version: 1\nname: x\nsteps:\n  - server: listen\n"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestCLIHelper$")
	cmd.Env = append(os.Environ(), "TCPLAB_CLI_ARGS=run\x1f"+f.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "needs root") || !strings.Contains(string(out), "exit 1") {
		t.Fatalf("as nobody: %s", out)
	}
}

// TestCLIHelper runs the CLI with the arguments in TCPLAB_CLI_ARGS, for
// tests that need it in another process.
func TestCLIHelper(t *testing.T) {
	args := os.Getenv("TCPLAB_CLI_ARGS")
	if args == "" {
		t.Skip("helper")
	}
	code := run(strings.Split(args, "\x1f"), os.Stdout, os.Stdout)
	println("exit " + strconv.Itoa(code))
}

// Two catalogue scenarios run end to end write JSON, JUnit, pcaps and the
// HTML report; the report renders in headless Chromium with one ladder
// per run, arrows for the packets, the dropped ones marked, states drawn.
func TestRunWritesReportsThatRender(t *testing.T) {
	if err := harness.CheckPrivileges(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	out := func(n string) string { return filepath.Join(dir, n) }
	code, stdout, stderr := runCLI(t, "run", "-json", out("r.json"), "-junit", out("r.xml"), "-html", out("r.html"), "-pcap-dir", out("pcap"),
		"../../scenarios/catalog/03-closing.yaml", "../../scenarios/catalog/04-fin-wait1-to-time-wait.yaml")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "4 of 4 runs passed") || !strings.Contains(stdout, "FIN_WAIT1 -> CLOSING") {
		t.Errorf("output lacks the summary or a timeline:\n%s", stdout)
	}
	var results []map[string]any
	if b, err := os.ReadFile(out("r.json")); err != nil || json.Unmarshal(b, &results) != nil || len(results) != 4 {
		t.Fatalf("json: %v, %d results", err, len(results))
	}
	var junit struct {
		Suites []struct {
			Tests int `xml:"tests,attr"`
		} `xml:"testsuite"`
	}
	if b, err := os.ReadFile(out("r.xml")); err != nil || xml.Unmarshal(b, &junit) != nil || len(junit.Suites) != 2 {
		t.Fatalf("junit: %v %+v", err, junit)
	}
	pcaps, _ := filepath.Glob(out("pcap/*.pcap"))
	if len(pcaps) != 4 {
		t.Fatalf("pcaps %v", pcaps)
	}
	if tcpdump, err := exec.LookPath("tcpdump"); err == nil {
		if b, err := exec.Command(tcpdump, "-nr", pcaps[0]).CombinedOutput(); err != nil || !strings.Contains(string(b), "Flags [S]") {
			t.Errorf("tcpdump cannot read %s: %v\n%s", pcaps[0], err, b)
		}
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed: make deps installs it")
	}
	dom, err := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+out("chromium"), "--dump-dom", "file://"+out("r.html")).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	page := string(dom)
	attr := func(name string) int {
		m := regexp.MustCompile(`<body[^>]* data-` + name + `="(\d+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("the page's script did not set data-%s: it did not run", name)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if !strings.Contains(page, `data-rendered="yes"`) {
		t.Fatal("the page's script did not run in Chromium")
	}
	if n := strings.Count(page, `<svg class="ladder"`); n != 4 {
		t.Errorf("%d ladders, want one per run", n)
	}
	// A handshake, a close and their ACKs at least, in each of four runs.
	if n := attr("arrows"); n < 4*7 {
		t.Errorf("%d arrows", n)
	}
	if n := attr("dropped"); n < 2 {
		t.Errorf("%d dropped arrows: fin-wait1-to-time-wait drops the server's pure ACKs", n)
	}
	if n := attr("states"); n < 4*8 {
		t.Errorf("%d states drawn", n)
	}
	for _, w := range []string{"CLOSING", "held by hold-to-server", "dropped by no-pure-acks", "backend", "kernel "} {
		if !strings.Contains(page, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
}
