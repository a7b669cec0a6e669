package herdwal_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/internal/crashfs"
)

// lastSegment writes recs to a new directory, one entry per Write, closes
// the log when closed (else syncs it and leaves it open), and returns the
// file system as a crash then would leave it, with the last segment's path.
func lastSegment(t *testing.T, recs []rec, closed bool) (*crashfs.FS, string) {
	t.Helper()
	f := crashfs.New()
	l, _, _ := open(t, herdwal.Options{FS: f, BootID: "boot"})
	for _, r := range recs {
		mustWrite(t, l, r)
	}
	if closed {
		mustClose(t, l)
	} else if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	c := f.Crash()
	l.Close()
	segs := segments(t, c)
	return c, segs[len(segs)-1]
}

// reopenAfter checks that the directory of f, as recovery left it, opens
// with no damage and takes writes.
func reopenAfter(t *testing.T, f *crashfs.FS, want []rec) {
	t.Helper()
	l, r, got := open(t, herdwal.Options{FS: f, BootID: "boot"})
	noDamage(t, r)
	equalRecs(t, "restored by the next Open", got, want)
	more := makeRecs(1000, 1, 1)
	mustWrite(t, l, more...)
	mustClose(t, l)
	_, r, got = open(t, herdwal.Options{FS: f, BootID: "boot"})
	noDamage(t, r)
	if !r.Clean {
		t.Error("not clean after Close")
	}
	equalRecs(t, "restored after writing again", got, append(slices.Clone(want), more...))
}

func TestTornTail(t *testing.T) {
	for _, closed := range []bool{true, false} {
		t.Run(fmt.Sprint("closed=", closed), func(t *testing.T) {
			checkGoroutines(t)
			recs := makeRecs(1, 8, 3)
			base, seg := lastSegment(t, recs, closed)
			data := readFile(t, base, seg)
			bounds := boundaries(data)
			// Entries: the header, the records, and the closed entry.
			entries := bounds[:len(bounds)-1]
			first := entries[len(entries)-4]
			for off := first; off < len(data); off++ {
				f := base.Crash()
				withFile(t, f, seg, data[:off])
				l, r, got := open(t, herdwal.Options{FS: f, BootID: "boot"})
				l.Close()
				// The entries wholly before off survive.
				whole := 0
				for whole < len(entries) && bounds[whole+1] <= off {
					whole++
				}
				keep := min(max(whole-1, 0), len(recs)) // less the header
				equalRecs(t, fmt.Sprintf("restored after a cut at %d", off), got, recs[:keep])
				start := bounds[whole]
				if start == off {
					noDamage(t, r)
				} else {
					want := herdwal.Damage{File: seg, Offset: int64(start), Problem: "torn record at the end", Cut: int64(off - start)}
					if len(r.Damage) != 1 || r.Damage[0] != want {
						t.Fatalf("cut at %d: damage %v, want %v", off, r.Damage, want)
					}
				}
				if r.Clean {
					t.Errorf("cut at %d: recovery says the log was closed", off)
				}
				if off == first || off == len(data)-1 {
					reopenAfter(t, f, recs[:keep])
				} else {
					_, r, _ := open(t, herdwal.Options{FS: f, BootID: "boot"})
					noDamage(t, r)
				}
			}
		})
	}
}

func TestFlippedBytes(t *testing.T) {
	checkGoroutines(t)
	recs := makeRecs(1, 6, 3)
	base, seg := lastSegment(t, recs, true)
	data := readFile(t, base, seg)
	bounds := boundaries(data)
	written := map[uint64]rec{}
	for _, r := range recs {
		written[r.Seq] = r
	}
	// The last three records and the closed entry.
	for e := len(bounds) - 5; e < len(bounds)-1; e++ {
		for i := bounds[e]; i < bounds[e+1]; i++ {
			f := base.Crash()
			withFile(t, f, seg, flip(data, i))
			var got []rec
			l, r, err := herdwal.Open(dir, herdwal.Options{FS: f, BootID: "boot"}, func(hr herdwal.Record) error {
				x := recOf(hr)
				if written[x.Seq] != x {
					t.Errorf("flip at %d: restored %+v, which was never written", i, x)
				}
				got = append(got, x)
				return nil
			})
			if err != nil {
				t.Fatalf("flip at %d: %v", i, err)
			}
			l.Close()
			equalRecs(t, fmt.Sprintf("restored after a flip at %d", i), got, recs[:e-1])
			if len(r.Damage) != 1 || r.Damage[0].File != seg || r.Damage[0].Offset != int64(bounds[e]) || r.Damage[0].Cut != int64(len(data)-bounds[e]) {
				t.Fatalf("flip at %d: damage %v, want one at offset %d cutting %d bytes", i, r.Damage, bounds[e], len(data)-bounds[e])
			}
			switch p := r.Damage[0].Problem; p {
			case "checksum mismatch", "torn record at the end", "zero length (zero-filled or overwritten)", "length beyond the greatest an entry may have":
			default:
				t.Errorf("flip at %d: problem %q", i, p)
			}
		}
	}
}

func TestZeroFilledTail(t *testing.T) {
	recs := makeRecs(1, 3, 3)
	f, seg := lastSegment(t, recs, false)
	data := readFile(t, f, seg)
	withFile(t, f, seg, append(data, make([]byte, 4096)...))
	_, r, got := open(t, herdwal.Options{FS: f})
	equalRecs(t, "restored", got, recs)
	want := herdwal.Damage{File: seg, Offset: int64(len(data)), Problem: "zero length (zero-filled or overwritten)", Cut: 4096}
	if len(r.Damage) != 1 || r.Damage[0] != want {
		t.Errorf("damage %v, want %v", r.Damage, want)
	}
}

// threeSegments makes a directory of three closed segments, each with a
// cursor and two records, and returns it crashed with the records.
func threeSegments(t *testing.T) (*crashfs.FS, []rec) {
	f := crashfs.New()
	recs := makeRecs(1, 6, 6)
	for i := range 3 {
		l, _, _ := open(t, herdwal.Options{FS: f})
		l.SetCursor("Meeks", herdwal.Cursor{Epoch: "m", Seq: uint64(i)})
		mustWrite(t, l, recs[2*i:2*i+2]...)
		mustClose(t, l)
	}
	return f.Crash(), recs
}

func TestMissingMiddleSegment(t *testing.T) {
	checkGoroutines(t)
	f, recs := threeSegments(t)
	segs := segments(t, f)
	removeFile(t, f, segs[1])
	_, r, got := open(t, herdwal.Options{FS: f})
	equalRecs(t, "restored", got, recs[:2])
	want := []herdwal.Damage{{File: segs[1], Problem: "missing segment"}, {File: segs[2], Problem: "segment after a missing one removed", Cut: r.Damage[1].Cut}}
	if !slices.Equal(r.Damage, want) || r.Damage[1].Cut == 0 {
		t.Errorf("damage %v, want %v", r.Damage, want)
	}
	if r.Lossy || r.Cursors["Meeks"].Seq != 0 {
		t.Errorf("recovery %+v: want the cursors of the first segment", r)
	}
	if names := segments(t, f); !slices.Equal(names, []string{segs[0], segs[1]}) {
		t.Errorf("segments after recovery: %q, want the first and a new one in the gap", names)
	}
}

func TestDamagedMiddleSegment(t *testing.T) {
	f, recs := threeSegments(t)
	segs := segments(t, f)
	data := readFile(t, f, segs[1])
	bounds := boundaries(data)
	withFile(t, f, segs[1], flip(data, bounds[2]+9)) // the second entry after the header: a record
	_, r, got := open(t, herdwal.Options{FS: f})
	equalRecs(t, "restored", got, recs[:2])
	if len(r.Damage) != 2 || r.Damage[0].File != segs[1] || r.Damage[0].Offset != int64(bounds[2]) ||
		r.Damage[0].Problem != "checksum mismatch" || r.Damage[1].File != segs[2] || r.Damage[1].Problem != "segment after a damaged one removed" {
		t.Errorf("damage %v", r.Damage)
	}
	if got := len(readFile(t, f, segs[1])); got != bounds[2] {
		t.Errorf("damaged segment cut to %d bytes, want %d", got, bounds[2])
	}
}

func TestBadSegmentHeader(t *testing.T) {
	tests := []struct {
		name   string
		header func(seg []byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"torn", func(seg []byte) []byte { return seg[:10] }},
		{"not a header", func(seg []byte) []byte { return makeRecs(99, 1, 1)[0].entry() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, recs := threeSegments(t)
			segs := segments(t, f)
			last := segs[len(segs)-1]
			withFile(t, f, last, tt.header(readFile(t, f, last)))
			l, r, got := open(t, herdwal.Options{FS: f})
			equalRecs(t, "restored", got, recs[:4])
			if len(r.Damage) != 1 || r.Damage[0].File != last || !strings.HasPrefix(r.Damage[0].Problem, "bad segment header: ") {
				t.Errorf("damage %v", r.Damage)
			}
			// Nothing of it was kept: its number is used again, leaving no gap.
			mustWrite(t, l, makeRecs(7, 1, 1)...)
			mustClose(t, l)
			if got := segments(t, f); !slices.Equal(got, segs) {
				t.Errorf("segments %q, want %q", got, segs)
			}
			reopenAfter(t, f, append(recs[:4], makeRecs(7, 1, 1)...))
		})
	}
}

func TestMeta(t *testing.T) {
	tests := []struct {
		name string
		meta string
		want string // in Open's error
	}{
		{"other version", "herd storage 2\nepoch abc\n", `version "2", but this server reads only version 1`},
		{"not meta", "hello\n", "not a herd storage meta file"},
		{"no epoch", "herd storage 1\n", "damaged"},
		{"spaces in the epoch", "herd storage 1\nepoch a b\n", "damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := threeSegments(t)
			withFile(t, f, dir+"/meta", []byte(tt.meta))
			_, _, err := herdwal.Open(dir, herdwal.Options{FS: f}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir+"/meta") {
				t.Fatalf("Open: %v, want an error naming meta with %q", err, tt.want)
			}
			// Open let go of the lock.
			if l, err := f.Lock(dir + "/lock"); err != nil {
				t.Errorf("lock after a failed Open: %v", err)
			} else {
				l.Close()
			}
		})
	}
}

func TestMetaMissing(t *testing.T) {
	checkGoroutines(t)
	f, recs := threeSegments(t)
	old, _ := f.ReadFile(dir + "/meta")
	removeFile(t, f, dir+"/meta")
	l, r, got := open(t, herdwal.Options{FS: f})
	equalRecs(t, "restored", got, recs)
	if len(r.Damage) != 1 || r.Damage[0].File != dir+"/meta" || !strings.HasPrefix(r.Damage[0].Problem, "meta missing") {
		t.Errorf("damage %v", r.Damage)
	}
	if !r.Lossy || len(r.Cursors) != 0 || len(l.Cursors()) != 0 || r.Fresh || strings.Contains(string(old), r.Epoch) {
		t.Errorf("recovery %+v: want lossy, a new epoch, no cursors", r)
	}
	mustClose(t, l)
	_, r2, got := open(t, herdwal.Options{FS: f})
	noDamage(t, r2)
	equalRecs(t, "restored by the next Open", got, recs)
	// The cursors written under the old epoch stay dropped.
	if r2.Lossy || r2.Epoch != r.Epoch || len(r2.Cursors) != 0 {
		t.Errorf("next recovery %+v: want the new epoch and no cursors", r2)
	}
}

func TestMetaAloneIsFresh(t *testing.T) {
	f := crashfs.New()
	f.MkdirAll(dir)
	withFile(t, f, dir+"/meta", []byte("herd storage 1\nepoch abc\n"))
	start := map[string]herdwal.Cursor{"Meeks": {Epoch: "m", Seq: 3}}
	_, r, _ := open(t, herdwal.Options{FS: f, Cursors: start})
	if !r.Fresh || r.Epoch != "abc" || r.Cursors["Meeks"] != start["Meeks"] {
		t.Errorf("recovery %+v: want fresh, the epoch of meta and the cursors", r)
	}

	// Given an epoch, such a directory takes it.
	f = crashfs.New()
	f.MkdirAll(dir)
	withFile(t, f, dir+"/meta", []byte("herd storage 1\nepoch abc\n"))
	l, r, _ := open(t, herdwal.Options{FS: f, Epoch: "def"})
	if !r.Fresh || r.Epoch != "def" || l.Epoch() != "def" {
		t.Errorf("recovery %+v: want fresh with the epoch of Options", r)
	}
	mustClose(t, l)
	if b := readFile(t, f, dir+"/meta"); string(b) != "herd storage 1\nepoch def\n" {
		t.Errorf("meta: %q", b)
	}
}

func TestRejectedRecord(t *testing.T) {
	recs := makeRecs(1, 5, 5)
	f, seg := lastSegment(t, recs, true)
	bounds := boundaries(readFile(t, f, seg))
	var got []rec
	_, r, err := herdwal.Open(dir, herdwal.Options{FS: f}, func(hr herdwal.Record) error {
		if hr.Seq == 3 {
			return errors.New("invalid AT line")
		}
		got = append(got, recOf(hr))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := herdwal.Damage{File: seg, Offset: int64(bounds[3]), Problem: "record rejected: invalid AT line"}
	if len(r.Damage) != 1 || r.Damage[0] != want {
		t.Errorf("damage %v, want %v", r.Damage, want)
	}
	if r.Records != 4 || r.MaxSeq != 5 || !r.Clean {
		t.Errorf("recovery %+v: want 4 records, MaxSeq 5, clean", r)
	}
	equalRecs(t, "restored", got, slices.Delete(slices.Clone(recs), 2, 3))
}

func TestUnsynced(t *testing.T) {
	tests := []struct {
		name      string
		was, now  string
		closed    bool
		wantClean bool
		want      bool
	}{
		{"closed", "a", "b", true, true, false},
		{"died, same boot", "a", "a", false, false, false},
		{"died, rebooted", "a", "b", false, false, true},
		{"died, boot unknown before", "", "b", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := crashfs.New()
			l, _, _ := open(t, herdwal.Options{FS: f, BootID: "placeholder"})
			if tt.closed {
				mustClose(t, l)
			} else if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			c := f.Crash()
			l.Close()
			// Give the segment the boot id of the test.
			seg := segments(t, c)[0]
			data := readFile(t, c, seg)
			b := boundaries(data)
			withFile(t, c, seg, append(headerWithBoot(t, data[:b[1]], tt.was), data[b[1]:]...))
			_, r, _ := open(t, herdwal.Options{FS: c, BootID: tt.now})
			if r.Clean != tt.wantClean || r.Unsynced != tt.want {
				t.Errorf("Clean %v, Unsynced %v; want %v, %v", r.Clean, r.Unsynced, tt.wantClean, tt.want)
			}
		})
	}
}

// headerWithBoot makes a segment header like hdr, with another boot id.
func headerWithBoot(t *testing.T, hdr []byte, boot string) []byte {
	t.Helper()
	// Header payload: type, magic (4), version, number (8), epoch, boot id.
	p := hdr[8:]
	epochLen := int(p[14])
	body := append([]byte(nil), p[:15+epochLen]...)
	body = append(body, byte(len(boot)))
	body = append(body, boot...)
	return frame(body)
}

func TestHalfWrittenFilesRemoved(t *testing.T) {
	f, recs := threeSegments(t)
	withFile(t, f, dir+"/snapshot-0000000000000009.tmp", []byte("half"))
	withFile(t, f, dir+"/meta.tmp", []byte("herd"))
	withFile(t, f, dir+"/notes.tmp", []byte("not ours"))
	_, r, got := open(t, herdwal.Options{FS: f})
	equalRecs(t, "restored", got, recs)
	want := []herdwal.Damage{
		{File: dir + "/meta.tmp", Problem: "half-written meta removed", Cut: 4},
		{File: dir + "/snapshot-0000000000000009.tmp", Problem: "half-written snapshot removed", Cut: 4},
	}
	if !slices.Equal(r.Damage, want) || r.Lossy {
		t.Errorf("damage %v, lossy %v; want %v", r.Damage, r.Lossy, want)
	}
	names, _ := f.ReadDir(dir)
	if slices.Contains(names, "meta.tmp") || slices.Contains(names, "snapshot-0000000000000009.tmp") || !slices.Contains(names, "notes.tmp") {
		t.Errorf("directory after recovery: %q", names)
	}
}

// snapshotted makes a directory with a snapshot of five clients and a
// cursor, taken after two segments, and two more records after it; it
// returns the directory crashed, the snapshot's path, and the table.
func snapshotted(t *testing.T) (*crashfs.FS, string, map[string]rec) {
	t.Helper()
	f := crashfs.New()
	tb := newTable()
	opts := herdwal.Options{FS: f, Source: tb.source, Fsync: herdwal.FsyncAlways}
	herdwal.SetTiming(&opts, time.Hour, time.Hour, time.Millisecond)
	l, _, _ := open(t, opts)
	recs := makeRecs(1, 12, 5)
	for _, r := range recs[:10] {
		tb.put(r)
		mustWrite(t, l, r)
	}
	l.SetCursor("Meeks", herdwal.Cursor{Epoch: "m", Seq: 10})
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[10:] {
		tb.put(r)
		mustWrite(t, l, r)
	}
	mustClose(t, l)
	snaps := snapshots(t, f)
	if len(snaps) != 1 || len(segments(t, f)) != 1 {
		t.Fatalf("snapshots %q, segments %q: want one of each", snaps, segments(t, f))
	}
	return f.Crash(), snaps[0], tb.snapshot()
}

func TestSnapshotRecovery(t *testing.T) {
	checkGoroutines(t)
	f, snap, want := snapshotted(t)
	var tb restored
	l, r, err := herdwal.Open(dir, herdwal.Options{FS: f}, tb.restore)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	noDamage(t, r)
	equalTables(t, "restored", newest(tb.recs), want)
	if r.Lossy || r.Cursors["Meeks"] != (herdwal.Cursor{Epoch: "m", Seq: 10}) || r.MaxSeq != 12 || r.Records != 7 {
		t.Errorf("recovery %+v", r)
	}
	if !strings.HasSuffix(snap, "snapshot-0000000000000002") {
		t.Errorf("snapshot %s, want number 2", snap)
	}
}

func TestDamagedSnapshot(t *testing.T) {
	base, snap, want := snapshotted(t)
	data := readFile(t, base, snap)
	bounds := boundaries(data)
	// Entries: header, cursor, five records, end.
	tests := []struct {
		name    string
		data    []byte
		offset  int
		problem string
		kept    int // records of the snapshot restored
	}{
		{"flipped record", flip(data, bounds[4]+12), bounds[4], "snapshot damaged: checksum mismatch", 2},
		{"no end entry", data[:bounds[7]], bounds[7], "snapshot damaged: it ends before its end entry", 5},
		{"torn", data[:bounds[6]+3], bounds[6], "snapshot damaged: torn record at the end", 4},
		{"bad header", flip(data, 9), 0, "snapshot damaged: bad header: checksum mismatch", 0},
		{"wrong count", append(slices.Clone(data[:bounds[7]]), endEntry(4, 10)...), bounds[7], "snapshot damaged: its end entry counts 4 records, but it holds 5", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base.Crash()
			withFile(t, f, snap, tt.data)
			var got restored
			l, r, err := herdwal.Open(dir, herdwal.Options{FS: f}, got.restore)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			want := herdwal.Damage{File: snap, Offset: int64(tt.offset), Problem: tt.problem}
			if len(r.Damage) != 1 || r.Damage[0] != want {
				t.Errorf("damage %v, want %v", r.Damage, want)
			}
			if !r.Lossy || len(r.Cursors) != 0 || len(l.Cursors()) != 0 {
				t.Errorf("recovery %+v: want lossy without cursors", r)
			}
			if len(got.recs) != tt.kept+2 {
				t.Errorf("restored %d records, want %d of the snapshot and 2 after it", len(got.recs), tt.kept)
			}
		})
	}
	_ = want
}

// endEntry frames a snapshot end entry.
func endEntry(records, maxSeq uint64) []byte {
	body := []byte{6}
	body = appendUint64(body, records)
	return frame(appendUint64(body, maxSeq))
}

func TestMissingSnapshot(t *testing.T) {
	f, snap, _ := snapshotted(t)
	removeFile(t, f, snap)
	_, r, got := open(t, herdwal.Options{FS: f})
	segs := segments(t, f)
	want := herdwal.Damage{File: segs[0], Problem: "no snapshot before the first segment"}
	if len(r.Damage) != 1 || r.Damage[0] != want || !r.Lossy || len(r.Cursors) != 0 {
		t.Errorf("recovery %+v; want lossy with %v", r, want)
	}
	if len(got) != 2 {
		t.Errorf("restored %d records, want the 2 after the snapshot", len(got))
	}
}

func TestLossyRecoveryTakesASnapshot(t *testing.T) {
	checkGoroutines(t)
	f, snap, want := snapshotted(t)
	data := readFile(t, f, snap)
	withFile(t, f, snap, data[:len(data)-1])
	tb := newTable()
	opts := herdwal.Options{FS: f, Source: tb.source}
	herdwal.SetTiming(&opts, time.Hour, time.Millisecond, time.Millisecond)
	l, r, err := herdwal.Open(dir, opts, tb.restore)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Lossy {
		t.Fatalf("recovery %+v: want lossy", r)
	}
	// Peers would send the records lost; here the test does.
	for _, x := range want {
		tb.put(x)
	}
	waitFor(t, "a snapshot", func() bool { return l.Stats().Snapshots > 0 })
	mustClose(t, l)
	var got restored
	l, r, err = herdwal.Open(dir, herdwal.Options{FS: f}, got.restore)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	noDamage(t, r)
	if r.Lossy {
		t.Error("still lossy after a new snapshot")
	}
	equalTables(t, "restored", newest(got.recs), want)
}

func TestDamageString(t *testing.T) {
	tests := []struct {
		d    herdwal.Damage
		want string
	}{
		{herdwal.Damage{File: "/x/log-0000000000000003", Offset: 1234, Problem: "torn record at the end", Cut: 56},
			"herd storage file /x/log-0000000000000003, offset 1234: torn record at the end; 56 bytes were cut off."},
		{herdwal.Damage{File: "/x/log-0000000000000004", Problem: "missing segment"},
			"herd storage file /x/log-0000000000000004, offset 0: missing segment; nothing was cut."},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestDiskErrorsFailOpen(t *testing.T) {
	f, _ := threeSegments(t)
	f.SetHook(func(e crashfs.Event) error {
		if e.Op == crashfs.OpOpen && filepath.Base(e.Name) == "log-0000000000000002" {
			return errors.New("permission denied")
		}
		return nil
	})
	_, _, err := herdwal.Open(dir, herdwal.Options{FS: f}, nil)
	if err == nil || !strings.Contains(err.Error(), "log-0000000000000002") || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Open: %v, want an error naming the file", err)
	}
}
