package herdwal_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/internal/crashfs"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestRoundTripOnDisk(t *testing.T) {
	checkGoroutines(t)
	dir := filepath.Join(t.TempDir(), "a", "herd")
	start := map[string]herdwal.Cursor{"Young": {Epoch: "y1", Seq: 5}}
	opts := herdwal.Options{Epoch: "0123456789abcdef", Cursors: start, BootID: "boot-1"}
	l, r, err := herdwal.Open(dir, opts, func(herdwal.Record) error { return errors.New("nothing to restore") })
	if err != nil {
		t.Fatal(err)
	}
	if !r.Fresh || !r.Clean || r.Unsynced || r.Lossy || r.Epoch != "0123456789abcdef" || r.Records != 0 || len(r.Damage) != 0 {
		t.Errorf("fresh directory: %+v", r)
	}
	if !maps.Equal(r.Cursors, start) || !maps.Equal(l.Cursors(), start) {
		t.Errorf("fresh cursors: %v and %v, want %v", r.Cursors, l.Cursors(), start)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v, %v; want mode 0700", fi.Mode(), err)
	}

	want := makeRecs(1, 300, 40)
	for i := 0; i < len(want); i += 30 {
		if err := l.Write(entries(want[i : i+30]...)); err != nil {
			t.Fatal(err)
		}
		if err := l.SetCursor("Meeks", herdwal.Cursor{Epoch: "m1", Seq: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	l.SetCursor("Young", herdwal.Cursor{Epoch: "y1", Seq: 4}) // older: ignored
	l.SetCursor("Hill", herdwal.Cursor{Epoch: "h2", Seq: 1})
	cursors := map[string]herdwal.Cursor{"Meeks": {Epoch: "m1", Seq: 270}, "Young": {Epoch: "y1", Seq: 5}, "Hill": {Epoch: "h2", Seq: 1}}
	if !maps.Equal(l.Cursors(), cursors) {
		t.Errorf("cursors: %v, want %v", l.Cursors(), cursors)
	}
	if c, ok := l.Cursor("Meeks"); !ok || c != cursors["Meeks"] {
		t.Errorf("Cursor(Meeks): %v, %v", c, ok)
	}
	if _, ok := l.Cursor("Gasol"); ok {
		t.Error("Cursor(Gasol) found one")
	}
	if l.Dir() != dir || l.Epoch() != "0123456789abcdef" {
		t.Errorf("Dir, Epoch: %s, %s", l.Dir(), l.Epoch())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	var got restored
	l, r, err = herdwal.Open(dir, herdwal.Options{Epoch: "ignored", BootID: "boot-2"}, got.restore)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	equalRecs(t, "restored", got.recs, want)
	noDamage(t, r)
	if r.Fresh || !r.Clean || r.Unsynced || r.Lossy || r.Epoch != "0123456789abcdef" || r.Records != 300 || r.MaxSeq != 300 {
		t.Errorf("reopened: %+v", r)
	}
	if !maps.Equal(r.Cursors, cursors) || !maps.Equal(l.Cursors(), cursors) {
		t.Errorf("reopened cursors: %v and %v, want %v", r.Cursors, l.Cursors(), cursors)
	}
	for _, name := range []string{"lock", "meta", "log-0000000000000001", "log-0000000000000002"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v; want mode 0600", name, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "meta")); string(b) != "herd storage 1\nepoch 0123456789abcdef\n" {
		t.Errorf("meta: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "lock")); string(b) != pid()+"\n" {
		t.Errorf("lock file: %q, want the pid", b)
	}
}

func TestDrawsAnEpoch(t *testing.T) {
	f := crashfs.New()
	l, r, _ := open(t, herdwal.Options{FS: f})
	if len(r.Epoch) != 16 || l.Epoch() != r.Epoch || r.Epoch == "0000000000000000" {
		t.Errorf("drawn epoch %q", r.Epoch)
	}
	mustClose(t, l)
	l, r2, _ := open(t, herdwal.Options{FS: f.Crash()})
	if r2.Epoch != r.Epoch {
		t.Errorf("epoch after reopening: %s, want %s", r2.Epoch, r.Epoch)
	}
	mustClose(t, l)
	_, r3, _ := open(t, herdwal.Options{FS: crashfs.New()})
	if r3.Epoch == r.Epoch {
		t.Error("two directories drew the same epoch")
	}
}

func TestLockedByAnotherLog(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	l, _, err := herdwal.Open(dir, herdwal.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = herdwal.Open(dir, herdwal.Options{}, nil)
	want := fmt.Sprintf("herd storage %s: in use by process %s (lock file %s)", dir, pid(), filepath.Join(dir, "lock"))
	if !errors.Is(err, herdwal.ErrLocked) || err.Error() != want {
		t.Fatalf("second Open: %v\nwant %s, wrapping ErrLocked", err, want)
	}
	st, err := herdwal.Probe(dir, nil)
	if err != nil || st != (herdwal.DirState{Exists: true, HeldBy: pid()}) {
		t.Errorf("Probe while open: %+v, %v", st, err)
	}
	if err := st.Err(dir); !errors.Is(err, herdwal.ErrLocked) || err.Error() != want {
		t.Errorf("DirState.Err: %v, want %s", err, want)
	}
	mustClose(t, l)
	st, err = herdwal.Probe(dir, nil)
	if err != nil || st != (herdwal.DirState{Exists: true}) || st.Err(dir) != nil {
		t.Errorf("Probe after Close: %+v, %v", st, err)
	}
	l, _, err = herdwal.Open(dir, herdwal.Options{}, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	mustClose(t, l)
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *crashfs.FS)
		want  herdwal.DirState
	}{
		{"missing", func(t *testing.T, f *crashfs.FS) {}, herdwal.DirState{Empty: true}},
		{"empty", func(t *testing.T, f *crashfs.FS) { f.MkdirAll(dir) }, herdwal.DirState{Exists: true, Empty: true}},
		{"lock file alone", func(t *testing.T, f *crashfs.FS) {
			f.MkdirAll(dir)
			withFile(t, f, dir+"/lock", []byte("1\n"))
		}, herdwal.DirState{Exists: true, Empty: true}},
		{"half-written meta alone", func(t *testing.T, f *crashfs.FS) {
			f.MkdirAll(dir)
			withFile(t, f, dir+"/meta.tmp", []byte("herd"))
		}, herdwal.DirState{Exists: true, Empty: true}},
		{"other files", func(t *testing.T, f *crashfs.FS) {
			f.MkdirAll(dir)
			withFile(t, f, dir+"/notes.txt", nil)
		}, herdwal.DirState{Exists: true, Empty: true}},
		{"meta", func(t *testing.T, f *crashfs.FS) {
			f.MkdirAll(dir)
			withFile(t, f, dir+"/meta", nil)
		}, herdwal.DirState{Exists: true}},
		{"a segment", func(t *testing.T, f *crashfs.FS) {
			f.MkdirAll(dir)
			withFile(t, f, dir+"/log-0000000000000003", nil)
		}, herdwal.DirState{Exists: true}},
		{"a snapshot", func(t *testing.T, f *crashfs.FS) {
			f.MkdirAll(dir)
			withFile(t, f, dir+"/snapshot-0000000000000003", nil)
		}, herdwal.DirState{Exists: true}},
		{"held", func(t *testing.T, f *crashfs.FS) {
			l, _, _ := open(t, herdwal.Options{FS: f})
			t.Cleanup(func() { l.Close() })
		}, herdwal.DirState{Exists: true, HeldBy: pid()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := crashfs.New()
			tt.setup(t, f)
			var ops []crashfs.Event
			f.SetHook(func(e crashfs.Event) error {
				ops = append(ops, e)
				return nil
			})
			before := f.Crash()
			st, err := herdwal.Probe(dir, f)
			if err != nil || st != tt.want {
				t.Errorf("Probe: %+v, %v; want %+v", st, err, tt.want)
			}
			f.SetHook(nil)
			for _, e := range ops {
				switch e.Op {
				case crashfs.OpReadDir, crashfs.OpLock, crashfs.OpOpen, crashfs.OpRead, crashfs.OpClose:
				default:
					t.Errorf("Probe did %s %s", e.Op, e.Name)
				}
			}
			if a, b := mustNames(t, before), mustNames(t, f.Crash()); !slices.Equal(a, b) {
				t.Errorf("Probe changed the directory: %q, then %q", a, b)
			}
		})
	}
}

func mustNames(t *testing.T, f *crashfs.FS) []string {
	names, err := f.ReadDir(dir)
	if err != nil {
		return nil
	}
	return names
}

func TestAfterClose(t *testing.T) {
	checkGoroutines(t)
	tb := newTable()
	l, _, _ := open(t, herdwal.Options{FS: crashfs.New(), Source: tb.source})
	mustClose(t, l)
	for name, err := range map[string]error{
		"Write":     l.Write(makeRecs(1, 1, 1)[0].entry()),
		"Write nil": l.Write(nil),
		"SetCursor": l.SetCursor("Meeks", herdwal.Cursor{Epoch: "e", Seq: 1}),
		"Sync":      l.Sync(),
		"Snapshot":  l.Snapshot(),
	} {
		if !errors.Is(err, herdwal.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if _, ok := l.Cursor("Meeks"); ok {
		t.Error("a cursor set after Close was kept")
	}
}

func TestWriteRefusesMalformedEntries(t *testing.T) {
	f := crashfs.New()
	l, _, _ := open(t, herdwal.Options{FS: f, Fsync: herdwal.FsyncAlways})
	good := makeRecs(1, 2, 2)
	mustWrite(t, l, good[0])
	b := entries(good[1])
	if err := l.Write(b[:len(b)-1]); err == nil {
		t.Error("Write took a partial entry")
	}
	if err := l.Write(append(entries(good[1]), 1, 2, 3)); err == nil {
		t.Error("Write took trailing bytes")
	}
	mustClose(t, l)
	_, r, got := open(t, herdwal.Options{FS: f.Crash()})
	noDamage(t, r)
	equalRecs(t, "restored", got, good[:1])
}

func TestConcurrentWriters(t *testing.T) {
	for _, level := range []herdwal.Fsync{herdwal.FsyncAlways, herdwal.FsyncEverySec, herdwal.FsyncOff} {
		t.Run(level.String(), func(t *testing.T) {
			checkGoroutines(t)
			f := crashfs.New()
			l, _, _ := open(t, herdwal.Options{FS: f, Fsync: level, SegmentBytes: 16 << 10})
			const writers, batches, batch = 8, 50, 7
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for b := range batches {
						seq := uint64(1 + (w*batches+b)*batch)
						if err := l.Write(entries(makeRecs(seq, batch, 1000)...)); err != nil {
							t.Error(err)
							return
						}
						l.SetCursor(fmt.Sprint("peer-", w), herdwal.Cursor{Epoch: "e", Seq: seq})
					}
				})
			}
			wg.Wait()
			st := l.Stats()
			if st.Segments < 3 || st.Records != writers*batches*batch {
				t.Errorf("stats after writing: %d segments, %d records; want several segments, %d records", st.Segments, st.Records, writers*batches*batch)
			}
			cursors := l.Cursors()
			mustClose(t, l)
			_, r, got := open(t, herdwal.Options{FS: f.Crash()})
			noDamage(t, r)
			slices.SortFunc(got, func(a, b rec) int { return int(a.Seq) - int(b.Seq) })
			equalRecs(t, "restored", got, makeRecs(1, writers*batches*batch, 1000))
			if !maps.Equal(r.Cursors, cursors) {
				t.Errorf("cursors: %v, want %v", r.Cursors, cursors)
			}
		})
	}
}

func TestCursorWrittenWithoutWrites(t *testing.T) {
	checkGoroutines(t)
	f := crashfs.New()
	l, _, _ := open(t, herdwal.Options{FS: f})
	size := l.Stats().LogBytes
	l.SetCursor("Meeks", herdwal.Cursor{Epoch: "e", Seq: 9})
	// No Write comes to carry it: the log writes it by itself.
	waitFor(t, "the cursor to be written", func() bool { return l.Stats().LogBytes > size })
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	_, r, _ := open(t, herdwal.Options{FS: f.Crash()})
	if c := r.Cursors["Meeks"]; c != (herdwal.Cursor{Epoch: "e", Seq: 9}) {
		t.Errorf("cursor after a crash: %v", r.Cursors)
	}
}

func TestCursorAdvances(t *testing.T) {
	old := herdwal.Cursor{Epoch: "a", Seq: 10}
	tests := []struct {
		c     herdwal.Cursor
		known bool
		want  bool
	}{
		{herdwal.Cursor{Epoch: "a", Seq: 11}, true, true},
		{herdwal.Cursor{Epoch: "a", Seq: 10}, true, false},
		{herdwal.Cursor{Epoch: "a", Seq: 9}, true, false},
		{herdwal.Cursor{Epoch: "b", Seq: 1}, true, true},
		{herdwal.Cursor{Epoch: "a", Seq: 1}, false, true},
	}
	for _, tt := range tests {
		if got := tt.c.Advances(old, tt.known); got != tt.want {
			t.Errorf("%v.Advances(%v, %v) = %v, want %v", tt.c, old, tt.known, got, tt.want)
		}
	}
}

func TestParseFsync(t *testing.T) {
	for _, f := range []herdwal.Fsync{herdwal.FsyncAlways, herdwal.FsyncEverySec, herdwal.FsyncOff} {
		if got, err := herdwal.ParseFsync(f.String()); err != nil || got != f {
			t.Errorf("ParseFsync(%q) = %v, %v", f.String(), got, err)
		}
	}
	for _, s := range []string{"", "Always", "no", "1"} {
		if _, err := herdwal.ParseFsync(s); err == nil {
			t.Errorf("ParseFsync(%q) succeeded", s)
		}
	}
	if _, _, err := herdwal.Open(dir, herdwal.Options{FS: crashfs.New(), Fsync: 7}, nil); err == nil {
		t.Error("Open took an unknown fsync level")
	}
}

func TestSetFsync(t *testing.T) {
	checkGoroutines(t)
	f := crashfs.New()
	opts := herdwal.Options{FS: f, Fsync: herdwal.FsyncOff}
	herdwal.SetTiming(&opts, time.Hour, time.Hour, time.Millisecond)
	l, _, _ := open(t, opts)
	rs := makeRecs(1, 2, 2)
	mustWrite(t, l, rs[0])
	l.SetFsync(herdwal.FsyncAlways)
	if st := l.Stats(); st.Fsync != "always" {
		t.Errorf("Stats.Fsync: %s", st.Fsync)
	}
	mustWrite(t, l, rs[1])
	_, _, got := open(t, herdwal.Options{FS: f.Crash()})
	// The fsync of the second write made the first durable too.
	equalRecs(t, "restored after a crash", got, rs)
}

func TestRetriesFailedWrites(t *testing.T) {
	for _, op := range []crashfs.Op{crashfs.OpWrite, crashfs.OpSync} {
		t.Run(string(op), func(t *testing.T) {
			checkGoroutines(t)
			f := crashfs.New()
			core, logs := observer.New(zap.InfoLevel)
			opts := herdwal.Options{FS: f, Fsync: herdwal.FsyncAlways, Logger: zap.New(core)}
			herdwal.SetTiming(&opts, time.Hour, time.Hour, time.Millisecond)
			l, _, _ := open(t, opts)
			rs := makeRecs(1, 20, 5)
			mustWrite(t, l, rs[:10]...)

			var mu sync.Mutex
			failures := 0
			f.SetHook(func(e crashfs.Event) error {
				mu.Lock()
				defer mu.Unlock()
				if e.Op == op && filepath.Base(e.Name) != "lock" {
					failures++
					return errors.New("injected I/O error")
				}
				return nil
			})
			done := make(chan error)
			go func() { done <- l.Write(entries(rs[10:]...)) }()
			waitFor(t, "Stats.Error", func() bool { return l.Stats().Error != "" })
			select {
			case err := <-done:
				t.Fatalf("Write returned %v while its bytes could not be written", err)
			default:
			}
			if st := l.Stats(); !strings.Contains(st.Error, "injected I/O error") || !strings.Contains(st.Error, "log-") {
				t.Errorf("Stats.Error %q does not name the file and the error", st.Error)
			}
			waitFor(t, "retries", func() bool { mu.Lock(); defer mu.Unlock(); return failures >= 3 })
			f.SetHook(nil)
			if err := <-done; err != nil {
				t.Fatalf("Write after the disk recovered: %v", err)
			}
			if st := l.Stats(); st.Error != "" {
				t.Errorf("Stats.Error after recovering: %q", st.Error)
			}
			// One warning for all the retries, naming the file and error.
			warns := logs.FilterLevelExact(zap.WarnLevel).All()
			if len(warns) != 1 || !strings.Contains(warns[0].ContextMap()["file"].(string), "log-") ||
				!strings.Contains(fmt.Sprint(warns[0].ContextMap()["error"]), "injected I/O error") {
				t.Errorf("warnings: %v", warns)
			}
			if n := logs.FilterMessage("herd storage: works again").Len(); n != 1 {
				t.Errorf("%d messages that writing works again, want 1", n)
			}
			_, r, got := open(t, herdwal.Options{FS: f.Crash()})
			noDamage(t, r)
			equalRecs(t, "restored after a crash", got, rs)
		})
	}
}

func TestCloseEndsAStuckWrite(t *testing.T) {
	checkGoroutines(t)
	f := crashfs.New()
	opts := herdwal.Options{FS: f, Fsync: herdwal.FsyncAlways}
	herdwal.SetTiming(&opts, time.Hour, time.Hour, time.Millisecond)
	l, _, _ := open(t, opts)
	f.SetHook(func(e crashfs.Event) error {
		if e.Op == crashfs.OpWrite && filepath.Base(e.Name) != "lock" {
			return errors.New("disk gone")
		}
		return nil
	})
	done := make(chan error)
	go func() { done <- l.Write(makeRecs(1, 1, 1)[0].entry()) }()
	waitFor(t, "Stats.Error", func() bool { return l.Stats().Error != "" })
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Errorf("Close: %v, want the write's error", err)
	}
	if err := <-done; !errors.Is(err, herdwal.ErrClosed) {
		t.Errorf("stuck Write: %v, want ErrClosed", err)
	}
	f.SetHook(nil)
	// The directory is unlocked all the same.
	l, _, _ = open(t, herdwal.Options{FS: f})
	mustClose(t, l)
}

func TestStatsCountTheDirectory(t *testing.T) {
	checkGoroutines(t)
	f := crashfs.New()
	tb := newTable()
	var mu sync.Mutex
	var fsyncs, snaps int
	opts := herdwal.Options{
		FS: f, Fsync: herdwal.FsyncAlways, SegmentBytes: 4 << 10, Source: tb.source,
		ObserveFsync:    func(time.Duration) { mu.Lock(); fsyncs++; mu.Unlock() },
		ObserveSnapshot: func(time.Duration) { mu.Lock(); snaps++; mu.Unlock() },
	}
	herdwal.SetTiming(&opts, time.Hour, time.Hour, time.Millisecond)
	l, _, _ := open(t, opts)
	rs := makeRecs(1, 400, 50)
	for i, r := range rs {
		tb.put(r)
		mustWrite(t, l, r)
		if i == 250 {
			if err := l.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := l.Stats(); st.Error != "" || st.Fsync != "always" {
		t.Errorf("stats while open: %+v", st)
	}
	// Closed, the log's background work (such as beginning a segment) is
	// done, and the stats hold still.
	mustClose(t, l)
	st := l.Stats()
	if st.DiskBytes != dirBytes(t, f) {
		t.Errorf("DiskBytes %d, the files hold %d", st.DiskBytes, dirBytes(t, f))
	}
	if n := len(segments(t, f)); st.Segments != n || n < 3 {
		t.Errorf("Segments %d, the directory holds %d", st.Segments, n)
	}
	var log int64
	for _, s := range segments(t, f) {
		log += int64(len(readFile(t, f, s)))
	}
	if st.LogBytes != log {
		t.Errorf("LogBytes %d, the segments hold %d", st.LogBytes, log)
	}
	if st.Records != 50+149 || st.Snapshots != 1 || st.LastSnapshotRecords != 50 || st.LastSnapshot.IsZero() {
		t.Errorf("stats: %+v; want 50 records in the snapshot and 149 after it", st)
	}
	if snap := snapshots(t, f); len(snap) != 1 || st.LastSnapshotBytes != int64(len(readFile(t, f, snap[0]))) {
		t.Errorf("snapshots %q, LastSnapshotBytes %d", snap, st.LastSnapshotBytes)
	}
	mu.Lock()
	if int64(fsyncs) != st.Fsyncs || fsyncs < 400 || snaps != 1 {
		t.Errorf("observed %d fsyncs and %d snapshots; Stats has %d fsyncs", fsyncs, snaps, st.Fsyncs)
	}
	mu.Unlock()
	if st.Dir != dir || st.Epoch != l.Epoch() || st.Fsync != "always" || st.Error != "" || st.BytesWritten < log {
		t.Errorf("stats: %+v", st)
	}
}
