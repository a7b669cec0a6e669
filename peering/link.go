package peering

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/protocol"
)

// Link limits.
const (
	// dialTimeout bounds one connection attempt.
	dialTimeout = 3 * time.Second
	// writeTimeout bounds one batch write: a peer that stops reading for
	// longer is dropped and redialled, and its catch-up is sent afresh.
	writeTimeout = 10 * time.Second
	// stableAfter is how long a link must stay up before a later drop is
	// redialled from the shortest backoff again; a peer that accepts and drops
	// at once is redialled ever more slowly.
	stableAfter = 5 * time.Second
	// deadlineEvery is how many records of a catch-up are written between
	// two extensions of the write deadline.
	deadlineEvery = 1024
	// writeBufferBytes is the size of a link's write buffer.
	writeBufferBytes = 64 << 10
	// drainPoll is how often Drain looks at the queue.
	drainPoll = 5 * time.Millisecond
	// quietAfter is the gap between Flushes that makes a link quiet, so that
	// Flush writes from the caller's goroutine. A busy link's goroutine
	// batches what many connections queue; on a link with fewer updates than
	// one a millisecond, waking it would only add a hand-off between threads
	// to every hop a record makes.
	quietAfter = time.Millisecond
	// quietMaxRecords is the most records a Flush writes from the caller's
	// goroutine: more are a busy link's, for its goroutine to write.
	quietMaxRecords = 64
	// helloTimeout bounds the wait for the peer's answer to HELLO. A classic
	// peer answers `? <line>` at once; one that answers nothing gets the
	// whole table after this long.
	helloTimeout = 3 * time.Second
	// markEvery is how often a link tells a peer that takes part in the
	// exchange how far it has sent (THROUGH): after a reconnect, what was sent
	// since the last mark goes again, and every mark costs the peer a write.
	markEvery = 100 * time.Millisecond
	// storedPoll is how often a catch-up looks whether the records it is to
	// send are stored.
	storedPoll = 200 * time.Microsecond
)

// Table is what a link catches its peer up from: the server's client table,
// whose records are numbered as they are stored.
type Table interface {
	// RangeSince calls fn with every record numbered after after and up to
	// through, until fn returns false.
	RangeSince(after, through uint64, fn func(r herdstore.Record, seq uint64) bool)
	// Len returns the number of clients.
	Len() int
	// Seq returns the number of the record stored last.
	Seq() uint64
}

// Server is what a link needs of the server it belongs to.
type Server interface {
	Table
	// Name returns the server's herd name, which the link introduces it by.
	Name() string
	// Epoch returns the name of the server's numbering of records.
	Epoch() string
	// Watermark returns a number up to which every record the server
	// numbered is stored and was handed to its links. Records numbered
	// beyond it may still be on their way to disk.
	Watermark() uint64
}

// Link is the outbound connection to one peer.
type Link struct {
	name    string
	address string
	tls     *TLS // nil for plain TCP
	server  Server
	queue   *Queue
	logger  atomic.Pointer[zap.Logger]
	cancel  context.CancelFunc
	done    chan struct{}

	up        atomic.Bool
	since     atomic.Int64 // unix nanoseconds of the last change between up and down
	lastError atomic.Pointer[string]
	connects  atomic.Int64
	sent      atomic.Int64
	bytesSent atomic.Int64
	received  atomic.Int64
	bytesRecv atomic.Int64
	// exchange is set while the connection's peer takes part in the
	// catch-up exchange; marked is the last THROUGH written on it.
	exchange  atomic.Bool
	marked    atomic.Uint64
	lastCatch atomic.Pointer[CatchUp]
	// catching is the catch-up being written, while it is.
	catching atomic.Pointer[catchUpProgress]
	// markNow asks for a THROUGH at the next chance, for Drain.
	markNow atomic.Bool
	// markBuf holds the THROUGH line being written.
	markBuf [64]byte

	out connWriter
	// lastFlush is when Flush was last called, from monotonic; gapped is
	// set if that call came quietAfter after the one before.
	lastFlush atomic.Int64
	gapped    atomic.Bool
	// quietAfter is the package's quietAfter, or another value in tests;
	// helloTimeout likewise.
	quietAfter   time.Duration
	helloTimeout time.Duration
}

// Status is a snapshot of a link's state.
type Status struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	Up        bool      `json:"up"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Pending   int       `json:"pending"`
	Connects  int64     `json:"connects"`
	Sent      int64     `json:"records_sent"`
	BytesSent int64     `json:"bytes_sent"`
	// Received counts the lines the peer sent back on the link: complaints,
	// since a valid AT gets no reply.
	Received      int64 `json:"lines_received"`
	BytesReceived int64 `json:"bytes_received"`
	// Exchange is whether the peer takes part in the catch-up exchange on
	// the current connection (see the protocol notes), and Through the last
	// number it was told everything up to.
	Exchange bool   `json:"exchange"`
	Through  uint64 `json:"through,omitempty"`
	// LastCatchUp is what the link sent the last time it caught the peer up.
	LastCatchUp *CatchUp `json:"last_catch_up,omitempty"`
	// CatchUp is the catch-up being written now, if any: what it has
	// written so far, and for how long.
	CatchUp *CatchUp `json:"catch_up,omitempty"`
}

// CatchUp is what one catch-up of a peer sent.
type CatchUp struct {
	At time.Time `json:"at"`
	// After is the number after which records were sent: 0 for the whole
	// table.
	After   uint64  `json:"after"`
	Through uint64  `json:"through"`
	Records int64   `json:"records"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// catchUpProgress is a catch-up being written, as Status reads it.
type catchUpProgress struct {
	at             time.Time
	after, through uint64
	records, bytes atomic.Int64
}

// Status returns the link's current state.
func (l *Link) Status() Status {
	st := Status{
		Name:          l.name,
		Address:       l.address,
		Up:            l.up.Load(),
		Since:         time.Unix(0, l.since.Load()),
		Pending:       l.queue.Len(),
		Connects:      l.connects.Load(),
		Sent:          l.sent.Load(),
		BytesSent:     l.bytesSent.Load(),
		Received:      l.received.Load(),
		BytesReceived: l.bytesRecv.Load(),
		Exchange:      l.exchange.Load(),
		Through:       l.marked.Load(),
		LastCatchUp:   l.lastCatch.Load(),
	}
	if e := l.lastError.Load(); e != nil {
		st.LastError = *e
	}
	if p := l.catching.Load(); p != nil {
		st.CatchUp = &CatchUp{At: p.at, After: p.after, Through: p.through, Records: p.records.Load(),
			Bytes: p.bytes.Load(), Seconds: time.Since(p.at).Seconds()}
	}
	return st
}

// setState records the link's state. Since moves when the link comes up or
// goes down, not at each failed redial: a peer down for an hour has been down
// since then, however often the link tried it meanwhile.
func (l *Link) setState(up bool, err error) {
	if l.up.Swap(up) != up || up {
		l.since.Store(time.Now().UnixNano())
	}
	if err != nil {
		msg := err.Error()
		l.lastError.Store(&msg)
	}
}

// NewLink returns a link of server to the peer name at address, over mutual
// TLS with tlsConfig or over plain TCP if it is nil. It does nothing until
// Start.
func NewLink(name, address string, tlsConfig *TLS, server Server, logger *zap.Logger) *Link {
	l := &Link{name: name, address: address, tls: tlsConfig, server: server, queue: NewQueue(server.Len), done: make(chan struct{}), quietAfter: quietAfter, helloTimeout: helloTimeout}
	l.since.Store(time.Now().UnixNano())
	l.SetLogger(logger)
	return l
}

// Name returns the peer's name.
func (l *Link) Name() string { return l.name }

// Address returns the peer's address.
func (l *Link) Address() string { return l.address }

// TLSFingerprint identifies the TLS material the link dials with, "" for
// plain TCP: a reload that changes it must redial.
func (l *Link) TLSFingerprint() string { return l.tls.Fingerprint() }

// SetLogger replaces the logger, for a config reload that changes logging.
func (l *Link) SetLogger(logger *zap.Logger) {
	l.logger.Store(logger.With(zap.String("peer", l.name), zap.String("address", l.address)))
}

// Start dials the peer in the background and keeps the link up until Close.
func (l *Link) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(ctx)
}

// Close ends the link and waits for its goroutines to finish.
func (l *Link) Close() {
	if l.cancel == nil {
		return
	}
	l.cancel()
	<-l.done
}

// Drain waits until everything queued has been written to an up link, and a
// peer that takes part in the exchange was told so (THROUGH), or until
// timeout, and reports whether the link is drained. A link that is down has
// nothing it could drain: the peer catches up when it is back. The caller
// stops storing records first: the mark covers every record stored so far.
func (l *Link) Drain(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	target := l.server.Seq()
	l.markNow.Store(true)
	l.queue.Wake()
	for l.up.Load() && (!l.queue.Idle() || l.out.behind.Load() || (l.exchange.Load() && l.marked.Load() < target)) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(drainPoll)
	}
	return true
}

// Push queues a copy of lines for the peer, records' AT lines, each ended
// by '\n', without writing them: the caller flushes once it has pushed what
// it has, so that a burst leaves in one write.
func (l *Link) Push(lines []byte) { l.queue.Push(lines) }

// Flush has what was pushed written, and never blocks. On a quiet link, one
// whose last two Flushes each came quietAfter after the one before, the
// caller writes it at once, if the connection takes it without blocking;
// otherwise the link's goroutine is woken to write it, batched with whatever
// is pushed meanwhile. One long gap is not enough: a loaded server that the
// machine gave no CPU for a while sees one too, and there a write per update
// would cost more than the hand-off it saves.
func (l *Link) Flush() {
	now := monotonic()
	gapped := now-l.lastFlush.Swap(now) >= int64(l.quietAfter)
	quiet := l.gapped.Swap(gapped) && gapped
	if l.queue.Waiting() && (!quiet || !l.writeQueued()) {
		l.queue.Wake()
	}
}

// Pending returns the number of records waiting to be sent.
func (l *Link) Pending() int { return l.queue.Len() }

func (l *Link) run(ctx context.Context) {
	defer close(l.done)
	defer func() { l.logger.Load().Info("peer link closed") }()
	attempt := 0
	for {
		conn, err := l.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.setState(false, err)
			delay := backoff(attempt)
			attempt++
			l.logger.Load().Warn("peer dial failed", zap.Error(err), zap.Int("attempt", attempt), zap.Duration("retry_in", delay))
			if !sleep(ctx, delay) {
				return
			}
			continue
		}
		up := time.Now()
		l.connects.Add(1)
		l.setState(true, nil)
		l.logger.Load().Info("peer link up", zap.String("local", conn.LocalAddr().String()))
		err = l.serve(ctx, conn)
		l.setState(false, err)
		l.queue.Resync() // the next connection begins with a catch-up
		if ctx.Err() != nil {
			return
		}
		if time.Since(up) >= stableAfter {
			attempt = 0
		}
		delay := backoff(attempt)
		attempt++
		l.logger.Load().Warn("peer link down", zap.Error(err), zap.Duration("up_for", time.Since(up)), zap.Duration("retry_in", delay))
		if !sleep(ctx, delay) {
			return
		}
	}
}

// dial connects to the peer and, over TLS, completes the handshake, which
// verifies the peer's certificate; both within dialTimeout.
func (l *Link) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", l.address)
	if err != nil || l.tls == nil {
		return conn, err
	}
	tlsConn := tls.Client(conn, l.tls.clientConfig(l.name))
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tlsConn, nil
}

// exchange is what a connection's peer said of the catch-up exchange.
type exchange struct {
	// on is set when the peer takes part: it is told how far the link has
	// sent (THROUGH).
	on bool
	// skipOwn is set when the peer does not need the records it made.
	skipOwn bool
	// covered is a number up to which the peer holds every record the server
	// numbered, or a newer one for the same client: a catch-up sends what
	// is numbered after it. It starts at what the peer said (0 for nothing)
	// and grows as the link sends.
	covered uint64
	// markedAt is when covered was last computed.
	markedAt time.Time
}

// serve introduces the server, catches the peer up and streams updates until
// the connection fails or ctx ends.
func (l *Link) serve(ctx context.Context, conn net.Conn) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	replies := bufio.NewReaderSize(conn, 4096)
	ex, err := l.introduce(conn, replies)
	if err != nil {
		conn.Close()
		return err
	}
	l.exchange.Store(ex.on)
	defer l.exchange.Store(false)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		cancel(l.readReplies(replies))
	}()
	defer func() {
		conn.Close()
		<-readerDone
	}()
	// Closing the connection when the link ends unblocks a write to a peer
	// that stopped reading: Close is prompt, and a graceful stop drains first.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var ticks <-chan time.Time
	if ex.on {
		ticker := time.NewTicker(markEvery)
		defer ticker.Stop()
		ticks = ticker.C
	}
	w := bufio.NewWriterSize(conn, writeBufferBytes)
	l.out.attach(conn)
	defer l.out.detach()
	for {
		l.out.mu.Lock()
		// Both numbers are read before the queue is taken: whatever was
		// stored up to them is in this batch, in one before, or in the table
		// for a catch-up to read.
		seq := l.server.Seq()
		var through uint64
		if seq > ex.covered && (l.markNow.Load() || time.Since(ex.markedAt) >= markEvery) {
			through = l.server.Watermark()
			ex.markedAt = time.Now()
		}
		batch, count, resync := l.queue.Take()
		if len(batch) == 0 && !resync && len(l.out.unsent) == 0 && (!ex.on || through <= ex.covered) {
			l.queue.Written(batch)
			l.out.mu.Unlock()
			select {
			case <-l.queue.Ready():
				// Yield once so that the connections which woke the link can
				// queue more: a busy link then writes batches, not single lines.
				runtime.Gosched()
				continue
			case <-ticks:
				continue
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		err := l.writeBatch(ctx, conn, w, batch, count, resync, seq, through, &ex)
		l.queue.Written(batch)
		l.out.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// introduce sends HELLO and reads the peer's answer. A peer that answers
// anything but SINCE, or nothing within helloTimeout, is a classic one: it
// gets the whole table and no THROUGH. An error means the connection failed.
func (l *Link) introduce(conn net.Conn, replies *bufio.Reader) (exchange, error) {
	name, epoch := l.server.Name(), l.server.Epoch()
	hello := protocol.AppendHello(nil, name, epoch)
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return exchange{}, err
	}
	if _, err := conn.Write(hello); err != nil {
		return exchange{}, fmt.Errorf("sending HELLO: %w", err)
	}
	l.bytesSent.Add(int64(len(hello)))
	if err := conn.SetReadDeadline(time.Now().Add(l.helloTimeout)); err != nil {
		return exchange{}, err
	}
	line, err := replies.ReadSlice('\n')
	l.bytesRecv.Add(int64(len(line)))
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return exchange{}, err
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		l.logger.Load().Warn("peer did not answer HELLO; sending it the whole table", zap.Duration("waited", l.helloTimeout))
		return exchange{}, nil
	case errors.Is(err, io.EOF):
		return exchange{}, errPeerClosed
	case err != nil && !errors.Is(err, bufio.ErrBufferFull):
		return exchange{}, err
	}
	m, ok := protocol.ParseSync(protocol.Fields(nil, line))
	if !ok || m.Kind != protocol.SyncSince {
		l.received.Add(1)
		l.logger.Load().Info("peer does not take part in the catch-up exchange; sending it the whole table", zap.ByteString("reply", protocol.TrimSpace(line)))
		return exchange{}, nil
	}
	ex := exchange{on: true, skipOwn: !m.All}
	// A number beyond the server's own would be a numbering the server does
	// not know: it catches the peer up on everything.
	if string(m.Epoch) == epoch && m.Seq <= l.server.Seq() {
		ex.covered = m.Seq
	}
	return ex, nil
}

// writeBatch writes, in this order, what a direct write left unsent, the
// records numbered after ex.covered and up to seq if resync is set, batch
// (count lines) and, to a peer in the exchange, THROUGH the greater of through
// and the catch-up's end, when that is news. The caller holds l.out.mu.
func (l *Link) writeBatch(ctx context.Context, conn net.Conn, w *bufio.Writer, batch []byte, count int, resync bool, seq, through uint64, ex *exchange) error {
	if err := l.out.extendDeadline(); err != nil {
		return err
	}
	if len(l.out.unsent) > 0 {
		w.Write(l.out.unsent)
		l.out.unsent = l.out.unsent[:0]
	}
	if resync {
		if err := l.catchUp(ctx, conn, w, ex, seq); err != nil {
			return err
		}
		through = max(through, seq)
		if err := l.out.extendDeadline(); err != nil {
			return err
		}
	}
	w.Write(batch)
	var mark []byte
	if ex.on && through > ex.covered {
		mark = protocol.AppendThrough(l.markBuf[:0], through)
		w.Write(mark)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	l.out.behind.Store(false)
	l.written(batch, count, false)
	if through > ex.covered {
		ex.covered = through
	}
	if mark != nil {
		l.bytesSent.Add(int64(len(mark)))
		l.marked.Store(through)
	}
	return nil
}

// written counts count lines in batch as sent, and logs the last.
func (l *Link) written(batch []byte, count int, direct bool) {
	l.sent.Add(int64(count))
	l.bytesSent.Add(int64(len(batch)))
	if count == 0 {
		return
	}
	if ce := l.logger.Load().Check(zap.DebugLevel, "sent to peer"); ce != nil {
		last := batch[:len(batch)-1]
		last = last[bytes.LastIndexByte(last, '\n')+1:]
		ce.Write(zap.Int("records", count), zap.ByteString("last", last), zap.Bool("direct", direct))
	}
}

// writeQueued writes the queued records from the calling goroutine without
// blocking, and reports whether it wrote them all. It leaves them to the
// link's goroutine when that is writing, when the link is down or over TLS,
// when a catch-up is due, when more than quietMaxRecords wait, and when the
// socket does not take every byte: the rest is then the first thing the
// goroutine writes.
func (l *Link) writeQueued() bool {
	o := &l.out
	if !o.mu.TryLock() {
		return false
	}
	defer o.mu.Unlock()
	if o.raw == nil || len(o.unsent) > 0 {
		return false
	}
	// A write fails at once past the deadline, even one that cannot block: a
	// link whose updates are seconds apart extends it here.
	if time.Until(o.writeBy) < writeTimeout/2 {
		if err := o.extendDeadline(); err != nil {
			return false
		}
	}
	batch, count, ok := l.queue.TakeFew(quietMaxRecords)
	if !ok {
		return false
	}
	defer l.queue.Written(batch)
	if len(batch) == 0 {
		return true
	}
	n, err := writeNonBlocking(o.raw, batch)
	if n < len(batch) {
		// The goroutine finishes the write, or finds the connection failed
		// and catches the peer up on a new one.
		o.unsent = append(o.unsent, batch[n:]...)
		o.behind.Store(true)
	}
	if err != nil {
		return false
	}
	l.written(batch, count, true)
	return n == len(batch)
}

// catchUp writes the records numbered after ex.covered and up to seq, but
// those the peer made when it does not need them: the catch-up after a
// connect, or after the queue overflowed. It first waits until every record
// numbered up to seq is stored, so that nothing reaches the peer before it is
// on this server's disk. Records stored meanwhile are queued, and the peer
// keeps the newest of what it gets.
func (l *Link) catchUp(ctx context.Context, conn net.Conn, w *bufio.Writer, ex *exchange, seq uint64) error {
	for l.server.Watermark() < seq {
		if !sleep(ctx, storedPoll) {
			return context.Cause(ctx)
		}
	}
	start := time.Now()
	records, bytes := 0, 0
	progress := &catchUpProgress{at: start, after: ex.covered, through: seq}
	l.catching.Store(progress)
	defer l.catching.Store(nil)
	var err error
	l.server.RangeSince(ex.covered, seq, func(r herdstore.Record, _ uint64) bool {
		if ex.skipOwn && r.Server() == l.name {
			return true
		}
		if records%deadlineEvery == 0 {
			if err = conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
				return false
			}
		}
		line := r.Line()
		if _, err = w.WriteString(line); err != nil {
			return false
		}
		if err = w.WriteByte('\n'); err != nil {
			return false
		}
		records++
		bytes += len(line) + 1
		progress.records.Store(int64(records))
		progress.bytes.Store(int64(bytes))
		return ctx.Err() == nil
	})
	if err == nil {
		err = context.Cause(ctx)
	}
	if err == nil {
		err = w.Flush()
	}
	l.sent.Add(int64(records))
	l.bytesSent.Add(int64(bytes))
	if err != nil {
		return err
	}
	took := time.Since(start)
	l.lastCatch.Store(&CatchUp{At: start, After: ex.covered, Through: seq, Records: int64(records), Bytes: int64(bytes), Seconds: took.Seconds()})
	l.logger.Load().Info("peer caught up", zap.Uint64("after", ex.covered), zap.Uint64("through", seq),
		zap.Bool("whole_table", ex.covered == 0), zap.Int("records", records), zap.Int("bytes", bytes), zap.Duration("took", took))
	return nil
}

// errPeerClosed is the cause of a link that the peer closed.
var errPeerClosed = errors.New("peer closed the connection")

// readReplies reads what the peer sends back on the link. A valid AT gets no
// reply, so anything read is a peer's complaint about a line, worth a log.
func (l *Link) readReplies(r *bufio.Reader) error {
	for {
		line, err := r.ReadSlice('\n')
		l.bytesRecv.Add(int64(len(line)))
		if len(line) > 0 && (err == nil || line[len(line)-1] == '\n') {
			l.received.Add(1)
			l.logger.Load().Warn("peer answered", zap.ByteString("reply", line))
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, net.ErrClosed):
			return err
		default:
			if errors.Is(err, io.EOF) {
				return errPeerClosed
			}
			return err
		}
	}
}

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
