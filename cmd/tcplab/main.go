package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

type command struct {
	name, args, summary string
	run                 func(fs *flag.FlagSet, args []string, out io.Writer) error
}

var commands = []command{
	{"run", "[-json F] [-junit F] [-html F] [-pcap-dir D] [FILE|DIR...]", "run scenarios (the built-in catalogue if none given)", runRun},
	{"list", "", "list the built-in scenario catalogue", runList},
	{"states", "", "list the TCP states with their meanings and spellings", runStates},
	{"doctor", "", "report what this kernel offers the lab", runDoctor},
	{"gc", "[-n]", "remove what killed tcplab runs left behind", runGC},
	{"rootns", "[-check] FILE", "snapshot the root namespace, or check it is unchanged", runRootns},
}

// errUsage makes main exit 2 after the command printed its usage.
var errUsage = errors.New("usage")

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(errOut)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("tcplab "+c.name, flag.ContinueOnError)
		fs.SetOutput(errOut)
		fs.Usage = func() {
			fmt.Fprintf(errOut, "usage: tcplab %s %s\n%s\n", c.name, c.args, c.summary)
			fs.PrintDefaults()
		}
		err := c.run(fs, args[1:], out)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		case errors.Is(err, errFailed):
			fmt.Fprintf(errOut, "tcplab %s: %v\n", c.name, err)
			return 1
		default:
			fmt.Fprintf(errOut, "tcplab %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(errOut, "tcplab: unknown command %q\n", args[0])
	usage(errOut)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tcplab COMMAND [ARGS]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'tcplab COMMAND -h' for a command's options.")
}

// parse parses flags and checks the positional argument count.
func parse(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != nargs {
		fs.Usage()
		return errUsage
	}
	return nil
}
