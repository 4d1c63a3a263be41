// Command vm runs tcplab's suites inside qemu on other kernels: Debian's
// 6.1 and 6.12 by default, fetched with apt-get download, or a kernel the
// user points at (a vmlinuz and its modules directory, or a .deb). The
// host kernel of the project's machines has no sch_netem; distribution
// kernels do, so this is where the netem specs run.
//
// For each kernel it builds a small initramfs (busybox-static for init,
// the modules the suites need with their dependencies, the suites compiled
// as static test binaries), cached by content; boots it under qemu with no
// network to the outside; runs the suites in strict mode with a label
// filter; and brings back the exit status and the JUnit and JSON reports
// over a second serial port. A hang ends at the timeout with the serial
// log kept. At the end it prints a kernel-by-spec table, also written to
// the output directory.
//
//	go run ./ci/vm -kernels "6.1 6.12"
//	go run ./ci/vm -deb linux-image-6.8.0-45-generic_amd64.deb
//	go run ./ci/vm -vmlinuz /boot/vmlinuz-x -modules /lib/modules/x
//
// It also runs Go benchmarks that need a kernel feature the host lacks,
// after the suites or alone; their lines are printed per kernel:
//
//	go run ./ci/vm -suites "" -bench "./faults=ApplyUndo/" -benchtime 50x
package main
