package crashfs_test

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/internal/crashfs"
)

func mustOpen(t *testing.T, f *crashfs.FS, name string, flag int) herdwal.File {
	t.Helper()
	fl, err := f.OpenFile(name, flag)
	if err != nil {
		t.Fatal(err)
	}
	return fl
}

func write(t *testing.T, fl herdwal.File, s string) {
	t.Helper()
	if _, err := io.WriteString(fl, s); err != nil {
		t.Fatal(err)
	}
}

func content(t *testing.T, f *crashfs.FS, name string) (string, bool) {
	t.Helper()
	b, err := f.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func newDir(t *testing.T) *crashfs.FS {
	t.Helper()
	f := crashfs.New()
	if err := f.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCrashKeepsOnlyDurable(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, f *crashfs.FS)
		want map[string]string // after a crash; a missing name is gone
	}{
		{"unsynced file and name are lost", func(t *testing.T, f *crashfs.FS) {
			write(t, mustOpen(t, f, "/d/a", os.O_WRONLY|os.O_CREATE), "x")
		}, map[string]string{}},
		{"synced content without directory sync is lost", func(t *testing.T, f *crashfs.FS) {
			fl := mustOpen(t, f, "/d/a", os.O_WRONLY|os.O_CREATE)
			write(t, fl, "x")
			fl.Sync()
		}, map[string]string{}},
		{"name synced before content keeps it empty", func(t *testing.T, f *crashfs.FS) {
			fl := mustOpen(t, f, "/d/a", os.O_WRONLY|os.O_CREATE)
			f.SyncDir("/d")
			write(t, fl, "x")
		}, map[string]string{"a": ""}},
		{"content up to the last sync", func(t *testing.T, f *crashfs.FS) {
			fl := mustOpen(t, f, "/d/a", os.O_WRONLY|os.O_CREATE)
			f.SyncDir("/d")
			write(t, fl, "abc")
			fl.Sync()
			write(t, fl, "def")
		}, map[string]string{"a": "abc"}},
		{"truncate is durable only at sync", func(t *testing.T, f *crashfs.FS) {
			f.WriteFile("/d/a", []byte("abcdef"))
			f.WriteFile("/d/b", []byte("abcdef"))
			fa := mustOpen(t, f, "/d/a", os.O_RDWR)
			fa.Truncate(2)
			fb := mustOpen(t, f, "/d/b", os.O_RDWR)
			fb.Truncate(2)
			fb.Sync()
		}, map[string]string{"a": "abcdef", "b": "ab"}},
		{"overwrite after sync keeps the synced bytes", func(t *testing.T, f *crashfs.FS) {
			f.WriteFile("/d/a", []byte("abcdef"))
			fl := mustOpen(t, f, "/d/a", os.O_RDWR)
			write(t, fl, "XY")
		}, map[string]string{"a": "abcdef"}},
		{"rename without directory sync keeps the old name", func(t *testing.T, f *crashfs.FS) {
			f.WriteFile("/d/a.tmp", []byte("new"))
			f.Rename("/d/a.tmp", "/d/a")
		}, map[string]string{"a.tmp": "new"}},
		{"rename with directory sync", func(t *testing.T, f *crashfs.FS) {
			f.WriteFile("/d/a", []byte("old"))
			f.WriteFile("/d/a.tmp", []byte("new"))
			f.Rename("/d/a.tmp", "/d/a")
			f.SyncDir("/d")
		}, map[string]string{"a": "new"}},
		{"remove without directory sync comes back", func(t *testing.T, f *crashfs.FS) {
			f.WriteFile("/d/a", []byte("x"))
			f.Remove("/d/a")
		}, map[string]string{"a": "x"}},
		{"remove with directory sync", func(t *testing.T, f *crashfs.FS) {
			f.WriteFile("/d/a", []byte("x"))
			f.Remove("/d/a")
			f.SyncDir("/d")
		}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDir(t)
			tt.do(t, f)
			c := f.Crash()
			names, err := c.ReadDir("/d")
			if err != nil {
				t.Fatal(err)
			}
			if want := slices.Sorted(maps.Keys(tt.want)); !slices.Equal(names, want) {
				t.Fatalf("names after crash: %q, want %q", names, want)
			}
			for name, want := range tt.want {
				if got, _ := content(t, c, "/d/"+name); got != want {
					t.Errorf("%s after crash: %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestCrashLeavesTheOriginalRunning(t *testing.T) {
	f := newDir(t)
	fl := mustOpen(t, f, "/d/a", os.O_WRONLY|os.O_CREATE)
	f.SyncDir("/d")
	write(t, fl, "abc")
	fl.Sync()
	c := f.Crash()
	write(t, fl, "def")
	if got, _ := content(t, f, "/d/a"); got != "abcdef" {
		t.Errorf("original: %q, want abcdef", got)
	}
	if got, _ := content(t, c, "/d/a"); got != "abc" {
		t.Errorf("crashed: %q, want abc", got)
	}
	cf := mustOpen(t, c, "/d/a", os.O_WRONLY)
	write(t, cf, "X")
	if got, _ := content(t, f, "/d/a"); got != "abcdef" {
		t.Errorf("original after writing the crashed copy: %q, want abcdef", got)
	}
}

func TestCrashTornKeepsAPrefix(t *testing.T) {
	f := newDir(t)
	fl := mustOpen(t, f, "/d/a", os.O_WRONLY|os.O_CREATE)
	f.SyncDir("/d")
	write(t, fl, "abc")
	fl.Sync()
	write(t, fl, "defghij")
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	for range 200 {
		got, _ := content(t, f.CrashTorn(r), "/d/a")
		if len(got) < 3 || got != "abcdefghij"[:len(got)] {
			t.Fatalf("torn crash: %q, want a prefix of abcdefghij of at least abc", got)
		}
		seen[got] = true
	}
	if len(seen) < 4 {
		t.Errorf("torn crashes kept only %d different prefixes", len(seen))
	}
}

func TestLock(t *testing.T) {
	f := newDir(t)
	l1, err := f.Lock("/d/lock")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Lock("/d/lock"); !errors.Is(err, herdwal.ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	f.SyncDir("/d")
	c := f.Crash()
	l2, err := c.Lock("/d/lock")
	if err != nil {
		t.Fatalf("lock after crash: %v", err)
	}
	l2.Close()
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	l3, err := f.Lock("/d/lock")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l3.Close()
}

func TestOpenFlags(t *testing.T) {
	f := newDir(t)
	if _, err := f.OpenFile("/d/a", os.O_RDONLY); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open missing: %v, want ErrNotExist", err)
	}
	if _, err := f.OpenFile("/nodir/a", os.O_WRONLY|os.O_CREATE); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("create in a missing directory: %v, want ErrNotExist", err)
	}
	fl := mustOpen(t, f, "/d/a", os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	write(t, fl, "abc")
	if _, err := f.OpenFile("/d/a", os.O_WRONLY|os.O_CREATE|os.O_EXCL); !errors.Is(err, fs.ErrExist) {
		t.Errorf("exclusive create of an existing file: %v, want ErrExist", err)
	}
	if _, err := fl.Read(make([]byte, 1)); err == nil {
		t.Error("read of a write-only file succeeded")
	}
	r := mustOpen(t, f, "/d/a", os.O_RDONLY)
	if b, err := io.ReadAll(r); err != nil || string(b) != "abc" {
		t.Errorf("read back: %q, %v", b, err)
	}
	if _, err := r.Write([]byte("x")); err == nil {
		t.Error("write of a read-only file succeeded")
	}
	mustOpen(t, f, "/d/a", os.O_WRONLY|os.O_TRUNC)
	if got, _ := content(t, f, "/d/a"); got != "" {
		t.Errorf("after O_TRUNC: %q", got)
	}
	fl.Close()
	if _, err := fl.Write([]byte("x")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("write after close: %v, want ErrClosed", err)
	}
	names, _ := f.ReadDir("/")
	if !slices.Equal(names, []string{"d"}) {
		t.Errorf("root holds %q, want [d]", names)
	}
}

func TestHookFailsOperations(t *testing.T) {
	f := newDir(t)
	fl := mustOpen(t, f, "/d/a", os.O_WRONLY|os.O_CREATE)
	boom := errors.New("boom")
	f.SetHook(func(e crashfs.Event) error {
		if e.Op == crashfs.OpWrite || e.Op == crashfs.OpSync {
			return boom
		}
		return nil
	})
	n, err := fl.Write([]byte("abcd"))
	if !errors.Is(err, boom) || n != 2 {
		t.Errorf("failed write: %d, %v; want a short write of 2 bytes and boom", n, err)
	}
	if err := fl.Sync(); !errors.Is(err, boom) {
		t.Errorf("failed sync: %v, want boom", err)
	}
	f.SetHook(nil)
	if got, _ := content(t, f, "/d/a"); got != "ab" {
		t.Errorf("after a short write: %q, want ab", got)
	}
}
