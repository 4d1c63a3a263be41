# tcplab: every target does its own setup on a fresh Debian machine.
# Run as root: sudo make test, sudo make run.

SHELL   := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO      ?= go
OUT     ?= out
BIN     := $(CURDIR)/bin
GINKGO  := $(GO) run github.com/onsi/ginkgo/v2/ginkgo
LINT_VERSION := v2.15.0
LINT    := $(BIN)/golangci-lint-$(LINT_VERSION)
# Debian packages the targets use, and the command that proves each is there.
APT_PKGS := iproute2:ip nftables:nft qemu-system-x86:qemu-system-x86_64 busybox-static:busybox xz-utils:xz zstd:zstd chromium:chromium tcpdump:tcpdump
SUITES  := $(filter-out ./suites/rootns,$(patsubst %/,./%,$(dir $(wildcard suites/*/suite_test.go))))
GINKGO_FLAGS := -p --randomize-all --fail-on-empty --fail-on-pending --keep-going --timeout=30m

.PHONY: all deps root build lint unit fuzz suites test test-vm bench run clean

all: build

root:
	@if [ "$$(id -u)" -ne 0 ]; then echo "tcplab needs root (network namespaces, BPF): run 'sudo make $(MAKECMDGOALS)'" >&2; exit 1; fi

# deps installs what is missing: Debian packages with apt-get, the linter
# from the Go module proxy, tracefs mounted where the kernel has it.
deps: root
	@missing=""; for p in $(APT_PKGS); do command -v $${p#*:} >/dev/null || missing="$$missing $${p%%:*}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(GO) >/dev/null || { echo "Go not found: install Go 1.24+ (https://go.dev/dl) into /usr/local/go" >&2; exit 1; }
	@if [ ! -d /sys/kernel/tracing/events ] && grep -qw tracefs /proc/filesystems; then mount -t tracefs tracefs /sys/kernel/tracing; fi
	@$(GO) mod download
	@test -x $(LINT) || { mkdir -p $(BIN) && GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(LINT_VERSION) && mv $(BIN)/golangci-lint $(LINT); }

build:
	$(GO) build -o $(BIN)/tcplab ./cmd/tcplab

lint: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	$(LINT) run ./...

# Unit and kernel tests of the packages, with the race detector. One
# package at a time: the gc test counts the machine's tcplab programs.
unit: deps
	@mkdir -p $(OUT)
	set -o pipefail; $(GO) test -race -p 1 -count=1 -v ./harness/... ./faults/... ./scenarios/... ./cmd/... ./ci/... > $(OUT)/unit.txt 2>&1 || { cat $(OUT)/unit.txt; exit 1; }
	@grep -E '^(ok|FAIL|--- FAIL)' $(OUT)/unit.txt

# The scenario loader under the fuzzer, briefly: it must refuse, never
# crash, and accept the same input the same way twice.
fuzz: deps
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 15s ./scenarios/

# Every suite in parallel processes and random order, between two
# snapshots of the root namespace that must be byte-identical.
suites: deps build
	@mkdir -p $(OUT)
	$(BIN)/tcplab rootns $(OUT)/rootns.before
	$(GINKGO) $(GINKGO_FLAGS) --output-dir=$(OUT) --junit-report=junit.xml --json-report=report.json $(SUITES)
	TCPLAB_ROOTNS_BEFORE=$(CURDIR)/$(OUT)/rootns.before $(GINKGO) --fail-on-empty --output-dir=$(OUT) \
		--junit-report=rootns-junit.xml --json-report=rootns-report.json ./suites/rootns
	$(BIN)/tcplab gc -n

# The kernel matrix: the netem specs and the core close-path suites inside
# qemu on Debian's kernels (fetched and cached by ci/vm), in strict mode.
KERNELS ?= 6.1 6.12
test-vm: deps
	@mkdir -p $(OUT)
	$(GO) run ./ci/vm -kernels "$(KERNELS)" -out $(OUT)/vm -host-junit $(OUT)/junit.xml

test: lint unit fuzz suites test-vm
	@ci/summary.sh $(OUT)

# Benchmarks, each against a baseline measured in the same run; the
# figures and the reasoning are in BENCHMARKS.md.
bench: deps
	@mkdir -p $(OUT)
	$(GO) test -run '^$$' -bench 'Pair' -benchtime=200x -count=1 ./harness/ | tee $(OUT)/bench-pair.txt
	$(GO) test -run '^$$' -bench 'Churn' -benchtime=30000x -count=1 ./harness/ | tee $(OUT)/bench-churn.txt
	$(GO) test -run '^$$' -bench 'ApplyUndo' -benchtime=200x -count=1 ./faults/ | tee $(OUT)/bench-faults.txt
	$(GO) test -run '^$$' -bench 'QueueDelayAccuracy' -benchtime=2000x -count=1 ./faults/ | tee -a $(OUT)/bench-faults.txt
	$(GO) test -run '^$$' -bench 'QueueThroughput' -benchtime=20000x -count=1 ./faults/ | tee -a $(OUT)/bench-faults.txt
	$(GO) test -run '^$$' -bench 'Catalog' -benchtime=1x -count=1 ./cmd/tcplab/ | tee $(OUT)/bench-catalog.txt
	$(GO) test -run '^$$' -bench 'Boot' -benchtime=1x -count=1 ./ci/vm/ | tee $(OUT)/bench-vm.txt
	$(GO) run ./ci/vm -kernels "$(KERNELS)" -suites "" -bench "./faults=ApplyUndo/" -benchtime 50x \
		-out $(OUT)/vm-bench | tee $(OUT)/bench-vm-faults.txt

# The main job: what this kernel offers, then the whole scenario
# catalogue against it, with the reports.
run: deps build
	@mkdir -p $(OUT)
	$(BIN)/tcplab doctor
	$(BIN)/tcplab run -json $(OUT)/run.json -junit $(OUT)/run-junit.xml -html $(OUT)/report.html -pcap-dir $(OUT)/pcap
	@echo "report: $(CURDIR)/$(OUT)/report.html"

clean:
	rm -rf $(OUT) $(BIN)
