package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// wantedModules are what the suites need from the kernel, where it has
// them as modules; dependencies are added from each module's own
// "depends=". A module built in, or absent, is skipped (the suites'
// probes then say what is missing).
var wantedModules = []string{
	"veth",                                  // the lab's links
	"sch_netem",                             // the netem backend
	"nf_tables", "nft_compat", "nft_numgen", // the filter backend
	"nft_reject", "nft_reject_inet", // Reject
	"nfnetlink_queue", "xt_NFQUEUE", // the queue backend
	"inet_diag", "tcp_diag", // sock_diag for TCP
	"nft_counter", "nft_chain_nat", "nft_limit", // counters; harmless where built in
}

// moduleIndex maps module names (with - and _ the same) to files.
type moduleIndex map[string]string

func indexModules(dir string) (moduleIndex, error) {
	idx := moduleIndex{}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base := d.Name()
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			if name, ok := strings.CutSuffix(base, ext); ok {
				idx[canon(name)] = p
			}
		}
		return nil
	})
	return idx, err
}

func canon(name string) string { return strings.ReplaceAll(name, "-", "_") }

// resolve returns the modules to load, dependencies first, each file
// decompressed into dst.
func resolve(idx moduleIndex, wanted []string, dst string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(name string) error {
		name = canon(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		path, ok := idx[name]
		if !ok {
			state[name] = 2 // built in, or not in this kernel
			return nil
		}
		state[name] = 1
		out := filepath.Join(dst, name+".ko")
		if err := decompress(path, out); err != nil {
			return err
		}
		deps, err := modinfoDepends(out)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	for _, w := range wanted {
		if err := visit(w); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// decompress writes a module uncompressed: busybox's insmod takes plain
// ELF files.
func decompress(src, dst string) error {
	var tool string
	switch {
	case strings.HasSuffix(src, ".xz"):
		tool = "xz"
	case strings.HasSuffix(src, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(src, ".gz"):
		tool = "gzip"
	default:
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}
	out, err := exec.Command(tool, "-dc", src).Output()
	if err != nil {
		return fmt.Errorf("%s -dc %s: %w", tool, src, err)
	}
	return os.WriteFile(dst, out, 0o644)
}

// cryptoAliases name the module behind a crypto algorithm a module asks
// for in its softdep (libcrc32c, needed by nf_tables, wants "crc32c").
// Without modprobe in the guest nothing would resolve the alias.
var cryptoAliases = map[string]string{"crc32c": "crc32c_generic"}

// modinfoDepends reads the "depends=" entry of a module's .modinfo
// section, as modinfo(8) does, and the modules its "softdep=pre:" asks
// to be loaded first.
func modinfoDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	var deps []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Split(splitNUL)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "depends="); ok && v != "" {
			deps = append(deps, strings.Split(v, ",")...)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "softdep="); ok {
			deps = append(deps, softdepPre(v)...)
		}
	}
	return deps, nil
}

// softdepPre reads "pre: a b post: c" and returns a and b.
func softdepPre(v string) []string {
	var pre []string
	in := false
	for _, f := range strings.Fields(v) {
		switch f {
		case "pre:":
			in = true
		case "post:":
			in = false
		default:
			if in {
				if m, ok := cryptoAliases[f]; ok {
					f = m
				}
				pre = append(pre, f)
			}
		}
	}
	return pre
}

func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
