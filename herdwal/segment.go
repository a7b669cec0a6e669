package herdwal

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// File name prefixes of segments and snapshots, followed by a number of
// numberDigits hex digits so that sorted names are in numeric order.
const (
	segmentPrefix  = "log-"
	snapshotPrefix = "snapshot-"
	numberDigits   = 16
)

func segmentName(num uint64) string {
	return fmt.Sprintf("%s%0*x", segmentPrefix, numberDigits, num)
}

func snapshotName(num uint64) string {
	return fmt.Sprintf("%s%0*x", snapshotPrefix, numberDigits, num)
}

// parseNumbered returns the number of a name made by segmentName or
// snapshotName with prefix.
func parseNumbered(name, prefix string) (uint64, bool) {
	if len(name) != len(prefix)+numberDigits || name[:len(prefix)] != prefix {
		return 0, false
	}
	digits := name[len(prefix):]
	for i := 0; i < len(digits); i++ {
		if c := digits[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 16, 64)
	return n, err == nil
}

// diskFile is a segment or snapshot of the directory, as Stats counts it.
type diskFile struct {
	num     uint64
	bytes   int64
	records int64
}

// segment is the open segment that receives the log's writes.
type segment struct {
	num  uint64
	name string
	f    File
	info *diskFile
}

// createSegment creates segment num and makes it durable, header (and
// extra entries) included, before any record goes into it: recovery then
// always finds a segment it can read, and in the directory. A failure
// removes what it made, so that the number can be used again and no gap is
// left in the numbering.
func (l *Log) createSegment(num uint64, extra []byte) (*segment, error) {
	name := filepath.Join(l.dir, segmentName(num))
	f, err := l.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return nil, fmt.Errorf("creating segment %s: %w", name, err)
	}
	b := appendSegmentHeader(nil, segmentHeader{num: num, epoch: l.epoch, bootID: l.bootID})
	b = append(b, extra...)
	fail := func(doing string, err error) (*segment, error) {
		f.Close()
		l.fs.Remove(name)
		return nil, fmt.Errorf("%s segment %s: %w", doing, name, err)
	}
	if _, err := f.Write(b); err != nil {
		return fail("writing", err)
	}
	if err := f.Sync(); err != nil {
		return fail("syncing", err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fail("syncing the directory of", err)
	}
	l.mu.Lock()
	l.stats.bytesWritten += int64(len(b))
	l.mu.Unlock()
	return &segment{num: num, name: name, f: f, info: &diskFile{num: num, bytes: int64(len(b))}}, nil
}

// rotate begins the next segment for a snapshot: every write from now on
// goes into it. It returns the new segment's number and the cursors as they
// were at that moment, which is what a snapshot taken when the segment began
// holds.
func (l *Log) rotate() (uint64, map[string]Cursor, error) {
	l.rotMu.Lock()
	defer l.rotMu.Unlock()
	seg, err := l.nextSegment()
	if err != nil {
		return 0, nil, err
	}
	// Sync what the old segment holds while writes go on, so that the sync
	// in switchTo, during which they wait, has little left to do.
	l.syncCurrent()

	l.mu.Lock()
	l.takeRole()
	l.mu.Unlock()
	cursors, err := l.switchTo(seg)
	l.mu.Lock()
	l.releaseRole()
	l.mu.Unlock()
	if err != nil {
		return 0, nil, err
	}
	return seg.num, cursors, nil
}

// rotateFull begins the next segment when the current one has reached
// SegmentBytes. The leader calls it between writes, holding the role, with
// mu held; it releases mu for the I/O and returns with it held. Writes wait
// meanwhile: for a new file and two fsyncs, once every SegmentBytes.
func (l *Log) rotateFull() {
	if l.closing || l.seg.info.bytes < l.segmentBytes || time.Now().Before(l.rotateNotBefore) {
		return
	}
	// A snapshot beginning its segment makes a new one anyway.
	if !l.rotMu.TryLock() {
		return
	}
	defer l.rotMu.Unlock()
	l.mu.Unlock()
	seg, err := l.nextSegment()
	if err == nil {
		_, err = l.switchTo(seg)
	}
	l.mu.Lock()
	if err != nil && err != ErrClosed {
		// A full disk, say: the current segment grows until it passes.
		l.rotateNotBefore = time.Now().Add(l.timing.retryPause)
		l.mu.Unlock()
		l.warn("herd storage: beginning a new segment failed; the current one grows until it succeeds", l.dir, err)
		l.mu.Lock()
	}
}

// nextSegment creates the next segment, not yet receiving writes. It is
// called with rotMu held.
func (l *Log) nextSegment() (*segment, error) {
	l.mu.Lock()
	num, closing := l.nextSeg, l.closing
	l.mu.Unlock()
	if closing {
		return nil, ErrClosed
	}
	return l.createSegment(num, nil)
}

// switchTo makes seg, made by nextSegment, the segment that receives writes,
// and returns the cursors as they were at that moment. The old segment is
// fsynced first, so that nothing is counted as synced past bytes that are
// not, and then closed. It is called with rotMu and the role held, without
// mu.
func (l *Log) switchTo(seg *segment) (map[string]Cursor, error) {
	l.mu.Lock()
	old := l.seg
	l.mu.Unlock()
	if _, ok := l.syncFull(old); !ok {
		// Closing: the old segment stays the one Close writes to.
		seg.f.Close()
		if err := l.fs.Remove(seg.name); err == nil {
			l.fs.SyncDir(l.dir)
		} else {
			l.mu.Lock()
			l.nextSeg = seg.num + 1 // the file stays: do not make it again
			l.mu.Unlock()
		}
		return nil, ErrClosed
	}

	l.mu.Lock()
	l.seg = seg
	l.nextSeg = seg.num + 1
	l.files.segs = append(l.files.segs, seg.info)
	l.synced = max(l.synced, l.written) // all of it is in the synced old segment
	cursors := cloneCursors(l.cursors)
	l.mu.Unlock()

	l.syncMu.Lock()
	err := old.f.Close()
	l.syncMu.Unlock()
	if err != nil {
		l.warn("herd storage: closing a segment failed", old.name, err)
	}
	return cursors, nil
}

// syncFull fsyncs seg, retrying until it succeeds or the log closes; it
// reports how long the successful fsync took.
func (l *Log) syncFull(seg *segment) (time.Duration, bool) {
	for {
		start := time.Now()
		err := seg.f.Sync()
		took := time.Since(start)
		if err == nil {
			l.fsynced(took)
			return took, true
		}
		l.failed(failSync, "syncing", seg.name, err)
		if !l.pause() {
			return 0, false
		}
	}
}
