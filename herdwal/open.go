package herdwal

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Defaults of Options.
const (
	// DefaultSegmentBytes is the default Options.SegmentBytes: large
	// enough that segments are begun rarely (each costs two fsyncs), small
	// enough that a snapshot frees space soon.
	DefaultSegmentBytes = 64 << 20
	// DefaultMinSnapshotLogBytes is the default
	// Options.MinSnapshotLogBytes: a small table is not snapshotted more
	// often than every 64 MiB of log, which replays in well under a
	// second.
	DefaultMinSnapshotLogBytes = 64 << 20
)

// Options configure Open.
type Options struct {
	// FS is the file system of the directory; nil is the operating
	// system's.
	FS FS
	// Fsync is the durability level of Write; SetFsync changes it.
	Fsync Fsync
	// Epoch is the epoch of a directory created afresh; "" draws a new
	// random one (16 hex digits). A directory that has one keeps it.
	Epoch string
	// Cursors are kept from the start in a directory created afresh, and
	// written into it.
	Cursors map[string]Cursor
	// SegmentBytes is the size past which a segment is closed and a new
	// one begun; 0 is DefaultSegmentBytes.
	SegmentBytes int64
	// MinSnapshotLogBytes sets when a snapshot is taken: when the log since
	// the last one reaches max(MinSnapshotLogBytes, the last snapshot's
	// size); 0 is DefaultMinSnapshotLogBytes.
	MinSnapshotLogBytes int64
	// Source is the live table, for snapshots: every record, each with its
	// Seq. Records put into the table while a snapshot reads it may or may
	// not be in it, but a record must be in the table before its Write is
	// called, or a snapshot may miss a record whose segment it replaces.
	// Nil takes no automatic snapshots.
	Source iter.Seq[Record]
	// BootID identifies this boot of the machine; "" reads
	// /proc/sys/kernel/random/boot_id where there is one.
	BootID string
	// Logger gets the log's warnings; nil logs nothing.
	Logger *zap.Logger
	// ObserveFsync, if set, is called after each fsync of a segment with
	// how long it took.
	ObserveFsync func(time.Duration)
	// ObserveSnapshot, if set, is called after each snapshot taken with
	// how long it took.
	ObserveSnapshot func(time.Duration)

	timing timing
}

// Open locks dir (creating it and its parents if needed, mode 0o700) and
// recovers what it holds: it calls restore for every record of the snapshot
// and of the log after it, in the order they are stored. The caller keeps the
// newest record per client, so that order across snapshot and log does not
// matter. An error from restore is reported as Damage at that record and the
// record skipped; it does not stop the recovery. Open then begins a new
// segment and returns the log, ready for Write.
//
// Damage in the data never stops Open: it cuts the log at the first damage
// and reports what it did. Open fails when another process holds dir (the
// error wraps ErrLocked and names the holder's pid), for a meta file of
// another version or one it cannot read, and on I/O errors.
func Open(dir string, opts Options, restore func(Record) error) (*Log, Recovery, error) {
	start := time.Now()
	if opts.FS == nil {
		opts.FS = OSFS()
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.MinSnapshotLogBytes <= 0 {
		opts.MinSnapshotLogBytes = DefaultMinSnapshotLogBytes
	}
	if opts.BootID == "" {
		opts.BootID = readBootID()
	}
	if err := opts.check(); err != nil {
		return nil, Recovery{}, fmt.Errorf("opening herd storage %s: %w", dir, err)
	}
	dir = filepath.Clean(dir)

	if err := makeDir(opts.FS, dir); err != nil {
		return nil, Recovery{}, err
	}
	lock, lockBytes, err := lockDir(opts.FS, dir)
	if err != nil {
		return nil, Recovery{}, err
	}
	l, rec, err := open(dir, opts, restore, lock, lockBytes)
	if err != nil {
		lock.Close()
		return nil, Recovery{}, err
	}
	rec.Took = time.Since(start)
	return l, rec, nil
}

func (o *Options) check() error {
	if !o.Fsync.valid() {
		return fmt.Errorf("fsync level %v: want FsyncAlways, FsyncEverySec or FsyncOff", o.Fsync)
	}
	if o.Epoch != "" {
		if err := checkEpoch(o.Epoch); err != nil {
			return err
		}
	}
	if len(o.BootID) > maxShortBytes {
		return fmt.Errorf("boot id %.64q: longer than %d bytes", o.BootID, maxShortBytes)
	}
	for peer, c := range o.Cursors {
		if len(c.Epoch) > maxShortBytes || cursorEntryBytes(peer, c)-entryHeaderBytes > maxEntryBytes {
			return fmt.Errorf("cursor of peer %.64q: epoch or peer name too long", peer)
		}
	}
	return nil
}

// makeDir makes dir if it does not exist, and syncs its parent so that the
// new directory survives a power cut.
func makeDir(fsys FS, dir string) error {
	_, err := fsys.ReadDir(dir)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading directory %s: %w", dir, err)
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return fmt.Errorf("making directory %s: %w", dir, err)
	}
	if err := fsys.SyncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("syncing directory %s: %w", filepath.Dir(dir), err)
	}
	return nil
}

// open recovers the locked dir and begins its log.
func open(dir string, opts Options, restore func(Record) error, lock File, lockBytes int64) (*Log, Recovery, error) {
	r := &recoverer{fs: opts.FS, dir: dir, restore: restore, bootID: opts.BootID}
	if err := r.run(); err != nil {
		return nil, Recovery{}, fmt.Errorf("recovering herd storage %s: %w", dir, err)
	}
	rec := r.rec

	epoch := r.epoch
	writeNew := !r.hasMeta
	switch {
	case !r.hasMeta && r.anyFiles:
		epoch = newEpoch() // the data's numbering is unknown: begin anew
	case rec.Fresh && opts.Epoch != "":
		// A meta without data (its process died before its first segment)
		// names a numbering nothing uses yet: the caller's wins.
		writeNew = writeNew || opts.Epoch != r.epoch
		epoch = opts.Epoch
	case !r.hasMeta:
		epoch = newEpoch()
	}
	if writeNew {
		n, err := writeMeta(opts.FS, dir, epoch)
		if err != nil {
			return nil, Recovery{}, fmt.Errorf("creating herd storage %s: %w", dir, err)
		}
		r.files.metaBytes = n
	}
	rec.Epoch = epoch

	cursors := r.cursors
	var extra []byte
	if rec.Fresh {
		cursors = cloneCursors(opts.Cursors)
		for _, peer := range slices.Sorted(maps.Keys(cursors)) {
			extra = appendCursor(extra, peer, cursors[peer])
		}
	}
	rec.Cursors = cloneCursors(cursors)

	l := &Log{
		dir:                 dir,
		fs:                  opts.FS,
		logger:              opts.Logger,
		epoch:               epoch,
		bootID:              opts.BootID,
		segmentBytes:        opts.SegmentBytes,
		minSnapshotLogBytes: opts.MinSnapshotLogBytes,
		source:              opts.Source,
		observeFsync:        opts.ObserveFsync,
		observeSnapshot:     opts.ObserveSnapshot,
		timing:              opts.timing.withDefaults(),
		lock:                lock,
		fsync:               opts.Fsync,
		cursors:             cursors,
		files:               r.files,
		snapshotDue:         rec.Lossy,
		stop:                make(chan struct{}),
		kick:                make(chan struct{}, 1),
		soon:                make(chan struct{}, 1),
	}
	l.cond.L = &l.mu
	l.files.lockBytes = lockBytes
	if s := l.files.lastSnapshot(); s != nil {
		l.stats.lastSnapshotRecords, l.stats.lastSnapshotBytes = s.records, s.bytes
	}
	seg, err := l.createSegment(r.nextSeg, extra)
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("opening herd storage %s: %w", dir, err)
	}
	l.seg = seg
	l.nextSeg = r.nextSeg + 1
	l.files.segs = append(l.files.segs, seg.info)

	l.wg.Add(1)
	go l.flushLoop()
	if l.source != nil {
		l.wg.Add(1)
		go l.snapshotLoop()
	}
	return l, rec, nil
}
