// Package peering keeps the herd's outbound links to its peers: one TCP link
// per peer that dials, backs off, catches the peer up on what it has not seen
// (the whole table for a classic peer) and then streams live updates, without
// ever blocking the clients that cause them.
package peering

import (
	"bytes"
	"sync"
)

// Queue limits.
const (
	// minQueueBound is the fewest records a queue holds before it overflows,
	// so that a small table still absorbs a burst of updates.
	minQueueBound = 4096
	// maxSpareBytes is the largest written batch kept for reuse: a burst's
	// batch is not held for the life of the link.
	maxSpareBytes = 1 << 20
)

// Queue holds the lines waiting to be sent on one link, in the order they
// were pushed, as they go on the wire. Pushing is one copy under a lock: the
// clients' goroutines that push never wait for the link, and the link writes
// what it takes as it is.
//
// Its memory is bounded by the table, not by what the peer does: when more
// records are waiting than the table has clients (or minQueueBound), the queue
// drops them all and asks for a resync instead, and the link sends the table's
// records stored since what it knows it sent, which hold every dropped record
// or a newer one.
type Queue struct {
	mu    sync.Mutex
	lines []byte // whole lines, each ended by '\n'
	count int    // the lines in lines
	spare []byte // the last taken batch, reused once written
	// resync is set when a catch-up from the table must come before lines.
	resync bool
	// inFlight is set from a Take until Written, so that a drain does not
	// end while the taken lines are on their way.
	inFlight bool
	// bound returns how many records may wait before the queue overflows.
	bound func() int
	ready chan struct{}
}

// NewQueue returns a queue that overflows beyond bound() records, or
// minQueueBound if that is larger. It starts out asking for a resync: until
// the first Take, pushing costs nothing.
func NewQueue(bound func() int) *Queue {
	return &Queue{bound: bound, resync: true, ready: make(chan struct{}, 1)}
}

// Push queues a copy of lines: records' AT lines, each ended by '\n'. It
// never blocks, and it does not wake the link: the pusher calls Wake, or
// writes the queue itself, once it has pushed what it has.
func (q *Queue) Push(lines []byte) {
	if len(lines) == 0 {
		return
	}
	n := bytes.Count(lines, newline)
	q.mu.Lock()
	switch {
	case q.resync:
		// The coming resync reads the table, which already holds the records.
	case q.count+n > max(minQueueBound, q.bound()):
		q.drop()
		q.resync = true
	default:
		q.lines = append(q.lines, lines...)
		q.count += n
	}
	q.mu.Unlock()
}

var newline = []byte{'\n'}

// drop forgets the queued lines and their memory, which the resync that
// replaces them does not need. The caller holds mu.
func (q *Queue) drop() {
	q.lines, q.count = nil, 0
}

// Wake signals Ready, at most once until it is received.
func (q *Queue) Wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Resync drops what is queued and asks for a catch-up from the table. A
// link that is down asks for one, so that pushing costs nothing until it is
// up again and catches its peer up.
func (q *Queue) Resync() {
	q.mu.Lock()
	q.drop()
	q.resync = true
	q.inFlight = false
	q.mu.Unlock()
}

// Ready is signalled by Wake; a receiver then calls Take.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Take returns every queued line, oldest first, how many there are, and
// whether a catch-up from the table must be sent first. The caller owns the
// batch until Written.
func (q *Queue) Take() (batch []byte, count int, resync bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch, count, resync = q.take()
	q.resync = false
	q.inFlight = len(batch) > 0 || resync
	return batch, count, resync
}

// TakeFew is Take for a writer that only sends a few updates: while a
// resync is pending or more than max lines wait, it takes nothing and
// returns false.
func (q *Queue) TakeFew(max int) (batch []byte, count int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.resync || q.count > max {
		return nil, 0, false
	}
	batch, count, _ = q.take()
	q.inFlight = len(batch) > 0
	return batch, count, true
}

// take hands out the queued lines and starts a new batch in the spare
// memory. The caller holds mu.
func (q *Queue) take() (batch []byte, count int, resync bool) {
	batch, count, resync = q.lines, q.count, q.resync
	q.lines, q.count, q.spare = q.spare[:0], 0, nil
	return batch, count, resync
}

// Written reports that the batch of the last Take is written, and gives its
// memory back for reuse.
func (q *Queue) Written(batch []byte) {
	q.mu.Lock()
	q.inFlight = false
	if q.spare == nil && cap(batch) <= maxSpareBytes {
		q.spare = batch[:0]
	}
	q.mu.Unlock()
}

// Idle reports whether nothing is pending or in flight.
func (q *Queue) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count == 0 && !q.resync && !q.inFlight
}

// Waiting reports whether lines or a resync wait to be written.
func (q *Queue) Waiting() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count > 0 || q.resync
}

// Len returns the number of pending lines.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count
}
