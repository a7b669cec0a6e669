package peering

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connWriter is a link's connection as its two writers share it: the link's
// goroutine, which writes batches and catch-ups, and a Flush on a quiet link,
// which writes from the caller's goroutine.
type connWriter struct {
	// mu is held by whoever writes.
	mu sync.Mutex
	// conn is the link's connection, nil while the link is down.
	conn net.Conn
	// raw is conn's descriptor for non-blocking writes: nil over TLS, and
	// where the platform has none.
	raw rawConn
	// writeBy is the write deadline last set on conn.
	writeBy time.Time
	// unsent is the tail of a direct write that the socket did not take; the
	// link's goroutine writes it before anything else.
	unsent []byte

	// behind is set while unsent holds bytes, for Drain, which does not lock.
	behind atomic.Bool
}

// attach makes conn the connection written to.
func (o *connWriter) attach(conn net.Conn) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.conn, o.raw, o.writeBy = conn, rawConnOf(conn), time.Time{}
}

// detach forgets the connection and whatever it was owed: the next one
// starts with a catch-up.
func (o *connWriter) detach() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.conn, o.raw, o.unsent = nil, nil, nil
	o.behind.Store(false)
}

// extendDeadline gives the coming write writeTimeout. The caller holds mu.
func (o *connWriter) extendDeadline() error {
	o.writeBy = time.Now().Add(writeTimeout)
	return o.conn.SetWriteDeadline(o.writeBy)
}

// epoch anchors monotonic.
var epoch = time.Now()

// monotonic returns nanoseconds on the monotonic clock, for times kept in
// atomics.
func monotonic() int64 { return int64(time.Since(epoch)) }
