package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tcplab/tcplab/harness"
)

func runGC(fs *flag.FlagSet, args []string, out io.Writer) error {
	dry := fs.Bool("n", false, "list what would be removed, remove nothing")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if err := harness.CheckPrivileges(); err != nil {
		return err
	}
	left, err := harness.Leftovers()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range left {
		if *dry {
			fmt.Fprintln(out, "would remove", l)
			continue
		}
		if err := l.Remove(); err != nil {
			errs = append(errs, fmt.Errorf("remove %v: %w", l, err))
			continue
		}
		fmt.Fprintln(out, "removed", l)
	}
	if len(left) == 0 {
		fmt.Fprintln(out, "nothing to remove")
	}
	return errors.Join(errs...)
}
