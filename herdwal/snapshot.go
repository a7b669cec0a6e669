package herdwal

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Snapshot limits.
const (
	// snapshotBufferBytes is the write buffer of a snapshot: large writes
	// without holding much memory next to the table.
	snapshotBufferBytes = 1 << 20
	// stopCheckRecords is how many records a snapshot writes between
	// checks for Close, which then waits at most that long for it.
	stopCheckRecords = 4096
)

// Snapshot takes a snapshot now: it begins segment N, writes every record of
// Options.Source and the cursors as they were when N began into snapshot-N,
// and then removes the segments before N and older snapshots. Writes go on
// meanwhile. Snapshots are taken one at a time; without Options.Source it
// returns an error.
func (l *Log) Snapshot() error {
	if l.source == nil {
		return fmt.Errorf("taking a snapshot of herd storage %s: no Source to take it from", l.dir)
	}
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	start := time.Now()

	num, cursors, err := l.rotate()
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("taking a snapshot of herd storage %s: %w", l.dir, err)
	}
	snap, err := l.writeSnapshot(num, cursors)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("taking a snapshot of herd storage %s: %w", l.dir, err)
	}
	l.removeBefore(num)
	took := time.Since(start)

	l.mu.Lock()
	l.files.snaps = append(l.files.snaps, snap)
	l.files.snapNum, l.files.haveSnap = num, true
	l.snapshotDue = false
	l.stats.bytesWritten += snap.bytes
	l.stats.snapshots++
	l.stats.lastSnapshot = time.Now()
	l.stats.lastSnapshotDuration = took
	l.stats.lastSnapshotRecords = snap.records
	l.stats.lastSnapshotBytes = snap.bytes
	l.mu.Unlock()
	if l.observeSnapshot != nil {
		l.observeSnapshot(took)
	}
	return nil
}

// writeSnapshot writes snapshot-num: as snapshot-num.tmp, synced, then renamed
// and the directory synced, so that a snapshot by its final name is always
// whole. Whatever the Fsync level: the segments it replaces are removed
// next.
func (l *Log) writeSnapshot(num uint64, cursors map[string]Cursor) (*diskFile, error) {
	name := filepath.Join(l.dir, snapshotName(num))
	tmp := name + tmpSuffix
	f, err := l.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", tmp, err)
	}
	fail := func(err error) (*diskFile, error) {
		f.Close()
		l.fs.Remove(tmp)
		return nil, err
	}
	w := bufio.NewWriterSize(f, snapshotBufferBytes)
	var buf []byte
	buf = appendSnapshotHeader(buf, snapshotHeader{num: num, epoch: l.epoch})
	peers := slices.Sorted(maps.Keys(cursors))
	for _, peer := range peers {
		buf = appendCursor(buf, peer, cursors[peer])
	}
	w.Write(buf)
	bytes := int64(len(buf))

	var records, maxSeq uint64
	stopped := false
	for r := range l.source {
		buf = AppendRecord(buf[:0], r.Seq, r.Arrived, r.From, r.Line)
		if len(buf)-entryHeaderBytes > maxEntryBytes {
			continue // Write refused it too: it is not in the log either
		}
		w.Write(buf)
		bytes += int64(len(buf))
		records++
		maxSeq = max(maxSeq, r.Seq)
		if records%stopCheckRecords == 0 && l.stopping() {
			stopped = true
			break
		}
	}
	if stopped {
		return fail(ErrClosed)
	}
	buf = appendSnapshotEnd(buf[:0], snapshotEnd{records: records, maxSeq: maxSeq})
	w.Write(buf)
	bytes += int64(len(buf))
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("writing %s: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("syncing %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		l.fs.Remove(tmp)
		return nil, fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := l.fs.Rename(tmp, name); err != nil {
		l.fs.Remove(tmp)
		return nil, fmt.Errorf("renaming %s: %w", tmp, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		// The snapshot may or may not survive a power cut; the segments
		// it replaces stay until one is known to.
		l.fs.Remove(name)
		return nil, fmt.Errorf("syncing directory %s: %w", l.dir, err)
	}
	return &diskFile{num: num, bytes: bytes, records: int64(records)}, nil
}

// stopping reports whether Close has begun.
func (l *Log) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// removeBefore removes the segments before num and the snapshots other than
// snapshot-num, which snapshot-num replaces. A file that cannot be removed
// stays counted, and the next snapshot tries again; recovery removes such
// files anyway.
func (l *Log) removeBefore(num uint64) {
	l.mu.Lock()
	var segs, snaps []*diskFile
	for _, s := range l.files.segs {
		if s.num < num {
			segs = append(segs, s)
		}
	}
	for _, s := range l.files.snaps {
		if s.num < num {
			snaps = append(snaps, s)
		}
	}
	l.mu.Unlock()

	var gone []*diskFile
	for _, s := range segs {
		if l.removeFile(segmentName(s.num)) {
			gone = append(gone, s)
		}
	}
	for _, s := range snaps {
		if l.removeFile(snapshotName(s.num)) {
			gone = append(gone, s)
		}
	}
	if len(gone) > 0 {
		// Not needed for consistency (recovery removes what a crash brings
		// back), but the space is then free for good.
		if err := l.fs.SyncDir(l.dir); err != nil {
			l.warn("herd storage: syncing the directory after removing replaced files failed", l.dir, err)
		}
	}

	l.mu.Lock()
	l.files.segs = slices.DeleteFunc(l.files.segs, func(s *diskFile) bool { return slices.Contains(gone, s) })
	l.files.snaps = slices.DeleteFunc(l.files.snaps, func(s *diskFile) bool { return slices.Contains(gone, s) })
	l.mu.Unlock()
}

func (l *Log) removeFile(base string) bool {
	name := filepath.Join(l.dir, base)
	if err := l.fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.warn("herd storage: removing a replaced file failed", name, err)
		return false
	}
	return true
}

// snapshotLoop takes a snapshot when the log since the last one has grown to
// max(MinSnapshotLogBytes, the last snapshot's size): the disk then holds at
// most about twice the table, and a restart reads one snapshot and at most
// about as much log.
func (l *Log) snapshotLoop() {
	defer l.wg.Done()
	tick := time.NewTicker(l.timing.snapshotCheck)
	defer tick.Stop()
	var notBefore time.Time
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		if time.Now().Before(notBefore) || !l.wantSnapshot() {
			continue
		}
		if err := l.Snapshot(); err != nil {
			if errors.Is(err, ErrClosed) {
				return
			}
			notBefore = time.Now().Add(l.timing.snapshotRetry)
			l.logger.Warn("herd storage: a snapshot failed; the log grows until one succeeds",
				zapDir(l.dir), zapError(err), zapRetryIn(l.timing.snapshotRetry))
		}
	}
}

// wantSnapshot reports whether the log has grown enough for a snapshot, or
// recovery asked for one.
func (l *Log) wantSnapshot() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	threshold := max(l.minSnapshotLogBytes, l.files.lastSnapshotBytes())
	return l.snapshotDue || l.files.logBytes() >= threshold
}
