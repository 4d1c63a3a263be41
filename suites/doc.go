// Package suites holds the Ginkgo suites, one package per topic. Each runs
// every spec in IPv4 and IPv6 and under `ginkgo -p --randomize-all`: a spec
// builds its own namespaces, so nothing is shared between specs but the
// process's recorder.
package suites
