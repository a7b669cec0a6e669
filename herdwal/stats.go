package herdwal

import (
	"strings"
	"time"
)

// Stats is what a log has on disk and has done since Open, for metrics and
// the admin API.
type Stats struct {
	// Dir is the log's directory and Epoch its epoch.
	Dir   string
	Epoch string
	// Fsync is the durability level's name.
	Fsync string
	// DiskBytes is the size of every file of the directory, but for a
	// snapshot being written.
	DiskBytes int64
	// LogBytes is the size of the segments after the last snapshot: what
	// a restart replays after loading it.
	LogBytes int64
	// Segments is how many segments the directory holds.
	Segments int
	// Records counts the records on disk: in the last snapshot and in the
	// log after it.
	Records int64
	// BytesWritten counts the bytes written to the directory since Open:
	// entries, segment headers and snapshots.
	BytesWritten int64
	// Fsyncs counts the fsyncs of segments since Open; LastFsync is when
	// the last one ended and LastFsyncDuration how long it took.
	Fsyncs            int64
	LastFsync         time.Time
	LastFsyncDuration time.Duration
	// Snapshots counts the snapshots taken since Open; LastSnapshot is
	// when the last one ended and LastSnapshotDuration how long it took
	// (both zero until one is taken). LastSnapshotRecords and
	// LastSnapshotBytes are the records and size of the last snapshot on
	// disk, which may be one that Open found.
	Snapshots            int64
	LastSnapshot         time.Time
	LastSnapshotDuration time.Duration
	LastSnapshotRecords  int64
	LastSnapshotBytes    int64
	// Error is a write or fsync failure being retried, naming the file;
	// "" when none.
	Error string
}

// counters are what Stats reports of the log's work since Open.
type counters struct {
	bytesWritten         int64
	fsyncs               int64
	lastFsync            time.Time
	lastFsyncDuration    time.Duration
	snapshots            int64
	lastSnapshot         time.Time
	lastSnapshotDuration time.Duration
	lastSnapshotRecords  int64
	lastSnapshotBytes    int64
}

// files are the files of the directory and their sizes, kept as the log
// writes and removes them rather than asked of the file system.
type files struct {
	lockBytes int64
	metaBytes int64
	segs      []*diskFile // in order; the current segment is the last
	snaps     []*diskFile // in order
	// snapNum is the number of the snapshot recovery starts from, when
	// haveSnap: the segments from snapNum on are the log after it.
	snapNum  uint64
	haveSnap bool
}

// logBytes returns the size of the segments after the last snapshot.
func (f *files) logBytes() int64 {
	var n int64
	for _, s := range f.segs {
		if !f.haveSnap || s.num >= f.snapNum {
			n += s.bytes
		}
	}
	return n
}

// lastSnapshot returns the snapshot recovery starts from, or nil.
func (f *files) lastSnapshot() *diskFile {
	if !f.haveSnap {
		return nil
	}
	for _, s := range f.snaps {
		if s.num == f.snapNum {
			return s
		}
	}
	return nil
}

func (f *files) lastSnapshotBytes() int64 {
	if s := f.lastSnapshot(); s != nil {
		return s.bytes
	}
	return 0
}

// Stats returns what the log has on disk and has done since Open.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Stats{
		Dir:                  l.dir,
		Epoch:                l.epoch,
		Fsync:                l.fsync.String(),
		DiskBytes:            l.files.lockBytes + l.files.metaBytes,
		LogBytes:             l.files.logBytes(),
		Segments:             len(l.files.segs),
		BytesWritten:         l.stats.bytesWritten,
		Fsyncs:               l.stats.fsyncs,
		LastFsync:            l.stats.lastFsync,
		LastFsyncDuration:    l.stats.lastFsyncDuration,
		Snapshots:            l.stats.snapshots,
		LastSnapshot:         l.stats.lastSnapshot,
		LastSnapshotDuration: l.stats.lastSnapshotDuration,
		LastSnapshotRecords:  l.stats.lastSnapshotRecords,
		LastSnapshotBytes:    l.stats.lastSnapshotBytes,
	}
	for _, s := range l.files.segs {
		st.DiskBytes += s.bytes
		if !l.files.haveSnap || s.num >= l.files.snapNum {
			st.Records += s.records
		}
	}
	for _, s := range l.files.snaps {
		st.DiskBytes += s.bytes
	}
	if s := l.files.lastSnapshot(); s != nil {
		st.Records += s.records
	}
	var errs []string
	for _, err := range l.failures {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	st.Error = strings.Join(errs, "; ")
	return st
}
