package herdwal_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/internal/crashfs"
)

func TestPowerCutAlways(t *testing.T) {
	checkGoroutines(t)
	f := crashfs.New()
	l, _, _ := open(t, herdwal.Options{FS: f, Fsync: herdwal.FsyncAlways, SegmentBytes: 8 << 10})
	const writers, batch = 8, 4
	var (
		crashed atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		acked   []rec // returned before the crash began
		next    atomic.Uint64
	)
	for range writers {
		wg.Go(func() {
			for {
				seq := next.Add(batch) - batch + 1
				rs := makeRecs(seq, batch, 1000)
				if err := l.Write(entries(rs...)); err != nil {
					return // closed
				}
				if crashed.Load() {
					return
				}
				mu.Lock()
				acked = append(acked, rs...)
				mu.Unlock()
			}
		})
	}
	waitFor(t, "writes", func() bool { return l.Stats().Segments >= 3 })
	crashed.Store(true)
	c := f.Crash()
	mu.Lock()
	want := slices.Clone(acked)
	mu.Unlock()
	l.Close()
	wg.Wait()

	written := map[uint64]rec{}
	for _, r := range makeRecs(1, int(next.Load()), 1000) {
		written[r.Seq] = r
	}
	_, r, got := open(t, herdwal.Options{FS: c})
	have := map[uint64]bool{}
	for _, x := range got {
		if written[x.Seq] != x {
			t.Fatalf("restored %+v, which was never written", x)
		}
		have[x.Seq] = true
	}
	for _, x := range want {
		if !have[x.Seq] {
			t.Fatalf("record %d was acknowledged before the crash but is lost (%d of %d acknowledged restored)", x.Seq, len(got), len(want))
		}
	}
	if r.Lossy || r.Clean {
		t.Errorf("recovery %+v", r)
	}
	if len(want) < 100 {
		t.Errorf("only %d records acknowledged before the crash", len(want))
	}
}

// TestPowerCutEverySec runs on a fake clock: what FsyncEverySec loses is
// bounded by its second.
func TestPowerCutEverySec(t *testing.T) {
	checkGoroutines(t)
	synctest.Test(t, func(t *testing.T) {
		f := crashfs.New()
		var fsyncs atomic.Int64
		l, _, err := herdwal.Open(dir, herdwal.Options{FS: f, ObserveFsync: func(time.Duration) { fsyncs.Add(1) }}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rs := makeRecs(1, 20, 20)
		mustWrite(t, l, rs[:10]...)
		// Written, not synced: a power cut now loses it.
		_, _, got := openClosed(t, f.Crash())
		equalRecs(t, "restored after a crash right after Write", got, nil)

		time.Sleep(1100 * time.Millisecond)
		synctest.Wait()
		if fsyncs.Load() != 1 {
			t.Errorf("%d fsyncs in the first second, want 1", fsyncs.Load())
		}
		_, _, got = openClosed(t, f.Crash())
		equalRecs(t, "restored after a crash a second after Write", got, rs[:10])

		mustWrite(t, l, rs[10:]...)
		time.Sleep(800 * time.Millisecond) // the next fsync is due at 2 s
		synctest.Wait()
		_, _, got = openClosed(t, f.Crash())
		equalRecs(t, "restored after a crash 0.8 s after the second Write", got, rs[:10])
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		_, _, got = openClosed(t, f.Crash())
		equalRecs(t, "restored after a crash 1.1 s after the second Write", got, rs)

		// Nothing written: no more fsyncs.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if fsyncs.Load() != 2 {
			t.Errorf("%d fsyncs, want 2: one for each second with writes", fsyncs.Load())
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// openClosed opens f, closes the log and returns what it restored.
func openClosed(t *testing.T, f *crashfs.FS) (*herdwal.Log, herdwal.Recovery, []rec) {
	t.Helper()
	var got restored
	l, r, err := herdwal.Open(dir, herdwal.Options{FS: f}, got.restore)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return l, r, got.recs
}

// TestPowerCutOff runs on a fake clock: FsyncOff never fsyncs by itself,
// but a segment is synced before the next one begins.
func TestPowerCutOff(t *testing.T) {
	checkGoroutines(t)
	synctest.Test(t, func(t *testing.T) {
		f := crashfs.New()
		l, _, err := herdwal.Open(dir, herdwal.Options{FS: f, Fsync: herdwal.FsyncOff, SegmentBytes: 4 << 10}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rs := makeRecs(1, 100, 100)
		mustWrite(t, l, rs[0])
		time.Sleep(5 * time.Second)
		synctest.Wait()
		_, _, got := openClosed(t, f.Crash())
		equalRecs(t, "restored after a crash", got, nil)

		for _, r := range rs[1:] {
			mustWrite(t, l, r)
		}
		synctest.Wait()
		segs := l.Stats().Segments
		if segs < 2 {
			t.Fatalf("%d segments after writing 100 records, want more", segs)
		}
		_, _, got = openClosed(t, f.Crash())
		if len(got) < (segs-1)*(4<<10)/200 || !slices.Equal(got, rs[:len(got)]) {
			t.Errorf("restored %d records after a crash with %d segments, want those of the first %d", len(got), segs, segs-1)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		_, _, got = openClosed(t, f.Crash())
		equalRecs(t, "restored after Close and a crash", got, rs)
	})
}

// TestPowerCutDuringSnapshot cuts the power at each step of a snapshot: the
// table survives whole every time.
func TestPowerCutDuringSnapshot(t *testing.T) {
	checkGoroutines(t)
	f := crashfs.New()
	tb := newTable()
	opts := herdwal.Options{FS: f, Fsync: herdwal.FsyncAlways, Source: tb.source}
	herdwal.SetTiming(&opts, time.Hour, time.Hour, time.Millisecond)
	l, _, _ := open(t, opts)
	// Two snapshots: the second one replaces the first and its segments.
	for round := range 2 {
		for _, r := range makeRecs(uint64(1+round*50), 50, 20) {
			tb.put(r)
			mustWrite(t, l, r)
		}
		if round == 0 {
			if err := l.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := tb.snapshot()

	type cut struct {
		step string
		fs   *crashfs.FS
	}
	var cuts []cut
	var renamed bool
	f.SetHook(func(e crashfs.Event) error {
		switch {
		case e.Op == crashfs.OpRename:
			cuts = append(cuts, cut{"before rename", f.Crash()})
			renamed = true
		case e.Op == crashfs.OpSyncDir && renamed:
			cuts = append(cuts, cut{"after rename, before directory sync", f.Crash()})
			renamed = false
		case e.Op == crashfs.OpRemove:
			cuts = append(cuts, cut{"before removing " + filepath.Base(e.Name), f.Crash()})
		case e.Op == crashfs.OpSync && strings.Contains(e.Name, "snapshot"):
			cuts = append(cuts, cut{"before syncing the snapshot", f.Crash()})
		}
		return nil
	})
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	f.SetHook(nil)
	cuts = append(cuts, cut{"after the snapshot", f.Crash()})
	if len(cuts) < 6 {
		t.Fatalf("%d steps seen", len(cuts))
	}
	for _, c := range cuts {
		t.Run(c.step, func(t *testing.T) {
			got := newTable()
			l, r, err := herdwal.Open(dir, herdwal.Options{FS: c.fs}, got.restore)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			equalTables(t, "restored", got.snapshot(), want)
			if r.Lossy {
				t.Errorf("lossy: %v", r.Damage)
			}
			for _, d := range r.Damage {
				if d.Problem != "half-written snapshot removed" {
					t.Errorf("damage: %s", d)
				}
			}
		})
	}
}

// TestPowerCutAtEveryStep cuts the power before every operation of a
// workload of writes, new segments and snapshots under FsyncAlways, keeping
// sometimes a torn part of what was not synced: every time, recovery
// restores every acknowledged record, and nothing not written.
func TestPowerCutAtEveryStep(t *testing.T) {
	checkGoroutines(t)
	f := crashfs.New()
	tb := newTable()
	opts := herdwal.Options{FS: f, Fsync: herdwal.FsyncAlways, Source: tb.source, SegmentBytes: 1 << 10}
	herdwal.SetTiming(&opts, time.Hour, time.Hour, time.Millisecond)
	l, _, _ := open(t, opts)
	const batch, batches = 3, 60
	recs := makeRecs(1, batch*batches, 15)

	type cut struct {
		op    crashfs.Op
		name  string
		acked int
		fs    *crashfs.FS
	}
	var (
		mu    sync.Mutex
		cuts  []cut
		acked atomic.Int64
	)
	r := newRand(7)
	f.SetHook(func(e crashfs.Event) error {
		if e.Op == crashfs.OpRead || e.Op == crashfs.OpClose {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		c := cut{op: e.Op, name: filepath.Base(e.Name), acked: int(acked.Load())}
		if r.IntN(2) == 0 {
			c.fs = f.Crash()
		} else {
			c.fs = f.CrashTorn(r)
		}
		cuts = append(cuts, c)
		return nil
	})
	for i := range batches {
		rs := recs[i*batch : (i+1)*batch]
		for _, x := range rs {
			tb.put(x)
		}
		mustWrite(t, l, rs...)
		acked.Store(int64((i + 1) * batch))
		if i%20 == 19 {
			if err := l.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustClose(t, l)
	f.SetHook(nil)

	written := map[uint64]rec{}
	for _, x := range recs {
		written[x.Seq] = x
	}
	ops := map[crashfs.Op]int{}
	for _, c := range cuts {
		ops[c.op]++
		what := fmt.Sprintf("cut before %s %s with %d acknowledged", c.op, c.name, c.acked)
		var got restored
		l, r, err := herdwal.Open(dir, herdwal.Options{FS: c.fs}, got.restore)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		l.Close()
		for _, x := range got.recs {
			if written[x.Seq] != x {
				t.Fatalf("%s: restored %+v, which was never written", what, x)
			}
		}
		if r.Lossy {
			t.Fatalf("%s: lossy: %v", what, r.Damage)
		}
		// The table is that of the acknowledged records, or of those and
		// some of the batch being written.
		table := newest(got.recs)
		ok := false
		for n := c.acked; n <= min(c.acked+batch, len(recs)) && !ok; n++ {
			ok = maps.Equal(table, newest(recs[:n]))
		}
		if !ok {
			equalTables(t, what, table, newest(recs[:c.acked]))
		}
	}
	for _, op := range []crashfs.Op{crashfs.OpWrite, crashfs.OpSync, crashfs.OpSyncDir, crashfs.OpRename, crashfs.OpRemove, crashfs.OpOpen} {
		if ops[op] == 0 {
			t.Errorf("no cut before a %s: %v", op, ops)
		}
	}
}

// TestPowerCutAppend runs on a fake clock: what Append leaves pending is
// written within the append delay (at once past the bound on what may wait)
// and fsynced within the second at every level but FsyncOff; a Write that
// follows it carries it, in order.
func TestPowerCutAppend(t *testing.T) {
	for _, level := range []herdwal.Fsync{herdwal.FsyncEverySec, herdwal.FsyncAlways} {
		t.Run(level.String(), func(t *testing.T) {
			checkGoroutines(t)
			synctest.Test(t, func(t *testing.T) {
				f := crashfs.New()
				l, _, err := herdwal.Open(dir, herdwal.Options{FS: f, Fsync: level}, nil)
				if err != nil {
					t.Fatal(err)
				}
				rs := makeRecs(1, 40, 40)
				size := l.Stats().LogBytes
				mustAppend(t, l, rs[:10]...)
				synctest.Wait()
				if got := l.Stats().LogBytes; got != size {
					t.Fatalf("log bytes %d right after Append, want %d: nothing written yet", got, size)
				}
				time.Sleep(5 * time.Millisecond)
				synctest.Wait()
				if got := l.Stats().LogBytes; got != size {
					t.Fatalf("log bytes %d 5 ms after Append, want %d", got, size)
				}
				time.Sleep(6 * time.Millisecond)
				synctest.Wait()
				if got := l.Stats().LogBytes; got <= size {
					t.Fatalf("log bytes %d 11 ms after Append: not written", got)
				}
				_, _, got := openClosed(t, f.Crash())
				equalRecs(t, "restored after a crash 11 ms after Append", got, nil)
				time.Sleep(time.Second)
				synctest.Wait()
				_, _, got = openClosed(t, f.Crash())
				equalRecs(t, "restored after a crash a second after Append", got, rs[:10])

				// A Write carries what was appended before it.
				mustAppend(t, l, rs[10:20]...)
				mustWrite(t, l, rs[20:21]...)
				if level == herdwal.FsyncAlways {
					_, _, got = openClosed(t, f.Crash())
					equalRecs(t, "restored after a crash right after Append and Write", got, rs[:21])
				}

				// Past the bound, the log writes without waiting for the delay.
				size = l.Stats().LogBytes
				big := makeRecs(100, 4000, 4000)
				mustAppend(t, l, big...)
				synctest.Wait()
				if got := l.Stats().LogBytes; got <= size {
					t.Errorf("log bytes %d after appending %d bytes: not written at once", got, len(entries(big...)))
				}
				mustClose(t, l)
				_, _, got = openClosed(t, f.Crash())
				equalRecs(t, "restored after Close", got, append(slices.Clone(rs[:21]), big...))
			})
		})
	}
}

func mustAppend(t testing.TB, l *herdwal.Log, rs ...rec) {
	t.Helper()
	if err := l.Append(entries(rs...)); err != nil {
		t.Fatalf("Append: %v", err)
	}
}
