package herdwal_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/internal/crashfs"
)

// TestSnapshotsBoundTheDisk updates a table of a hundred clients many times
// over: snapshots taken by the log keep the directory within about twice the
// table and the snapshot threshold, and a restart restores exactly the table.
func TestSnapshotsBoundTheDisk(t *testing.T) {
	checkGoroutines(t)
	const (
		clients      = 100
		updates      = 20000
		batch        = 16
		segmentBytes = 4 << 10
		minLogBytes  = 16 << 10
	)
	f := crashfs.New()
	tb := newTable()
	opts := herdwal.Options{FS: f, Source: tb.source, SegmentBytes: segmentBytes, MinSnapshotLogBytes: minLogBytes}
	herdwal.SetTiming(&opts, time.Millisecond, time.Millisecond, time.Millisecond)
	l, _, _ := open(t, opts)

	recs := makeRecs(1, updates, clients)
	// The log may pass its threshold by what is written before the
	// snapshot begins; the writer here waits for it there.
	logLimit := int64(minLogBytes + 4*segmentBytes)
	var snapBytes, maxDisk int64
	for i := 0; i < updates; i += batch {
		for _, r := range recs[i : i+batch] {
			tb.put(r)
		}
		mustWrite(t, l, recs[i:i+batch]...)
		waitFor(t, "a snapshot to shrink the log", func() bool { return l.Stats().LogBytes <= logLimit })
		st := l.Stats()
		snapBytes = max(snapBytes, st.LastSnapshotBytes)
		maxDisk = max(maxDisk, st.DiskBytes)
		if bound := 2*snapBytes + logLimit + 2*segmentBytes; st.DiskBytes > bound {
			t.Fatalf("after %d updates: %d bytes on disk, more than %d (snapshot %d bytes)", i+batch, st.DiskBytes, bound, snapBytes)
		}
	}
	st := l.Stats()
	if st.Snapshots < 50 || int64(st.Segments) > 2+logLimit/segmentBytes || snapBytes > clients*150 {
		t.Errorf("stats: %+v", st)
	}
	if st.Records < clients || st.Records > clients+int64(logLimit)/80 {
		t.Errorf("%d records on disk for %d clients", st.Records, clients)
	}
	mustClose(t, l)
	disk := dirBytes(t, f)
	if disk > 2*snapBytes+logLimit+2*segmentBytes {
		t.Errorf("%d bytes on disk after Close", disk)
	}
	var n int
	names, _ := f.ReadDir(dir)
	for _, name := range names {
		if strings.HasPrefix(name, "snapshot-") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d snapshots left: %q", n, names)
	}
	t.Logf("%d updates of %d clients: at most %d bytes on disk, snapshots of %d bytes, %d snapshots", updates, clients, maxDisk, snapBytes, st.Snapshots)

	var got restored
	l, r, err := herdwal.Open(dir, herdwal.Options{FS: f.Crash()}, got.restore)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	noDamage(t, r)
	equalTables(t, "restored", newest(got.recs), tb.snapshot())
	if r.Records > clients+int(logLimit)/80 {
		t.Errorf("restart read %d records for %d clients", r.Records, clients)
	}
}
