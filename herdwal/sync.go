package herdwal

import "time"

// timing holds the intervals of a log's background work; zero fields take
// the defaults. Tests shorten them.
type timing struct {
	// syncEvery is how often FsyncEverySec fsyncs.
	syncEvery time.Duration
	// snapshotCheck is how often the log's size is checked against the
	// snapshot threshold.
	snapshotCheck time.Duration
	// retryPause is the wait before a failed write or fsync is retried.
	retryPause time.Duration
	// snapshotRetry is the wait after a failed automatic snapshot before
	// the next is tried: each try begins a segment and writes the table.
	snapshotRetry time.Duration
	// appendDelay is how long entries that no writer waits for (Append,
	// SetCursor) may stay pending.
	appendDelay time.Duration
}

// Default intervals.
const (
	// defaultSyncEvery is the "every second" of FsyncEverySec.
	defaultSyncEvery = time.Second
	// defaultSnapshotCheck makes a snapshot begin within about a second of
	// the log reaching its threshold.
	defaultSnapshotCheck = time.Second
	// defaultRetryPause keeps a failing disk from being retried in a busy
	// loop, and a recovered one waiting long.
	defaultRetryPause = time.Second
	// defaultSnapshotRetry spaces snapshots that keep failing (a full
	// disk), each of which costs a pass over the table.
	defaultSnapshotRetry = time.Minute
	// defaultAppendDelay lets the records a server learns from a busy
	// peer's link, and its cursors, go to disk in one write(2) for many
	// reads rather than one each, and bounds what a crash takes of them.
	defaultAppendDelay = 10 * time.Millisecond
)

func (t timing) withDefaults() timing {
	if t.syncEvery <= 0 {
		t.syncEvery = defaultSyncEvery
	}
	if t.snapshotCheck <= 0 {
		t.snapshotCheck = defaultSnapshotCheck
	}
	if t.retryPause <= 0 {
		t.retryPause = defaultRetryPause
	}
	if t.snapshotRetry <= 0 {
		t.snapshotRetry = defaultSnapshotRetry
	}
	if t.appendDelay <= 0 {
		t.appendDelay = defaultAppendDelay
	}
	return t
}

// flushLoop is the log's background writer: it writes entries no writer
// waits for (Append, SetCursor) within appendDelay, and fsyncs once a second
// unless under FsyncOff; under FsyncAlways that fsync finds work only when
// such entries were written.
func (l *Log) flushLoop() {
	defer l.wg.Done()
	tick := time.NewTicker(l.timing.syncEvery)
	defer tick.Stop()
	delay := time.NewTimer(l.timing.appendDelay)
	delay.Stop()
	defer delay.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
			l.flushPending()
		case <-l.soon:
			delay.Reset(l.timing.appendDelay)
		case <-delay.C:
			l.flushPending()
		case <-tick.C:
			l.flushPending()
			l.mu.Lock()
			syncs := l.fsync != FsyncOff
			l.mu.Unlock()
			if syncs {
				l.syncCurrent()
			}
		}
	}
}

// flushPending writes what is pending, unless a write is under way: its
// leader, or the next, takes it.
func (l *Log) flushPending() {
	l.mu.Lock()
	if !l.writing && !l.closing && l.roleWanted == 0 && len(l.pending) > 0 {
		l.lead()
	}
	l.mu.Unlock()
}

// syncCurrent fsyncs the current segment if anything was written since the
// last fsync. It runs beside writes, which need not wait for it: fsync and
// write(2) of one file may overlap. A failure is retried at the next call.
func (l *Log) syncCurrent() {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	seg, pos := l.seg, l.written
	due := pos > l.synced
	l.mu.Unlock()
	if !due {
		return
	}
	start := time.Now()
	if err := seg.f.Sync(); err != nil {
		l.failed(failSync, "syncing", seg.name, err)
		return
	}
	took := time.Since(start)
	l.mu.Lock()
	if l.seg == seg {
		// Every earlier segment was synced before seg replaced it.
		l.synced = max(l.synced, pos)
	}
	l.mu.Unlock()
	l.fsynced(took)
}
