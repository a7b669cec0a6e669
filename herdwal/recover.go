package herdwal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Recovery is what Open found in its directory.
type Recovery struct {
	// Epoch is the directory's epoch.
	Epoch string
	// Fresh is set when the directory held no data and was given an epoch
	// (Options.Epoch; without one, a drawn one or that of a meta left by a
	// process that died before writing anything) and Options.Cursors.
	Fresh bool
	// Clean is set when the previous process closed the log, rather than
	// dying, and for a directory that held nothing.
	Clean bool
	// Unsynced is set when the log was not closed and the machine has
	// rebooted since (its boot id differs, or one of them is unknown):
	// bytes written but not fsynced may have been lost.
	Unsynced bool
	// Lossy is set when records before the first damage may be missing (a
	// snapshot was damaged or missing, or meta was): the cursors, which
	// claim those records are here, were dropped.
	Lossy bool
	// Records counts the records restored (those restore accepted).
	Records int
	// MaxSeq is the greatest Seq seen.
	MaxSeq uint64
	// Cursors are the cursors the directory holds (none when Lossy).
	Cursors map[string]Cursor
	// Damage is what was wrong and what was done about it, in the order
	// found, for the caller to log as warnings.
	Damage []Damage
	// Took is how long Open took.
	Took time.Duration
}

// Damage is one problem recovery found, and what it did about it.
type Damage struct {
	// File is the full path of the damaged file.
	File string
	// Offset is where in File the damage starts.
	Offset int64
	// Problem says what is wrong, such as "torn record at the end",
	// "checksum mismatch", "record rejected: <restore's error>", "missing
	// segment", "half-written snapshot removed", "snapshot damaged: ...",
	// or "no snapshot before the first segment".
	Problem string
	// Cut is how many bytes were cut off File, or removed with it; 0 when
	// nothing was.
	Cut int64
}

// String returns the damage as one sentence naming the file, offset, problem
// and what was cut.
func (d Damage) String() string {
	cut := "nothing was cut"
	if d.Cut > 0 {
		cut = fmt.Sprintf("%d bytes were cut off", d.Cut)
	}
	return fmt.Sprintf("herd storage file %s, offset %d: %s; %s.", d.File, d.Offset, d.Problem, cut)
}

// Recovery problems, besides those of entries.
const (
	problemMetaMissing   = "meta missing: a new epoch begins and the cursors are dropped"
	problemNoSnapshot    = "no snapshot before the first segment"
	problemMissing       = "missing segment"
	problemAfterMissing  = "segment after a missing one removed"
	problemAfterDamaged  = "segment after a damaged one removed"
	problemHalfSnapshot  = "half-written snapshot removed"
	problemHalfMeta      = "half-written meta removed"
	problemSnapshot      = "snapshot damaged: "
	problemAfterEnd      = "data after the snapshot's end entry"
	problemRejected      = "record rejected: "
	problemSegmentHeader = "bad segment header: "
)

// recoverer reads a locked directory back: the newest snapshot, then the
// segments from the one it began with, restoring records and cutting the
// log at the first damage.
type recoverer struct {
	fs      FS
	dir     string
	restore func(Record) error
	bootID  string

	rec       Recovery
	hasMeta   bool
	epoch     string // of meta; "" without one
	anyFiles  bool   // segments or snapshots were found, whole or not
	sawData   bool   // a snapshot, or a segment with a whole header
	cursors   map[string]Cursor
	files     files
	nextSeg   uint64
	last      *segmentHeader // of the last segment kept
	lastClean bool           // its last entry is a closed one
	dirty     bool           // files were removed: sync the directory
}

func (r *recoverer) path(name string) string {
	return filepath.Join(r.dir, name)
}

func (r *recoverer) damage(file string, offset int64, problem string, cut int64) {
	r.rec.Damage = append(r.rec.Damage, Damage{File: file, Offset: offset, Problem: problem, Cut: cut})
}

func (r *recoverer) run() error {
	r.cursors = map[string]Cursor{}
	names, err := r.fs.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", r.dir, err)
	}
	var segs, snaps []uint64
	for _, name := range names {
		if base, ok := strings.CutSuffix(name, tmpSuffix); ok {
			if base == metaName {
				if err := r.removeDamaged(r.path(name), problemHalfMeta); err != nil {
					return err
				}
			} else if _, ok := parseNumbered(base, snapshotPrefix); ok {
				if err := r.removeDamaged(r.path(name), problemHalfSnapshot); err != nil {
					return err
				}
			}
			continue
		}
		if name == metaName {
			r.hasMeta = true
		} else if n, ok := parseNumbered(name, segmentPrefix); ok {
			segs = append(segs, n)
		} else if n, ok := parseNumbered(name, snapshotPrefix); ok {
			snaps = append(snaps, n)
		}
	}
	r.anyFiles = len(segs)+len(snaps) > 0

	if r.hasMeta {
		if r.epoch, r.files.metaBytes, err = readMeta(r.fs, r.dir); err != nil {
			return err
		}
	} else if r.anyFiles {
		r.damage(r.path(metaName), 0, problemMetaMissing, 0)
		r.rec.Lossy = true
	}

	var first uint64 // the segment the log after the snapshot begins with
	if len(snaps) > 0 {
		first = snaps[len(snaps)-1]
		complete, err := r.loadSnapshot(first)
		if err != nil {
			return err
		}
		if err := r.keepOrRemoveOlder(snaps[:len(snaps)-1], segs, first, complete); err != nil {
			return err
		}
		for len(segs) > 0 && segs[0] < first {
			segs = segs[1:]
		}
	} else if len(segs) > 0 {
		first = segs[0]
		if first > 1 {
			r.damage(r.path(segmentName(first)), 0, problemNoSnapshot, 0)
			r.rec.Lossy = true
		}
	}

	r.nextSeg = max(first, 1)
	expect := first
	if len(snaps) > 0 && len(segs) == 0 {
		r.damage(r.path(segmentName(first)), 0, problemMissing, 0)
	}
	for i, n := range segs {
		if n != expect {
			r.damage(r.path(segmentName(expect)), 0, problemMissing, 0)
			if err := r.removeSegments(segs[i:], problemAfterMissing); err != nil {
				return err
			}
			break
		}
		whole, err := r.replaySegment(n)
		if err != nil {
			return err
		}
		if !whole {
			if err := r.removeSegments(segs[i+1:], problemAfterDamaged); err != nil {
				return err
			}
			break
		}
		expect++
	}
	if r.dirty {
		if err := r.fs.SyncDir(r.dir); err != nil {
			return fmt.Errorf("syncing directory %s: %w", r.dir, err)
		}
	}

	r.rec.Fresh = !r.sawData
	r.rec.Clean = r.lastClean || !r.anyFiles
	if !r.rec.Clean {
		r.rec.Unsynced = r.last == nil || r.last.bootID == "" || r.bootID == "" || r.last.bootID != r.bootID
	}
	if r.rec.Lossy {
		r.cursors = map[string]Cursor{}
	}
	return nil
}

// open opens name for reading and returns its size.
func (r *recoverer) open(name string) (File, int64, error) {
	f, err := r.fs.OpenFile(name, os.O_RDONLY)
	if err != nil {
		return nil, 0, fmt.Errorf("opening %s: %w", name, err)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("reading the size of %s: %w", name, err)
	}
	return f, size, nil
}

func (r *recoverer) size(name string) (int64, error) {
	f, size, err := r.open(name)
	if err != nil {
		return 0, err
	}
	f.Close()
	return size, nil
}

func (r *recoverer) remove(name string) error {
	if err := r.fs.Remove(name); err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	r.dirty = true
	return nil
}

// removeDamaged removes a file that holds nothing recovery can use, and
// reports it.
func (r *recoverer) removeDamaged(name, problem string) error {
	size, err := r.size(name)
	if err != nil {
		return err
	}
	if err := r.remove(name); err != nil {
		return err
	}
	r.damage(name, 0, problem, size)
	return nil
}

func (r *recoverer) removeSegments(nums []uint64, problem string) error {
	for _, n := range nums {
		if err := r.removeDamaged(r.path(segmentName(n)), problem); err != nil {
			return err
		}
	}
	return nil
}

// keepOrRemoveOlder deals with the snapshots older than the newest one, num,
// and the segments before it: a snapshot removes them once it is whole, so
// those found were left by a crash during the removal, and go. When the
// newest snapshot is damaged they stay, for whoever wants to look at them,
// until the next snapshot replaces them.
func (r *recoverer) keepOrRemoveOlder(snaps, segs []uint64, num uint64, complete bool) error {
	var older []*diskFile
	for _, n := range snaps {
		name := r.path(snapshotName(n))
		if complete {
			if err := r.remove(name); err != nil {
				return err
			}
			continue
		}
		size, err := r.size(name)
		if err != nil {
			return err
		}
		older = append(older, &diskFile{num: n, bytes: size})
	}
	r.files.snaps = append(older, r.files.snaps...)
	for _, n := range segs {
		if n >= num {
			break
		}
		name := r.path(segmentName(n))
		if complete {
			if err := r.remove(name); err != nil {
				return err
			}
			continue
		}
		size, err := r.size(name)
		if err != nil {
			return err
		}
		r.files.segs = append(r.files.segs, &diskFile{num: n, bytes: size})
	}
	return nil
}

// restoreRecord hands one record to restore, and reports a rejection.
func (r *recoverer) restoreRecord(rec Record, file string, offset int64) {
	r.rec.MaxSeq = max(r.rec.MaxSeq, rec.Seq)
	if r.restore != nil {
		if err := r.restore(rec); err != nil {
			r.damage(file, offset, problemRejected+err.Error(), 0)
			return
		}
	}
	r.rec.Records++
}

func (r *recoverer) setCursor(m map[string]Cursor, peer string, c Cursor) {
	if old, ok := m[peer]; c.Advances(old, ok) {
		m[peer] = c
	}
}

// loadSnapshot restores the records and cursors of snapshot num. A damaged
// snapshot keeps the records before the damage and makes the recovery
// lossy: the records after it are in no segment any more.
func (r *recoverer) loadSnapshot(num uint64) (bool, error) {
	name := r.path(snapshotName(num))
	f, size, err := r.open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	r.sawData = true
	info := &diskFile{num: num, bytes: size}
	r.files.snaps = append(r.files.snaps, info)
	r.files.snapNum, r.files.haveSnap = num, true

	lossy := func(offset int64, problem string) (bool, error) {
		r.damage(name, offset, problemSnapshot+problem, 0)
		r.rec.Lossy = true
		return false, nil
	}
	er := newEntryReader(f, size)
	typ, p, err := er.next()
	if err != nil {
		var ee *entryError
		if errors.As(err, &ee) {
			return lossy(ee.offset, "bad header: "+ee.problem)
		}
		if err == io.EOF {
			return lossy(0, "empty file")
		}
		return false, fmt.Errorf("reading %s: %w", name, err)
	}
	h, herr := decodeSnapshotHeader(p)
	if typ != typeSnapshotHeader || herr != nil || h.num != num {
		return lossy(0, "bad header")
	}
	trusted := h.epoch == r.epoch
	for {
		off := er.off
		typ, p, err := er.next()
		if err == io.EOF {
			return lossy(off, "it ends before its end entry")
		}
		if err != nil {
			var ee *entryError
			if errors.As(err, &ee) {
				return lossy(ee.offset, ee.problem)
			}
			return false, fmt.Errorf("reading %s: %w", name, err)
		}
		switch typ {
		case typeRecord:
			rec, err := decodeRecord(p)
			if err != nil {
				return lossy(off, "malformed record entry")
			}
			info.records++
			r.restoreRecord(rec, name, off)
		case typeCursor:
			peer, c, err := decodeCursor(p)
			if err != nil {
				return lossy(off, "malformed cursor entry")
			}
			if trusted {
				r.setCursor(r.cursors, peer, c)
			}
		case typeSnapshotEnd:
			end, err := decodeSnapshotEnd(p)
			if err != nil {
				return lossy(off, "malformed end entry")
			}
			if end.records != uint64(info.records) {
				return lossy(off, fmt.Sprintf("its end entry counts %d records, but it holds %d", end.records, info.records))
			}
			r.rec.MaxSeq = max(r.rec.MaxSeq, end.maxSeq)
			if er.off != size {
				r.damage(name, er.off, problemAfterEnd, 0)
			}
			return true, nil
		default:
			return lossy(off, fmt.Sprintf("unexpected entry type %d", typ))
		}
	}
}

// replaySegment restores the records and cursors of segment num, and cuts
// it at the first entry that cannot be read. It reports whether the segment
// was whole. A segment without a whole header is removed, and its number
// used again: nothing of it was kept.
func (r *recoverer) replaySegment(num uint64) (bool, error) {
	name := r.path(segmentName(num))
	f, size, err := r.open(name)
	if err != nil {
		return false, err
	}
	// The file is closed before it is removed or cut, which Windows needs.
	closeFile := func() {
		if f != nil {
			f.Close()
			f = nil
		}
	}
	defer closeFile()

	er := newEntryReader(f, size)
	typ, p, err := er.next()
	var problem string
	var ee *entryError
	switch {
	case errors.As(err, &ee):
		problem = ee.problem
	case err == io.EOF:
		problem = problemTorn
	case err != nil:
		return false, fmt.Errorf("reading %s: %w", name, err)
	case typ != typeSegmentHeader:
		problem = fmt.Sprintf("unexpected entry type %d", typ)
	}
	var h segmentHeader
	if problem == "" {
		var herr error
		if h, herr = decodeSegmentHeader(p); herr != nil || h.num != num {
			problem = "not a header of this segment"
		}
	}
	if problem != "" {
		closeFile()
		if err := r.remove(name); err != nil {
			return false, err
		}
		r.damage(name, 0, problemSegmentHeader+problem, size)
		return false, nil
	}

	r.sawData = true
	info := &diskFile{num: num}
	r.files.segs = append(r.files.segs, info)
	r.nextSeg = num + 1
	r.last = &h
	r.lastClean = false
	trusted := h.epoch == r.epoch
	cut := func(offset int64, problem string) (bool, error) {
		closeFile()
		info.bytes = offset
		if err := r.truncate(name, offset); err != nil {
			return false, err
		}
		r.damage(name, offset, problem, size-offset)
		r.lastClean = false
		return false, nil
	}
	for {
		off := er.off
		typ, p, err := er.next()
		if err == io.EOF {
			info.bytes = size
			return true, nil
		}
		if err != nil {
			if errors.As(err, &ee) {
				return cut(ee.offset, ee.problem)
			}
			return false, fmt.Errorf("reading %s: %w", name, err)
		}
		r.lastClean = false
		switch typ {
		case typeRecord:
			rec, err := decodeRecord(p)
			if err != nil {
				return cut(off, "malformed record entry")
			}
			info.records++
			r.restoreRecord(rec, name, off)
		case typeCursor:
			peer, c, err := decodeCursor(p)
			if err != nil {
				return cut(off, "malformed cursor entry")
			}
			if trusted {
				r.setCursor(r.cursors, peer, c)
			}
		case typeClosed:
			if len(p) != 0 {
				return cut(off, "malformed closed entry")
			}
			r.lastClean = true
		default:
			return cut(off, fmt.Sprintf("unexpected entry type %d", typ))
		}
	}
}

// truncate cuts name to size, durably: the next Open must not find the
// damage again.
func (r *recoverer) truncate(name string, size int64) error {
	f, err := r.fs.OpenFile(name, os.O_RDWR)
	if err != nil {
		return fmt.Errorf("opening %s to cut it at offset %d: %w", name, size, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("cutting %s at offset %d: %w", name, size, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s after cutting it at offset %d: %w", name, size, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", name, err)
	}
	return nil
}
