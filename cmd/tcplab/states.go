package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/tcplab/tcplab/harness/tcpstate"
)

func runStates(fs *flag.FlagSet, args []string, out io.Writer) error {
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STATE\tKERNEL\tNETSTAT\tSS\tMEANING")
	for _, s := range tcpstate.RFC793 {
		fmt.Fprintf(w, "%v\t%s\t%s\t%s\t%s\n", s, s.Kernel(), s.Netstat(), s.SS(), s.Meaning())
	}
	fmt.Fprintln(w, "\nThe kernel's own:")
	for _, s := range []tcpstate.State{tcpstate.NewSynRecv, tcpstate.BoundInactive} {
		fmt.Fprintf(w, "%v\t%s\t%s\t%s\t%s\n", s, s.Kernel(), s.Netstat(), s.SS(), s.Meaning())
	}
	return w.Flush()
}
