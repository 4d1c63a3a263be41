package harness

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func threadNetns(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestDoRunsInsideTheNamespace(t *testing.T) {
	needRoot(t)
	ns, err := NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var inside uint64
	if err := ns.Do(func() error { inside = threadNetns(t, "/proc/thread-self/ns/net"); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != ns.Inode() {
		t.Fatalf("Do ran in net:[%d], want %s", inside, ns)
	}
	if own := threadNetns(t, "/proc/self/ns/net"); own == ns.Inode() {
		t.Fatal("the process's main thread moved into the lab namespace")
	}
}

func TestDoReturnsTheFunctionsError(t *testing.T) {
	needRoot(t)
	ns, err := NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	want := errors.New("boom")
	if err := ns.Do(func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do = %v, want %v", err, want)
	}
	if err := ns.Do(func() error { panic("inside") }); err == nil {
		t.Fatal("a panic inside Do must come back as an error")
	}
}

// No thread of the process may be left in a lab namespace once it is
// closed (the leak CNI's pkg/ns tests for).
func TestNoThreadLeftInAClosedNamespace(t *testing.T) {
	needRoot(t)
	own := threadNetns(t, "/proc/self/ns/net")
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns, err := NewNamespace()
			if err != nil {
				t.Error(err)
				return
			}
			for range 5 {
				_ = ns.Do(func() error { return nil })
			}
			if err := ns.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	for _, task := range tasks {
		var st unix.Stat_t
		if unix.Stat(task, &st) == nil && st.Ino != own {
			t.Errorf("%s is in net:[%d], not the process's net:[%d]", task, st.Ino, own)
		}
	}
}

func TestClosedNamespaceRefusesWork(t *testing.T) {
	needRoot(t)
	ns, err := NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := ns.Do(func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close = %v, want ErrClosed", err)
	}
}

func TestNamespaceCookieMatchesTheKernels(t *testing.T) {
	needRoot(t)
	a, err := NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewNamespace()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Cookie() == 0 || a.Cookie() == b.Cookie() || a.Inode() == b.Inode() {
		t.Fatalf("cookies %d %d, inodes %d %d: must be set and distinct", a.Cookie(), b.Cookie(), a.Inode(), b.Inode())
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip(err)
	}
}
