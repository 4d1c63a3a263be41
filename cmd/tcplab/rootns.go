package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tcplab/tcplab/harness/rootns"
)

var errChanged = errors.New("the root namespace changed")

func runRootns(fs *flag.FlagSet, args []string, out io.Writer) error {
	check := fs.Bool("check", false, "compare with FILE instead of writing it")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	now, err := rootns.Snapshot()
	if err != nil {
		return err
	}
	file := fs.Arg(0)
	if !*check {
		return os.WriteFile(file, now, 0o644)
	}
	before, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if bytes.Equal(before, now) {
		fmt.Fprintf(out, "root namespace unchanged (%d lines)\n", bytes.Count(now, []byte("\n")))
		return nil
	}
	return fmt.Errorf("%w:\n%s", errChanged, lineDiff(string(before), string(now)))
}

// lineDiff lists the lines only in a (-) and only in b (+); snapshots are
// sorted, so this is the whole difference.
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ina, inb := in(a), in(b)
	var d strings.Builder
	for _, l := range strings.Split(a, "\n") {
		if !inb[l] {
			fmt.Fprintf(&d, "- %s\n", l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ina[l] {
			fmt.Fprintf(&d, "+ %s\n", l)
		}
	}
	return d.String()
}
