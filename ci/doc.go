// Package ci is the project's CI glue: .ci/run calls `make test`;
// summary.sh prints its closing line; workflow.yml is a GitHub Actions
// workflow users can copy (a host job and a kernel-matrix job on the same
// runner image), checked by this package's test; vm/ is the kernel-matrix
// runner.
package ci
