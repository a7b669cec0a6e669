package module

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/protocol"
)

// storage is the node's side of keeping the table on disk: the open log, if
// any, and what the node's numbering of records is called.
type storage struct {
	// opened is set once the first config's storage was applied: from then
	// on a config changes the node's storage rather than opens it.
	opened bool
	// closedBytes counts the bytes written by the logs closed before the
	// current one, so that the metric keeps counting up across a move.
	closedBytes atomic.Int64
	// cursors are the peers' cursors while the table is not on disk.
	cursors cursorBook
}

// cursorBook holds the peers' cursors in memory.
type cursorBook struct {
	mu sync.Mutex
	m  map[string]herdwal.Cursor
}

func (b *cursorBook) get(peer string) (herdwal.Cursor, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.m[peer]
	return c, ok
}

func (b *cursorBook) set(peer string, c herdwal.Cursor) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.m[peer]
	if !c.Advances(old, ok) {
		return
	}
	if b.m == nil {
		b.m = make(map[string]herdwal.Cursor)
	}
	b.m[peer] = c
}

func (b *cursorBook) all() map[string]herdwal.Cursor {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := make(map[string]herdwal.Cursor, len(b.m))
	for k, v := range b.m {
		m[k] = v
	}
	return m
}

func (b *cursorBook) replace(m map[string]herdwal.Cursor) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m = m
}

// newEpoch names a numbering of records that lives in memory only.
func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// startStorage makes the node's storage what plan says: at the first start
// it opens the directory and restores the table from it; on a reload it
// keeps the open log (with the new fsync level), moves the table into a new
// directory, or starts or stops keeping it on disk.
func (n *node) startStorage(p storagePlan, logger *zap.Logger) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	current := n.log.Load()
	switch {
	case !n.storage.opened && !p.off:
		if err := n.openStorage(p, logger); err != nil {
			return err
		}
	case current != nil && !p.off && current.Dir() == p.dir:
		current.SetFsync(p.fsync)
	case current != nil && p.off:
		n.storage.cursors.replace(current.Cursors())
		n.log.Store(nil)
		n.closeLog(current, logger)
		logger.Info("herd storage off: the table is kept in memory only from now on", zap.String("was", current.Dir()))
	case !p.off:
		if err := n.moveStorage(current, p, logger); err != nil {
			return err
		}
	}
	n.storage.opened = true
	return nil
}

// options returns the log options of plan for this node.
func (n *node) logOptions(p storagePlan, logger *zap.Logger) herdwal.Options {
	return herdwal.Options{
		Fsync:           p.fsync,
		Source:          n.records,
		Logger:          logger.Named("storage"),
		ObserveFsync:    func(d time.Duration) { fsyncDuration.Observe(d.Seconds()) },
		ObserveSnapshot: func(d time.Duration) { snapshotDuration.Observe(d.Seconds()) },
	}
}

// openStorage opens the directory of plan and restores the table it holds.
func (n *node) openStorage(p storagePlan, logger *zap.Logger) error {
	var fields [][]byte
	var scratch herdstore.Scratch
	restore := func(r herdwal.Record) error {
		fields = protocol.Fields(fields, r.Line)
		if protocol.Classify(fields) != protocol.AT {
			return errors.New("not a valid AT line")
		}
		n.store.Restore(scratch.MakeRecordOfFields(fields, herdstore.Origin{Arrived: r.Arrived, From: r.From}), r.Seq)
		return nil
	}
	log, rec, err := herdwal.Open(p.dir, n.logOptions(p, logger), restore)
	if err != nil {
		return fmt.Errorf("opening herd storage: %w", err)
	}
	for _, d := range rec.Damage {
		logger.Warn("herd storage damaged; starting with what comes before the damage", zap.String("file", d.File), zap.Int64("offset", d.Offset),
			zap.String("problem", d.Problem), zap.Int64("bytes_cut", d.Cut))
	}
	n.store.AdvanceSeq(uint64(time.Now().UnixNano()))
	epoch := rec.Epoch
	n.epoch.Store(&epoch)
	// Peers send a server that may have lost records of its own those too:
	// a new directory may be a wiped one, a power cut loses what was not
	// synced, and damage loses what it covers.
	n.resendOwn.Store(rec.Fresh || rec.Unsynced || rec.Lossy)
	n.log.Store(log)
	logger.Info("herd storage opened", zap.String("dir", p.dir), zap.String("fsync", p.fsync.String()), zap.Int("records", rec.Records),
		zap.Int("clients", n.store.Len()), zap.Bool("fresh", rec.Fresh), zap.Bool("closed_cleanly", rec.Clean),
		zap.Bool("lossy", rec.Lossy), zap.Int("peer_cursors", len(rec.Cursors)), zap.Duration("took", rec.Took))
	return nil
}

// moveStorage starts keeping the table in the empty directory of plan: from
// memory, or from the log current. The new directory first gets a snapshot of
// the table, then every write, then what the old log took meanwhile; a crash
// in between leaves every record in one of the two and with the peers.
func (n *node) moveStorage(current *herdwal.Log, p storagePlan, logger *zap.Logger) error {
	opts := n.logOptions(p, logger)
	opts.Epoch = n.numbering()
	if current != nil {
		opts.Cursors = current.Cursors()
	} else {
		opts.Cursors = n.storage.cursors.all()
	}
	log, rec, err := herdwal.Open(p.dir, opts, func(herdwal.Record) error { return nil })
	if err != nil {
		return fmt.Errorf("opening herd storage: %w", err)
	}
	if !rec.Fresh {
		log.Close()
		return fmt.Errorf("herd storage %s: already holds a table; a reload moves the running table only into an empty directory", p.dir)
	}
	before := n.store.Seq()
	if err := log.Snapshot(); err != nil {
		log.Close()
		return fmt.Errorf("moving the table into %s: %w", p.dir, err)
	}
	n.log.Store(log)
	// What was stored since the snapshot began may have missed it, and
	// written nowhere or to the old log only.
	var entries []byte
	n.store.RangeSince(before, math.MaxUint64, func(r herdstore.Record, seq uint64) bool {
		o := r.Origin()
		entries = herdwal.AppendRecord(entries, seq, o.Arrived, o.From, unsafeBytes(r.Line()))
		return true
	})
	if len(entries) > 0 {
		n.storeEntries(entries, true)
	}
	if current != nil {
		n.closeLog(current, logger)
		logger.Info("herd storage moved", zap.String("from", current.Dir()), zap.String("to", p.dir), zap.Int("clients", n.store.Len()))
	} else {
		logger.Info("herd storage on: the table is kept on disk from now on", zap.String("dir", p.dir), zap.Int("clients", n.store.Len()))
	}
	return nil
}

// closeLog closes a log the node no longer writes.
func (n *node) closeLog(l *herdwal.Log, logger *zap.Logger) {
	n.storage.closedBytes.Add(l.Stats().BytesWritten)
	if err := l.Close(); err != nil {
		logger.Error("closing herd storage", zap.String("dir", l.Dir()), zap.Error(err))
	}
}

// records yields every record of the table with its number: what a
// snapshot holds.
func (n *node) records(yield func(herdwal.Record) bool) {
	n.store.RangeSince(0, math.MaxUint64, func(r herdstore.Record, seq uint64) bool {
		o := r.Origin()
		return yield(herdwal.Record{Seq: seq, Arrived: o.Arrived, From: o.From, Line: unsafeBytes(r.Line())})
	})
}

// unsafeBytes returns the bytes of s without copying them, for writers that
// only read them.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// numbering returns the name of the node's numbering of records: its
// directory's epoch, or one of its own while the table is in memory only.
func (n *node) numbering() string {
	return *n.epoch.Load()
}

// cursor returns how far this server knows peer's numbering.
func (n *node) cursor(peer string) (herdwal.Cursor, bool) {
	if l := n.log.Load(); l != nil {
		return l.Cursor(peer)
	}
	return n.storage.cursors.get(peer)
}

// setCursor records how far this server knows peer's numbering. On disk it
// follows every record this server stored before, so that it never claims
// more than the table it is restored with.
func (n *node) setCursor(peer string, c herdwal.Cursor) {
	if !n.withLog(func(l *herdwal.Log) error { return l.SetCursor(peer, c) }) {
		n.storage.cursors.set(peer, c)
	}
}

// withLog calls do with the open log, again with the next one if a reload
// closed it meanwhile (moved the table, or turned storage off), and reports
// whether there was a log. Anything else closing it is the node stopping.
func (n *node) withLog(do func(*herdwal.Log) error) bool {
	for {
		l := n.log.Load()
		if l == nil {
			return false
		}
		err := do(l)
		if !errors.Is(err, herdwal.ErrClosed) || n.log.Load() == l {
			return true
		}
	}
}

// storeEntries writes the log entries of records that changed the table.
// When awaited, a reply or a link waits for them: it returns once they are
// written as the fsync level says. Otherwise it only appends them, for the
// log to write shortly. It returns at once when the table is in memory only.
func (n *node) storeEntries(entries []byte, awaited bool) {
	if awaited {
		n.withLog(func(l *herdwal.Log) error { return l.Write(entries) })
	} else {
		n.withLog(func(l *herdwal.Log) error { return l.Append(entries) })
	}
}

// flushLog writes what the log holds without a writer waiting for it, as
// the fsync level says, before records are handed to a peer from the table.
func (n *node) flushLog() {
	n.withLog((*herdwal.Log).Flush)
}

// storageStats returns the open log's statistics and the bytes every log of
// the node has written, or false while the table is in memory only.
func (n *node) storageStats() (herdwal.Stats, int64, bool) {
	l := n.log.Load()
	if l == nil {
		return herdwal.Stats{}, 0, false
	}
	st := l.Stats()
	return st, n.storage.closedBytes.Load() + st.BytesWritten, true
}

// storageView is GET /herd/storage.
type storageView struct {
	On    bool   `json:"on"`
	Epoch string `json:"epoch"`
	// Seq is the number of the record stored last.
	Seq                 uint64     `json:"seq"`
	Dir                 string     `json:"dir,omitempty"`
	Fsync               string     `json:"fsync,omitempty"`
	DiskBytes           int64      `json:"disk_bytes"`
	LogBytes            int64      `json:"log_bytes"`
	Segments            int        `json:"segments"`
	Records             int64      `json:"records"`
	BytesWritten        int64      `json:"bytes_written"`
	Fsyncs              int64      `json:"fsyncs"`
	LastFsync           *time.Time `json:"last_fsync,omitempty"`
	LastFsyncSeconds    float64    `json:"last_fsync_seconds"`
	Snapshots           int64      `json:"snapshots"`
	LastSnapshot        *time.Time `json:"last_snapshot,omitempty"`
	LastSnapshotSeconds float64    `json:"last_snapshot_seconds"`
	LastSnapshotRecords int64      `json:"last_snapshot_records"`
	LastSnapshotBytes   int64      `json:"last_snapshot_bytes"`
	Error               string     `json:"error,omitempty"`
	// Cursors are how far this server knows each peer's numbering.
	Cursors map[string]cursorView `json:"peer_cursors"`
}

// cursorView is a peer's cursor as the admin API shows it.
type cursorView struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

func cursorViews(m map[string]herdwal.Cursor) map[string]cursorView {
	v := make(map[string]cursorView, len(m))
	for peer, c := range m {
		v[peer] = cursorView{c.Epoch, c.Seq}
	}
	return v
}

func (n *node) storageView() storageView {
	v := storageView{Epoch: n.numbering(), Seq: n.store.Seq()}
	st, written, ok := n.storageStats()
	if !ok {
		v.Cursors = cursorViews(n.storage.cursors.all())
		return v
	}
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	v.On, v.Dir, v.Fsync = true, st.Dir, st.Fsync
	v.DiskBytes, v.LogBytes, v.Segments, v.Records, v.BytesWritten = st.DiskBytes, st.LogBytes, st.Segments, st.Records, written
	v.Fsyncs, v.LastFsync, v.LastFsyncSeconds = st.Fsyncs, at(st.LastFsync), st.LastFsyncDuration.Seconds()
	v.Snapshots, v.LastSnapshot, v.LastSnapshotSeconds = st.Snapshots, at(st.LastSnapshot), st.LastSnapshotDuration.Seconds()
	v.LastSnapshotRecords, v.LastSnapshotBytes, v.Error = st.LastSnapshotRecords, st.LastSnapshotBytes, st.Error
	if l := n.log.Load(); l != nil {
		v.Cursors = cursorViews(l.Cursors())
	}
	return v
}
