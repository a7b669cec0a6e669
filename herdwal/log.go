package herdwal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"maps"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrClosed is returned by Write, SetCursor, Sync and Snapshot after Close.
var ErrClosed = errors.New("herd storage closed")

// Group commit limits.
const (
	// maxSpareBytes bounds the buffer a writer keeps for the next batch: a
	// burst may grow it, and after the burst the log need not keep that
	// much memory.
	maxSpareBytes = 1 << 20

	// maxUnwaitedBytes bounds what Append and SetCursor leave pending: past
	// it the background writer writes at once, not after appendDelay.
	maxUnwaitedBytes = 256 << 10
)

// Log is a directory's append-only log of records, open for writing. Its
// methods are safe for concurrent use.
//
// Writes are group-committed: a writer that finds no write in progress
// writes everything pending, its own bytes and those of writers that came
// meanwhile, with one write(2) (and under FsyncAlways one fsync); the others
// wait for it and then find their bytes written.
type Log struct {
	dir                 string
	fs                  FS
	logger              *zap.Logger
	epoch               string
	bootID              string
	segmentBytes        int64
	minSnapshotLogBytes int64
	source              iter.Seq[Record]
	observeFsync        func(time.Duration)
	observeSnapshot     func(time.Duration)
	timing              timing
	lock                File

	// mu guards what follows. No I/O is done while holding it.
	mu   sync.Mutex
	cond sync.Cond // broadcast when written or synced advance, a writer is done, or the log closes

	fsync Fsync
	// pending holds entries appended but not yet taken by a writer, and
	// pendingRecords counts the records among them. spare is the buffer
	// the last writer gave back, for pending to use next.
	pending        []byte
	pendingRecords int64
	spare          []byte
	// Positions in the log, in bytes of entries since Open: end is after
	// the last byte appended, written after the last byte write(2) took,
	// synced after the last byte known durable (every byte before it is),
	// and syncWanted after the last byte a waiter needs durable.
	end, written, synced, syncWanted int64
	// writing is set while one goroutine writes (or rotates): the leader.
	// roleWanted counts goroutines other than writers (a rotation, Close)
	// waiting to be it: writers let them go first, or a steady stream of
	// writes would keep them waiting.
	writing    bool
	roleWanted int
	// waiters counts goroutines waiting for their bytes.
	waiters int
	closing bool // Close began: no more writes are taken
	closed  bool // Close is done

	seg         *segment // where writes go; replaced only by the leader
	nextSeg     uint64
	cursors     map[string]Cursor
	files       files
	stats       counters
	failures    [failureKinds]error  // being retried
	lastWarn    map[string]time.Time // by message
	snapshotDue bool                 // take a snapshot at the next check, whatever the log's size
	// rotateNotBefore delays the next try to begin a segment after one
	// failed.
	rotateNotBefore time.Time

	syncMu sync.Mutex // held to fsync a segment outside the leader, and to close one
	rotMu  sync.Mutex // one rotation at a time
	snapMu sync.Mutex // one snapshot at a time

	stop chan struct{} // closed by Close: background work and retries end
	kick chan struct{} // pending holds more entries no writer waits for than should wait
	soon chan struct{} // pending got entries no writer waits for: write them within appendDelay
	wg   sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Write appends entries, one or more entries made by AppendRecord, to the
// log. It copies them and returns when they are written as the Fsync level
// says: after write(2), or under FsyncAlways after their fsync too.
//
// A failure to write or fsync is retried until it succeeds (Stats.Error
// tells it meanwhile), so Write never reports success for bytes not written;
// it returns ErrClosed after Close, or when Close ends the log while it
// waits with its bytes not written. Entries that are not whole AppendRecord
// entries, or that are larger than a record with a line of MaxLineBytes,
// are refused whole with an error and nothing written.
func (l *Log) Write(entries []byte) error {
	return l.add(entries, true)
}

// add appends entries to what is pending and, when awaited, waits for them
// as Write does; otherwise it leaves them to the background writer.
func (l *Log) add(entries []byte, awaited bool) error {
	records, err := countRecords(entries)
	if err != nil {
		return fmt.Errorf("writing to herd storage %s: %w", l.dir, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	if len(entries) == 0 {
		return nil
	}
	had := len(l.pending)
	l.pending = append(l.pending, entries...)
	l.pendingRecords += records
	l.end += int64(len(entries))
	if !awaited {
		l.appendedUnwaited(had)
		return nil
	}
	return l.await(l.end, l.fsync == FsyncAlways)
}

// countRecords checks that b is a sequence of whole record entries, with
// lengths recovery accepts, and counts them. A malformed batch written to
// the log would make recovery cut there, and so lose every later entry.
func countRecords(b []byte) (int64, error) {
	var n int64
	for off := 0; off < len(b); {
		if len(b)-off < entryHeaderBytes+1 {
			return 0, fmt.Errorf("entries: a partial entry at byte %d", off)
		}
		size := int(binary.LittleEndian.Uint32(b[off:]))
		switch {
		case size == 0 || size > maxEntryBytes:
			return 0, fmt.Errorf("entries: invalid length %d at byte %d", size, off)
		case size > len(b)-off-entryHeaderBytes:
			return 0, fmt.Errorf("entries: a partial entry at byte %d", off)
		case b[off+entryHeaderBytes] != typeRecord:
			return 0, fmt.Errorf("entries: not a record at byte %d", off)
		}
		off += entryHeaderBytes + size
		n++
	}
	return n, nil
}

// await waits until the log is written (and, when durable, synced) up to end,
// writing as the leader when no one else does. It is called with mu held.
func (l *Log) await(end int64, durable bool) error {
	if durable {
		l.syncWanted = max(l.syncWanted, end)
	}
	for {
		if l.written >= end && (!durable || l.synced >= end) {
			return nil
		}
		if l.closed {
			return ErrClosed
		}
		if !l.writing && !l.closing && l.roleWanted == 0 {
			l.lead()
			continue
		}
		l.waiters++
		l.cond.Wait()
		l.waiters--
	}
}

// lead writes everything pending with one write(2), fsyncing it too when a
// waiter needs that, and begins a new segment after it when the current one
// is full. It is called with mu held and no leader, releases mu for the I/O
// and returns with it held.
func (l *Log) lead() {
	l.writing = true
	buf, records := l.pending, l.pendingRecords
	l.pending, l.spare, l.pendingRecords = l.spare[:0], nil, 0
	durable := l.syncWanted > l.synced
	seg := l.seg
	l.mu.Unlock()

	wrote, ok := l.writeFull(seg, buf)
	synced := false
	if ok && durable {
		_, synced = l.syncFull(seg)
	}

	l.mu.Lock()
	l.written += int64(wrote)
	seg.info.bytes += int64(wrote)
	l.stats.bytesWritten += int64(wrote)
	if ok {
		seg.info.records += records
		if cap(buf) <= maxSpareBytes {
			l.spare = buf[:0]
		}
	} else {
		// Closing with a failure: Close tries the rest once more.
		rest := append([]byte(nil), buf[wrote:]...)
		l.pending = append(rest, l.pending...)
		l.pendingRecords += records
	}
	if synced {
		l.synced = l.written
	}
	if ok {
		l.rotateFull()
	}
	l.releaseRole()
}

// takeRole waits until no one writes and makes the caller the one writer,
// ahead of writers waiting to lead. It is called with mu held.
func (l *Log) takeRole() {
	l.roleWanted++
	for l.writing {
		l.cond.Wait()
	}
	l.roleWanted--
	l.writing = true
}

// releaseRole ends what takeRole began. It is called with mu held.
func (l *Log) releaseRole() {
	l.writing = false
	l.cond.Broadcast()
	if len(l.pending) > 0 && l.waiters == 0 {
		notify(l.soon) // appended meanwhile without waiting, which no writer carries
	}
}

// notify wakes the goroutine that waits on c, unless it has been woken already.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// writeFull writes all of b to seg, retrying after a failure until it
// succeeds or the log closes. It returns how much it wrote, and whether that
// is all of b.
func (l *Log) writeFull(seg *segment, b []byte) (int, bool) {
	done := 0
	for done < len(b) {
		n, err := seg.f.Write(b[done:])
		if n > 0 {
			done += min(n, len(b)-done)
		}
		if err == nil && n <= 0 {
			err = errors.New("write returned no progress and no error")
		}
		if err != nil {
			l.failed(failWrite, "writing", seg.name, err)
			if !l.pause() {
				return done, false
			}
			continue
		}
	}
	l.succeeded(failWrite)
	return done, true
}

// pause waits before a retry; it reports false when the log closes first.
func (l *Log) pause() bool {
	t := time.NewTimer(l.timing.retryPause)
	defer t.Stop()
	select {
	case <-l.stop:
		return false
	case <-t.C:
		return true
	}
}

// fsynced counts an fsync of a segment that took took.
func (l *Log) fsynced(took time.Duration) {
	l.mu.Lock()
	l.stats.fsyncs++
	l.stats.lastFsync = time.Now()
	l.stats.lastFsyncDuration = took
	l.mu.Unlock()
	l.succeeded(failSync)
	if l.observeFsync != nil {
		l.observeFsync(took)
	}
}

// SetCursor records c as the cursor of peer if it Advances the stored one. The
// cursor is appended to the log without waiting for it to be written: losing
// it to a crash only means an older cursor, and every entry appended after it
// is written after it. It returns ErrClosed after Close.
func (l *Log) SetCursor(peer string, c Cursor) error {
	if len(c.Epoch) > maxShortBytes || cursorEntryBytes(peer, c)-entryHeaderBytes > maxEntryBytes {
		return fmt.Errorf("setting cursor of peer %.64q in herd storage %s: epoch or peer name too long", peer, l.dir)
	}
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	if old, ok := l.cursors[peer]; !c.Advances(old, ok) {
		l.mu.Unlock()
		return nil
	}
	l.cursors[peer] = c
	n := len(l.pending)
	l.pending = appendCursor(l.pending, peer, c)
	l.end += int64(len(l.pending) - n)
	l.appendedUnwaited(n)
	l.mu.Unlock()
	return nil
}

// Append appends entries, as Write does, without waiting for them: they are
// written by the next Write, or by the log within appendDelay (at once past
// maxUnwaitedBytes), and fsynced as writes are under FsyncEverySec. A crash
// may lose them, and only them or later entries, since the log keeps its
// order. It is for records that nothing was promised on: no reply waits for
// them and no peer is handed them. It returns ErrClosed after Close.
func (l *Log) Append(entries []byte) error {
	return l.add(entries, false)
}

// appendedUnwaited has the background writer write what was appended to
// pending, which held had bytes before, without a writer waiting for it. It
// is called with mu held.
func (l *Log) appendedUnwaited(had int) {
	switch {
	case len(l.pending) >= maxUnwaitedBytes:
		notify(l.kick)
	case had == 0:
		notify(l.soon)
	}
}

// Flush writes, and under FsyncAlways fsyncs, everything appended so far:
// what Append and SetCursor left pending included. It returns ErrClosed
// after Close.
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	return l.await(l.end, l.fsync == FsyncAlways)
}

// Cursor returns the stored cursor of peer.
func (l *Log) Cursor(peer string) (Cursor, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.cursors[peer]
	return c, ok
}

// Cursors returns a copy of every stored cursor, by peer.
func (l *Log) Cursors() map[string]Cursor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return cloneCursors(l.cursors)
}

func cloneCursors(m map[string]Cursor) map[string]Cursor {
	if m == nil {
		return map[string]Cursor{}
	}
	return maps.Clone(m)
}

// SetFsync changes the durability level, as a config reload may. Writes
// already waiting keep the level they started with.
func (l *Log) SetFsync(f Fsync) {
	if !f.valid() {
		f = FsyncEverySec
	}
	l.mu.Lock()
	l.fsync = f
	l.mu.Unlock()
}

// Sync writes and fsyncs everything written (or appended by SetCursor) so far,
// whatever the Fsync level. It returns ErrClosed after Close.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return ErrClosed
	}
	return l.await(l.end, true)
}

// Dir returns the log's directory.
func (l *Log) Dir() string {
	return l.dir
}

// Epoch returns the directory's epoch: the name of this server's numbering of
// the records in it.
func (l *Log) Epoch() string {
	return l.epoch
}

// Close writes what is pending and a closed entry, which tells the next Open
// that nothing was lost, fsyncs, closes the files, stops the log's goroutines
// and unlocks the directory. Writes waiting meanwhile return when their bytes
// are written, or ErrClosed. Calling Close again returns what the first call
// did.
func (l *Log) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Log) close() error {
	l.mu.Lock()
	l.closing = true
	l.cond.Broadcast()
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	// A Snapshot or rotation under way sees stop and ends; none begins after.
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.rotMu.Lock()
	defer l.rotMu.Unlock()

	l.mu.Lock()
	l.takeRole()
	buf := appendClosed(l.pending)
	l.pending = nil
	seg := l.seg
	l.mu.Unlock()

	var errs []error
	_, err := seg.f.Write(buf)
	if err != nil {
		errs = append(errs, fmt.Errorf("writing %s: %w", seg.name, err))
	} else if err = seg.f.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("syncing %s: %w", seg.name, err))
	}
	if cerr := seg.f.Close(); cerr != nil {
		errs = append(errs, fmt.Errorf("closing %s: %w", seg.name, cerr))
	}

	l.mu.Lock()
	if err == nil {
		l.written, l.synced = l.end, l.end
		seg.info.bytes += int64(len(buf))
		seg.info.records += l.pendingRecords
		l.stats.bytesWritten += int64(len(buf))
		l.pendingRecords = 0
	}
	l.closed = true
	l.releaseRole()
	l.mu.Unlock()

	if cerr := l.lock.Close(); cerr != nil {
		errs = append(errs, fmt.Errorf("unlocking: %w", cerr))
	}
	if len(errs) > 0 {
		return fmt.Errorf("closing herd storage %s: %w", l.dir, errors.Join(errs...))
	}
	return nil
}
