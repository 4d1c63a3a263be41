package main

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// kernel is one kernel to boot: its image, its modules directory
// (lib/modules/RELEASE) and its build configuration.
type kernel struct {
	Release string // uname -r
	Vmlinuz string
	Modules string
	Config  string // config-RELEASE, for the guest's /boot (CONFIG_HZ)
}

// tools are the host commands the runner uses, with the Debian package
// that provides each.
var tools = []struct{ cmd, pkg string }{
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"apt-get", "apt"},
	{"dpkg-deb", "dpkg"},
	{"xz", "xz-utils"},
	{"zstd", "zstd"},
}

// busybox is busybox-static's binary: statically linked, so it runs in
// an initramfs with no libraries.
const busybox = "/bin/busybox"

// static reports whether an executable needs no dynamic loader.
func static(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

func needTools() error {
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t.cmd); err != nil {
			missing = append(missing, t.pkg)
		}
	}
	if !static(busybox) {
		missing = append(missing, "busybox-static")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tools: apt-get install %s (make deps does it)", strings.Join(missing, " "))
	}
	return nil
}

func resolveKernels(ctx context.Context, o *options) ([]*kernel, error) {
	switch {
	case o.vmlinuz != "":
		k, err := fromDir(o.vmlinuz, o.modules)
		if err != nil {
			return nil, err
		}
		return []*kernel{k}, nil
	case o.deb != "":
		k, err := fromDeb(ctx, o.deb, filepath.Join(o.cache, "kernels"))
		if err != nil {
			return nil, err
		}
		return []*kernel{k}, nil
	}
	a := &aptCache{dir: filepath.Join(o.cache, "apt"), mirror: o.mirror}
	if err := a.update(ctx); err != nil {
		return nil, err
	}
	var ks []*kernel
	for _, series := range o.kernels {
		pkg, err := a.newest(ctx, series)
		if err != nil {
			return nil, err
		}
		deb, err := a.download(ctx, pkg)
		if err != nil {
			return nil, err
		}
		k, err := fromDeb(ctx, deb, filepath.Join(o.cache, "kernels"))
		if err != nil {
			return nil, err
		}
		fmt.Printf("kernel %s: %s\n", series, k.Release)
		ks = append(ks, k)
	}
	return ks, nil
}

func fromDir(vmlinuz, modules string) (*kernel, error) {
	if _, err := os.Stat(vmlinuz); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(modules, "kernel")); err != nil {
		return nil, fmt.Errorf("%s is not a modules directory (no kernel/ in it): %w", modules, err)
	}
	k := &kernel{Release: filepath.Base(modules), Vmlinuz: vmlinuz, Modules: modules}
	for _, c := range []string{filepath.Join(filepath.Dir(vmlinuz), "config-"+k.Release), filepath.Join(modules, "config")} {
		if _, err := os.Stat(c); err == nil {
			k.Config = c
			break
		}
	}
	return k, nil
}

// fromDeb unpacks a linux-image package once (keyed by its file name) and
// finds the kernel in it.
func fromDeb(ctx context.Context, deb, dir string) (*kernel, error) {
	dst := filepath.Join(dir, strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if _, err := os.Stat(filepath.Join(dst, ".done")); err != nil {
		_ = os.RemoveAll(dst)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return nil, err
		}
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dst).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("unpack %s: %w: %s", deb, err, out)
		}
		if err := os.WriteFile(filepath.Join(dst, ".done"), nil, 0o644); err != nil {
			return nil, err
		}
	}
	images, _ := filepath.Glob(filepath.Join(dst, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return nil, fmt.Errorf("%s: want one boot/vmlinuz-*, found %d", deb, len(images))
	}
	release := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	k, err := fromDir(images[0], filepath.Join(dst, "lib", "modules", release))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", deb, err)
	}
	if c := filepath.Join(dst, "boot", "config-"+release); k.Config == "" {
		if _, err := os.Stat(c); err == nil {
			k.Config = c
		}
	}
	return k, nil
}

const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// aptCache is a private apt state (its own sources and lists), so kernels
// come from Debian's archive without touching the machine's apt setup.
type aptCache struct {
	dir, mirror string
}

func (a *aptCache) opts() []string {
	return []string{
		"-o", "Dir::Etc::sourcelist=" + filepath.Join(a.dir, "sources.list"),
		"-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(a.dir, "cache"),
		"-o", "APT::Get::List-Cleanup=0",
		"-o", "APT::Sandbox::User=root",
		"-qq",
	}
}

// update refreshes the lists once a day: bookworm has the 6.1 kernels,
// bookworm-backports the 6.12 ones.
func (a *aptCache) update(ctx context.Context) error {
	for _, d := range []string{"lists/partial", "cache/archives/partial", "debs"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	// Debian's keyring, named outright: on other distributions (an
	// Ubuntu runner with debian-archive-keyring installed) apt would not
	// trust Debian's archive otherwise.
	opt := ""
	if _, err := os.Stat(debianKeyring); err == nil {
		opt = "[signed-by=" + debianKeyring + "] "
	}
	sources := fmt.Sprintf("deb %[2]s%[1]s bookworm main\ndeb %[2]s%[1]s bookworm-backports main\n", a.mirror, opt)
	if err := os.WriteFile(filepath.Join(a.dir, "sources.list"), []byte(sources), 0o644); err != nil {
		return err
	}
	stamp := filepath.Join(a.dir, "updated")
	if st, err := os.Stat(stamp); err == nil && time.Since(st.ModTime()) < 24*time.Hour {
		return nil
	}
	cmd := exec.CommandContext(ctx, "apt-get", append(a.opts(), "update")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update (kernel lists): %w: %s", err, out)
	}
	return os.WriteFile(stamp, nil, 0o644)
}

// newest returns the newest linux-image package of a series ("6.1",
// "6.12"): the generic amd64 flavour, not cloud, rt, dbg or unsigned.
func (a *aptCache) newest(ctx context.Context, series string) (string, error) {
	cmd := exec.CommandContext(ctx, "apt-cache", append(a.opts(), "pkgnames", "linux-image-"+series+".")...)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache pkgnames: %w", err)
	}
	pkg := pickNewest(series, strings.Fields(string(out)))
	if pkg == "" {
		return "", fmt.Errorf("no linux-image package for %s in bookworm or bookworm-backports", series)
	}
	return pkg, nil
}

// pickNewest chooses among package names: linux-image-6.1.0-47-amd64,
// linux-image-6.12.57+deb12-amd64.
func pickNewest(series string, names []string) string {
	re := regexp.MustCompile(`^linux-image-` + regexp.QuoteMeta(series) + `\.[0-9][0-9.+a-z-]*-amd64$`)
	var ok []string
	for _, n := range names {
		if re.MatchString(n) && !strings.Contains(n, "-cloud-") && !strings.Contains(n, "-rt-") {
			ok = append(ok, n)
		}
	}
	if len(ok) == 0 {
		return ""
	}
	return slices.MaxFunc(ok, compareVersions)
}

var numbers = regexp.MustCompile(`[0-9]+|[^0-9]+`)

// compareVersions orders names by their numeric parts as numbers.
func compareVersions(a, b string) int {
	pa, pb := numbers.FindAllString(a, -1), numbers.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		switch {
		case ea == nil && eb == nil && na != nb:
			return na - nb
		case (ea != nil || eb != nil) && pa[i] != pb[i]:
			return strings.Compare(pa[i], pb[i])
		}
	}
	return len(pa) - len(pb)
}

// download fetches the package into the cache once.
func (a *aptCache) download(ctx context.Context, pkg string) (string, error) {
	dir := filepath.Join(a.dir, "debs")
	if m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb")); len(m) == 1 {
		return m[0], nil
	}
	cmd := exec.CommandContext(ctx, "apt-get", append(a.opts(), "download", pkg)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %w: %s", pkg, err, out)
	}
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(m) != 1 {
		return "", errors.New("apt-get download left no " + pkg + " package")
	}
	return m[0], nil
}
