package herdwal_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/internal/crashfs"
)

// TestModel runs random puts, cursor sets, snapshots (taken by hand and by
// the log itself), syncs, clean closes and power cuts against a model: the
// newest record of each client, and the cursors. Under FsyncAlways every put
// acknowledged is durable, so after each reopening the restored table is the
// model's; a cursor set since the last durable write may or may not survive,
// so the restored cursor is one of those set since.
func TestModel(t *testing.T) {
	checkGoroutines(t)
	const (
		steps   = 3000
		clients = 40
	)
	peers := []string{"Farmar", "Gasol", "Hill", "Meeks"}
	epochs := []string{"e1", "e2"}
	r := newRand(42)
	// Torn crashes draw from their own source, so that how much a crash
	// keeps does not change which steps follow.
	torn := newRand(43)

	var (
		f       = crashfs.New()
		live    = newTable()
		written = map[uint64]rec{}
		seq     uint64
		// cursors are the live ones; maybe are, for each peer, the values
		// a power cut may leave (absent is a zero Cursor with no epoch).
		cursors = map[string]herdwal.Cursor{}
		maybe   = map[string][]herdwal.Cursor{}
		l       *herdwal.Log
		stats   = map[string]int{}
	)
	durable := func() {
		for p := range maybe {
			maybe[p] = []herdwal.Cursor{cursors[p]}
		}
	}
	reopen := func(what string, clean bool) {
		t.Helper()
		opts := herdwal.Options{FS: f, Fsync: herdwal.FsyncAlways, Source: nil, SegmentBytes: 2 << 10, MinSnapshotLogBytes: 4 << 10}
		herdwal.SetTiming(&opts, time.Hour, time.Millisecond, time.Millisecond)
		restoredTable := newTable()
		opts.Source = restoredTable.source
		var err error
		var rec herdwal.Recovery
		l, rec, err = herdwal.Open(dir, opts, func(hr herdwal.Record) error {
			x := recOf(hr)
			if written[x.Seq] != x {
				t.Fatalf("%s: restored %+v, which was never written", what, x)
			}
			return restoredTable.restore(hr)
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		equalTables(t, what, restoredTable.snapshot(), live.snapshot())
		live = restoredTable
		if rec.Lossy || rec.Clean != clean {
			t.Fatalf("%s: recovery %+v", what, rec)
		}
		if clean {
			noDamage(t, rec)
			if !maps.Equal(rec.Cursors, cursors) {
				t.Fatalf("%s: cursors %v, want %v", what, rec.Cursors, cursors)
			}
		}
		for _, p := range peers {
			got, ok := rec.Cursors[p]
			if !ok {
				got = herdwal.Cursor{}
			}
			if !slices.Contains(maybe[p], got) && !(len(maybe[p]) == 0 && !ok) {
				t.Fatalf("%s: cursor of %s is %v, want one of %v", what, p, got, maybe[p])
			}
		}
		cursors = rec.Cursors
		maybe = map[string][]herdwal.Cursor{}
		for _, p := range peers {
			maybe[p] = []herdwal.Cursor{cursors[p]}
		}
	}
	reopen("first open", true)
	defer func() { l.Close() }()
	automatic := int64(0)

	for step := range steps {
		what := fmt.Sprintf("step %d", step)
		switch op := r.IntN(100); {
		case op < 55:
			var batch []rec
			for range 1 + r.IntN(8) {
				seq++
				x := rec{
					Seq:     seq,
					Arrived: int64(seq) * 7,
					From:    addrs[r.IntN(len(addrs))],
					Line:    atLine(r.IntN(clients), r.Int64N(1<<20)<<20|int64(seq)),
				}
				written[seq] = x
				live.put(x) // before Write, as Options.Source asks
				batch = append(batch, x)
			}
			if err := l.Write(entries(batch...)); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			durable()
			stats["puts"]++
		case op < 75:
			p := peers[r.IntN(len(peers))]
			c := herdwal.Cursor{Epoch: epochs[r.IntN(len(epochs))], Seq: r.Uint64N(100)}
			if err := l.SetCursor(p, c); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if old, ok := cursors[p]; c.Advances(old, ok) {
				cursors[p] = c
				maybe[p] = append(maybe[p], c)
			}
			if got, _ := l.Cursor(p); got != cursors[p] {
				t.Fatalf("%s: Cursor(%s) = %v, want %v", what, p, got, cursors[p])
			}
			stats["cursors"]++
		case op < 80:
			if err := l.Snapshot(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			durable()
			stats["snapshots"]++
		case op < 85:
			if err := l.Sync(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			durable()
			stats["syncs"]++
		case op < 91:
			automatic += l.Stats().Snapshots
			if err := l.Close(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			durable()
			reopen(what+", after a clean close", true)
			stats["closes"]++
		default:
			var c *crashfs.FS
			if r.IntN(2) == 0 {
				c = f.Crash()
			} else {
				c = f.CrashTorn(torn)
			}
			automatic += l.Stats().Snapshots
			l.Close()
			f = c
			reopen(what+", after a power cut", false)
			stats["crashes"]++
		}
	}
	st := l.Stats()
	automatic += st.Snapshots - int64(stats["snapshots"])
	if automatic <= 0 {
		t.Errorf("the log took no snapshots by itself")
	}
	t.Logf("%v, %d snapshots taken by the log; the last log: %d segments, %d disk bytes", stats, automatic, st.Segments, st.DiskBytes)
}
