package peering

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-herd/caddy-herd/herdstore"
)

func record(client, time string) herdstore.Record {
	return herdstore.NewRecord(fmt.Sprintf("AT S +0.000000001 %s +1+1 %s", client, time))
}

// lines returns the lines of rs as a link sends them.
func lines(rs ...herdstore.Record) []byte {
	var b []byte
	for _, r := range rs {
		b = append(b, r.Line()...)
		b = append(b, '\n')
	}
	return b
}

func TestQueue(t *testing.T) {
	q := NewQueue(func() int { return 0 })
	if batch, _, resync := q.Take(); len(batch) != 0 || !resync {
		t.Fatalf("new queue: Take = %q, resync %v; want a resync", batch, resync)
	}
	q.Written(nil)
	if !q.Idle() {
		t.Fatal("queue not idle after the resync was written")
	}
	pushed := lines(record("a", "1"), record("b", "1"))
	q.Push(pushed)
	copy(pushed, "overwritten by the pusher")
	q.Push(lines(record("a", "2")))
	if q.Len() != 3 || q.Idle() {
		t.Fatalf("Len = %d, Idle = %v after three lines pushed", q.Len(), q.Idle())
	}
	batch, count, resync := q.Take()
	if want := lines(record("a", "1"), record("b", "1"), record("a", "2")); resync || count != 3 || string(batch) != string(want) {
		t.Fatalf("Take = %q, %d lines, resync %v; want %q", batch, count, resync, want)
	}
	if q.Idle() {
		t.Error("queue idle while a batch is in flight")
	}
	q.Written(batch)
	if !q.Idle() || q.Len() != 0 {
		t.Error("queue not idle after the batch was written")
	}
}

// TestQueueKeepsLittleMemory checks that a burst's memory is not kept: a
// written batch larger than maxSpareBytes is not reused, and an overflow
// lets the queued lines go.
func TestQueueKeepsLittleMemory(t *testing.T) {
	q := NewQueue(func() int { return 1 << 20 })
	q.Take()
	q.Written(nil)
	burst := lines(record(strings.Repeat("k", 200), "1"))
	for range maxSpareBytes / len(burst) {
		q.Push(burst)
	}
	q.Push(lines(record("small", "1")))
	batch, _, _ := q.Take()
	if cap(batch) <= maxSpareBytes {
		t.Fatalf("the burst took %d bytes, want more than %d", cap(batch), maxSpareBytes)
	}
	q.Written(batch)
	if q.spare != nil {
		t.Errorf("the queue keeps the burst's %d bytes for reuse", cap(q.spare))
	}

	small := NewQueue(func() int { return 0 })
	small.Take()
	small.Written(nil)
	for range minQueueBound + 1 {
		small.Push(burst)
	}
	if cap(small.lines) != 0 || small.Len() != 0 {
		t.Errorf("after an overflow the queue holds %d lines in %d bytes", small.Len(), cap(small.lines))
	}
}

func TestQueueOverflowAsksForResync(t *testing.T) {
	tests := []struct {
		name      string
		tableSize int
		bound     int
		// batch is how many records each Push carries.
		batch int
	}{
		{"small table: the floor bounds it", 10, minQueueBound, 1},
		{"large table: its size bounds it", 3 * minQueueBound, 3 * minQueueBound, 1},
		{"pushed in batches that fill it exactly", 10, minQueueBound, 64},
		{"pushed in one batch", 3 * minQueueBound, 3 * minQueueBound, 3 * minQueueBound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQueue(func() int { return tt.tableSize })
			q.Take()
			q.Written(nil)
			var batch []herdstore.Record
			for i := range tt.bound {
				batch = append(batch, record(fmt.Sprint(i), "1"))
				if len(batch) == tt.batch {
					q.Push(lines(batch...))
					batch = batch[:0]
				}
			}
			if q.Len() != tt.bound {
				t.Fatalf("Len = %d after pushing %d records", q.Len(), tt.bound)
			}
			q.Push(lines(record("one-more", "1"), record("and-another", "1")))
			if q.Len() != 0 {
				t.Fatalf("Len = %d after overflowing, want 0", q.Len())
			}
			if batch, _, resync := q.Take(); len(batch) != 0 || !resync {
				t.Fatalf("Take after overflow = %q, resync %v", batch, resync)
			}
			q.Written(nil)

			// A batch that would cross the bound overflows it too.
			for i := range tt.bound - 1 {
				q.Push(lines(record(fmt.Sprint(i), "2")))
			}
			q.Push(lines(record("crossing", "2"), record("the-bound", "2")))
			if batch, _, resync := q.Take(); len(batch) != 0 || !resync {
				t.Fatalf("Take after a batch crossed the bound = %q, resync %v", batch, resync)
			}
		})
	}
}

func TestBackoffGrowsWithJitterToTheCap(t *testing.T) {
	for attempt := 0; attempt < 40; attempt++ {
		full := maxBackoff
		if attempt < 16 {
			full = min(minBackoff<<attempt, maxBackoff)
		}
		for i := 0; i < 20; i++ {
			if d := backoff(attempt); d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
}

// testServer is a link's server in tests: a table whose every record counts
// as stored as soon as it is put, unless behind holds the watermark back.
type testServer struct {
	*herdstore.Store
	name, epoch string
	behind      atomic.Uint64
}

func newServer() *testServer {
	return &testServer{Store: herdstore.New(), name: "S", epoch: "e1"}
}

func (s *testServer) Name() string      { return s.name }
func (s *testServer) Epoch() string     { return s.epoch }
func (s *testServer) Watermark() uint64 { return s.Seq() - s.behind.Load() }

// peer accepts links and hands over each connection's lines after it
// answered the link's HELLO: a classic peer answers `? <line>`.
type peer struct {
	ln    net.Listener
	conns chan *bufio.Scanner
	raw   chan net.Conn
	// answer returns the peer's answer to a HELLO, "" for none.
	answer func(hello string) string
	hellos chan string
}

func listenPeer(t *testing.T) *peer {
	t.Helper()
	return listenAnswering(t, func(hello string) string { return "? " + hello })
}

func listenAnswering(t *testing.T, answer func(hello string) string) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{ln: ln, conns: make(chan *bufio.Scanner, 4), raw: make(chan net.Conn, 4), answer: answer, hellos: make(chan string, 4)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.raw <- c
			s := bufio.NewScanner(c)
			// Lines longer than any record a test sends mean a broken one.
			s.Buffer(nil, 4096)
			p.conns <- s
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

// next returns the next link connection, its HELLO read and answered.
func (p *peer) next(t *testing.T) (*bufio.Scanner, net.Conn) {
	t.Helper()
	s, conn := p.accept(t)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if !s.Scan() {
		t.Fatalf("the link sent no HELLO: %v", s.Err())
	}
	hello := s.Text()
	if !strings.HasPrefix(hello, "HERD 1 HELLO ") {
		t.Fatalf("the link's first line is %q, want a HELLO", hello)
	}
	p.hellos <- hello
	if answer := p.answer(hello); answer != "" {
		if _, err := conn.Write([]byte(answer + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	return s, conn
}

// accept returns the next connection as it comes.
func (p *peer) accept(t *testing.T) (*bufio.Scanner, net.Conn) {
	t.Helper()
	select {
	case s := <-p.conns:
		return s, <-p.raw
	case <-time.After(10 * time.Second):
		t.Fatal("the link did not connect")
		return nil, nil
	}
}

func readLines(t *testing.T, s *bufio.Scanner, conn net.Conn, n int) []string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var lines []string
	for len(lines) < n && s.Scan() {
		lines = append(lines, s.Text())
	}
	if len(lines) < n {
		t.Fatalf("read %d lines, want %d (%v)", len(lines), n, s.Err())
	}
	sort.Strings(lines)
	return lines
}

func TestLinkCatchesUpThenStreamsAndRedials(t *testing.T) {
	store := newServer()
	store.Put(record("a", "1"))
	store.Put(record("b", "1"))
	p := listenPeer(t)
	l := NewLink("P", p.ln.Addr().String(), nil, store, zap.NewNop())
	l.Start()
	defer l.Close()

	s, conn := p.next(t)
	if got := readLines(t, s, conn, 2); got[0] != record("a", "1").Line() || got[1] != record("b", "1").Line() {
		t.Fatalf("catch-up = %v", got)
	}
	live := record("c", "2")
	store.Put(live)
	send(l, live)
	if got := readLines(t, s, conn, 1); got[0] != live.Line() {
		t.Fatalf("live update = %v", got)
	}

	// The peer drops the link: it is redialled and the whole table sent again.
	conn.Close()
	s, conn = p.next(t)
	if got := readLines(t, s, conn, 3); len(got) != 3 || got[2] != live.Line() {
		t.Fatalf("catch-up after redial = %v", got)
	}
}

func TestLinkCloseStopsDialling(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial fails
	l := NewLink("P", addr, nil, newServer(), zap.NewNop())
	l.Start()
	done := make(chan struct{})
	go func() { l.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop a link that was backing off")
	}
}

// TestLinkResyncsAfterOverflow holds a peer that does not read while its
// clients are updated many times over: the queue stays bounded, and once the
// peer reads again it gets every client's newest record, and nothing but
// whole lines, whether the link's goroutine wrote them or, on a link that
// counts as quiet at once, the senders (whose writes the full socket cuts).
func TestLinkResyncsAfterOverflow(t *testing.T) {
	for _, tt := range []struct {
		name       string
		quietAfter time.Duration
	}{
		{"written by the link", time.Hour},
		{"written by the senders while the socket takes it", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := newServer()
			p := listenPeer(t)
			l := NewLink("P", p.ln.Addr().String(), nil, store, zap.NewNop())
			l.quietAfter = tt.quietAfter
			l.Start()
			defer l.Close()
			s, conn := p.next(t) // accepted, not read yet
			waitIdle(t, l)

			const clients, versions = 100, 200 // 20,000 lines of 1 KiB: more than the socket buffers hold
			padding := strings.Repeat("x", 1000)
			newest := make(map[string]string)
			sent := make(map[string]bool)
			for v := 1; v <= versions; v++ {
				for c := range clients {
					r := record(fmt.Sprintf("%s-%d", padding, c), fmt.Sprint(v))
					store.Put(r)
					send(l, r)
					newest[r.Client()] = r.Line()
					sent[r.Line()] = true
				}
			}
			if n := l.Pending(); n > minQueueBound {
				t.Errorf("%d records pending, more than the queue's bound %d", n, minQueueBound)
			}

			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			lines := 0
			for len(newest) > 0 && s.Scan() {
				lines++
				if !sent[s.Text()] {
					t.Fatalf("line %d was never sent: %.60q...", lines, s.Text())
				}
				r := herdstore.NewRecord(s.Text())
				if newest[r.Client()] == r.Line() {
					delete(newest, r.Client())
				}
			}
			if len(newest) > 0 {
				t.Fatalf("%d clients' newest records never arrived after %d lines (%v)", len(newest), lines, s.Err())
			}
			if lines >= clients*versions {
				t.Errorf("read %d lines: the queue kept every update instead of resyncing", lines)
			}
		})
	}
}

// waitIdle waits until l is up and has written its catch-up.
func waitIdle(t *testing.T, l *Link) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !l.Status().Up || !l.queue.Idle() {
		if time.Now().After(deadline) {
			t.Fatal("the link did not catch its peer up")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFlushWritesAtOnceOnlyOnAQuietLink sends one record on a link that has
// been quiet and one right after it: the first is written by the sender, the
// second by the link's goroutine.
func TestFlushWritesAtOnceOnlyOnAQuietLink(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	p := listenPeer(t)
	l := NewLink("P", p.ln.Addr().String(), nil, newServer(), zap.New(core))
	l.quietAfter = time.Hour
	l.Start()
	defer l.Close()
	s, conn := p.next(t)
	waitIdle(t, l)

	// Quiet from now on: the first Flush sees a gap, the next a second one.
	l.quietAfter = 0
	l.Flush()
	send(l, record("quiet", "1"))
	if got := l.Status().Sent; got != 1 {
		t.Fatalf("records sent when Send returned on a quiet link = %d, want 1", got)
	}
	l.quietAfter = time.Hour // busy from now on
	send(l, record("busy", "1"))
	readLines(t, s, conn, 2)
	waitWrites(t, logs, 2)
	// One gap after a busy spell is not quiet yet; the next one is.
	l.quietAfter = 0
	send(l, record("after-busy", "1"))
	readLines(t, s, conn, 1)
	waitWrites(t, logs, 3)
	send(l, record("quiet-again", "1"))
	readLines(t, s, conn, 1)

	var direct []bool
	for _, e := range waitWrites(t, logs, 4) {
		direct = append(direct, e.ContextMap()["direct"] == true)
	}
	if want := []bool{true, false, false, true}; !slices.Equal(direct, want) {
		t.Errorf("writes direct from the sender: %v, want %v", direct, want)
	}
}

// waitWrites waits until n writes were logged, since a link's goroutine logs
// its write after making it, and returns their entries.
func waitWrites(t *testing.T, logs *observer.ObservedLogs, n int) []observer.LoggedEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries := logs.FilterMessage("sent to peer").All()
		if len(entries) >= n {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes logged, want %d", len(entries), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestQuietWriteTakesOnlyAFewRecords writes on a link whose goroutine never
// runs: more than quietMaxRecords are left queued for it, as many are
// written, although the last write's deadline has long passed.
func TestQuietWriteTakesOnlyAFewRecords(t *testing.T) {
	p := listenPeer(t)
	l := NewLink("P", p.ln.Addr().String(), nil, newServer(), zap.NewNop())
	client, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	s, conn := p.accept(t)
	l.out.attach(client)
	// As on a link whose last write was long ago: the deadline has passed.
	l.out.writeBy = time.Now().Add(-time.Minute)
	client.SetWriteDeadline(l.out.writeBy)
	batch, _, _ := l.queue.Take() // as if the catch-up were written
	l.queue.Written(batch)

	for i := range quietMaxRecords + 1 {
		l.Push(lines(record(fmt.Sprint("many-", i), "1")))
	}
	if l.writeQueued() || l.Pending() != quietMaxRecords+1 {
		t.Fatalf("%d records: written from the caller, %d left pending", quietMaxRecords+1, l.Pending())
	}
	batch, _, _ = l.queue.Take()
	l.queue.Written(batch)
	for i := range quietMaxRecords {
		l.Push(lines(record(fmt.Sprint("few-", i), "1")))
	}
	if !l.writeQueued() || l.Pending() != 0 {
		t.Fatalf("%d records: not written from the caller, %d left pending", quietMaxRecords, l.Pending())
	}
	if got := readLines(t, s, conn, quietMaxRecords); got[0] != record("few-0", "1").Line() {
		t.Errorf("first line %q", got[0])
	}
}

// send pushes r to l and flushes it, as a connection does with its updates.
func send(l *Link, r herdstore.Record) {
	l.Push(lines(r))
	l.Flush()
}

// TestDownSinceKeepsTheFirstFailure: a link that keeps failing to redial has
// been down since it went down, not since its last try.
func TestDownSinceKeepsTheFirstFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial fails
	core, logs := observer.New(zap.WarnLevel)
	l := NewLink("P", addr, nil, newServer(), zap.New(core))
	since := l.Status().Since
	l.Start()
	defer l.Close()
	// The first tries come 100, 200 and 400 ms apart.
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessage("peer dial failed").Len() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the link did not retry")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := l.Status(); st.Up || !st.Since.Equal(since) || st.LastError == "" {
		t.Errorf("after three failed dials: up %v since %v (created %v), error %q; want down since its creation", st.Up, st.Since, since, st.LastError)
	}
}

// TestStatusShowsTheCatchUpBeingWritten: a catch-up that a slow peer holds up
// shows in Status with what it wrote so far; once written, it becomes the
// last catch-up.
func TestStatusShowsTheCatchUpBeingWritten(t *testing.T) {
	const clients = 50000 // megabytes: more than the sockets buffer
	store := newServer()
	for i := range clients {
		store.Put(record(fmt.Sprint("client-", i), "1"))
	}
	p := listenPeer(t)
	l := NewLink("P", p.ln.Addr().String(), nil, store, zap.NewNop())
	l.Start()
	defer l.Close()
	s, conn := p.next(t)

	st := waitStatus(t, l, func(st Status) bool { return st.CatchUp != nil && st.CatchUp.Records > 0 })
	if c := st.CatchUp; c.After != 0 || c.Through != store.Seq() || c.Records >= clients || c.Bytes < c.Records {
		t.Errorf("the catch-up being written: %+v, want part of the whole table through %d", c, store.Seq())
	}
	readLines(t, s, conn, clients)
	st = waitStatus(t, l, func(st Status) bool { return st.CatchUp == nil && st.LastCatchUp != nil })
	if st.LastCatchUp.Records != clients {
		t.Errorf("the last catch-up sent %d records, want %d", st.LastCatchUp.Records, clients)
	}
}
