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
)

// Table is what a link catches its peer up from.
type Table interface {
	Range(fn func(herdstore.Record) bool)
	Len() int
}

// Link is the outbound connection to one peer.
type Link struct {
	name    string
	address string
	tls     *TLS // nil for plain TCP
	table   Table
	queue   *Queue
	logger  atomic.Pointer[zap.Logger]
	cancel  context.CancelFunc
	done    chan struct{}

	up        atomic.Bool
	since     atomic.Int64 // unix nanoseconds of the last state change
	lastError atomic.Pointer[string]
	connects  atomic.Int64
	sent      atomic.Int64
	bytesSent atomic.Int64
	received  atomic.Int64
	bytesRecv atomic.Int64

	out connWriter
	// lastFlush is when Flush was last called, from monotonic; gapped is
	// set if that call came quietAfter after the one before.
	lastFlush atomic.Int64
	gapped    atomic.Bool
	// quietAfter is the package's quietAfter, or another value in tests.
	quietAfter time.Duration
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
	}
	if e := l.lastError.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

func (l *Link) setState(up bool, err error) {
	l.up.Store(up)
	l.since.Store(time.Now().UnixNano())
	if err != nil {
		msg := err.Error()
		l.lastError.Store(&msg)
	}
}

// NewLink returns a link to the peer name at address that catches up from
// table, over mutual TLS with tlsConfig or over plain TCP if it is nil. It
// does nothing until Start.
func NewLink(name, address string, tlsConfig *TLS, table Table, logger *zap.Logger) *Link {
	l := &Link{name: name, address: address, tls: tlsConfig, table: table, queue: NewQueue(table.Len), done: make(chan struct{}), quietAfter: quietAfter}
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

// Drain waits until everything queued has been written to an up link, or
// until timeout, and reports whether the link is drained. A link that is down
// has nothing it could drain: the peer catches up when it is back.
func (l *Link) Drain(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	l.queue.Wake()
	for l.up.Load() && (!l.queue.Idle() || l.out.behind.Load()) {
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
		l.queue.Resync() // the next catch-up sends the whole table again
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

// serve catches the peer up and streams updates until the connection fails
// or ctx ends.
func (l *Link) serve(ctx context.Context, conn net.Conn) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		cancel(l.readReplies(conn))
	}()
	defer func() {
		conn.Close()
		<-readerDone
	}()
	// Closing the connection when the link ends unblocks a write to a peer
	// that stopped reading: Close is prompt, and a graceful stop drains first.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	w := bufio.NewWriterSize(conn, writeBufferBytes)
	l.out.attach(conn)
	defer l.out.detach()
	for {
		l.out.mu.Lock()
		batch, count, resync := l.queue.Take()
		if len(batch) == 0 && !resync && len(l.out.unsent) == 0 {
			l.queue.Written(batch)
			l.out.mu.Unlock()
			select {
			case <-l.queue.Ready():
				// Yield once so that the connections which woke the link can
				// queue more: a busy link then writes batches, not single lines.
				runtime.Gosched()
				continue
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		err := l.writeBatch(ctx, conn, w, batch, count, resync)
		l.queue.Written(batch)
		l.out.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// writeBatch writes, in this order, what a direct write left unsent, the
// whole table if resync is set, and batch, count lines. The caller holds
// l.out.mu.
func (l *Link) writeBatch(ctx context.Context, conn net.Conn, w *bufio.Writer, batch []byte, count int, resync bool) error {
	if err := l.out.extendDeadline(); err != nil {
		return err
	}
	if len(l.out.unsent) > 0 {
		w.Write(l.out.unsent)
		l.out.unsent = l.out.unsent[:0]
	}
	if resync {
		if err := l.sendTable(ctx, conn, w); err != nil {
			return err
		}
		if err := l.out.extendDeadline(); err != nil {
			return err
		}
	}
	w.Write(batch)
	if err := w.Flush(); err != nil {
		return err
	}
	l.out.behind.Store(false)
	l.written(batch, count, false)
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

// sendTable writes the whole table to the peer: the catch-up after a
// connect, or after the queue overflowed. Records put meanwhile are queued
// too, and the peer keeps the newest of what it gets.
func (l *Link) sendTable(ctx context.Context, conn net.Conn, w *bufio.Writer) error {
	start := time.Now()
	records, bytes := 0, 0
	var err error
	l.table.Range(func(r herdstore.Record) bool {
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
	l.logger.Load().Info("peer caught up", zap.Int("records", records), zap.Int("bytes", bytes), zap.Duration("took", time.Since(start)))
	return nil
}

// errPeerClosed is the cause of a link that the peer closed.
var errPeerClosed = errors.New("peer closed the connection")

// readReplies reads what the peer sends back on the link. A valid AT gets no
// reply, so anything read is a peer's complaint about a line, worth a log.
func (l *Link) readReplies(conn net.Conn) error {
	r := bufio.NewReaderSize(conn, 4096)
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
