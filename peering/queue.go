// Package peering keeps the herd's outbound links to its peers: one TCP link
// per peer that dials, backs off, catches the peer up on the whole table and
// then streams live updates, without ever blocking the clients that cause them.
package peering

import (
	"sync"

	"github.com/caddy-herd/caddy-herd/herdstore"
)

// minQueueBound is the fewest records a queue holds before it overflows,
// so that a small table still absorbs a burst of updates.
const minQueueBound = 4096

// Queue holds the records waiting to be sent on one link, in the order they
// were pushed. Pushing is one append under a lock: the clients' goroutines
// that push never wait for the link.
//
// Its memory is bounded by the table, not by what the peer does: when more
// records are waiting than the table has clients (or minQueueBound), the queue
// drops them all and asks for a resync instead, and the link sends the whole
// table, which holds every dropped record or a newer one.
type Queue struct {
	mu      sync.Mutex
	records []herdstore.Record
	spare   []herdstore.Record // the last taken batch, reused once written
	resync  bool
	// inFlight is set from a Take until Written, so that a drain does not
	// end while the taken records are on their way.
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

// Push queues rs, in order. It never blocks, and it does not wake the link:
// the pusher calls Wake, or writes the queue itself, once it has pushed what
// it has.
func (q *Queue) Push(rs ...herdstore.Record) {
	if len(rs) == 0 {
		return
	}
	q.mu.Lock()
	switch {
	case q.resync:
		// The coming resync reads the table, which already holds rs.
	case len(q.records)+len(rs) > max(minQueueBound, q.bound()):
		clear(q.records)
		q.records = q.records[:0]
		q.resync = true
	default:
		q.records = append(q.records, rs...)
	}
	q.mu.Unlock()
}

// Wake signals Ready, at most once until it is received.
func (q *Queue) Wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Resync drops what is queued and asks for the whole table to be sent. A
// link that is down asks for one, so that pushing costs nothing until it is
// up again and catches its peer up.
func (q *Queue) Resync() {
	q.mu.Lock()
	clear(q.records)
	q.records = q.records[:0]
	q.resync = true
	q.inFlight = false
	q.mu.Unlock()
}

// Ready is signalled by Wake; a receiver then calls Take.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Take returns every queued record, oldest first, and whether the whole
// table must be sent first. The caller owns the batch until Written.
func (q *Queue) Take() (batch []herdstore.Record, resync bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch, resync = q.records, q.resync
	q.records, q.spare = q.spare[:0], nil
	q.resync = false
	q.inFlight = len(batch) > 0 || resync
	return batch, resync
}

// TakeFew is Take for a writer that only sends a few updates: while a
// resync is pending or more than max records wait, it takes nothing and
// returns false.
func (q *Queue) TakeFew(max int) (batch []herdstore.Record, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.resync || len(q.records) > max {
		return nil, false
	}
	batch = q.records
	q.records, q.spare = q.spare[:0], nil
	q.inFlight = len(batch) > 0
	return batch, true
}

// Written reports that the batch of the last Take is written, and gives its
// memory back for reuse.
func (q *Queue) Written(batch []herdstore.Record) {
	clear(batch)
	q.mu.Lock()
	q.inFlight = false
	if q.spare == nil && cap(batch) <= max(minQueueBound, q.bound()) {
		q.spare = batch[:0]
	}
	q.mu.Unlock()
}

// Idle reports whether nothing is pending or in flight.
func (q *Queue) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.records) == 0 && !q.resync && !q.inFlight
}

// Waiting reports whether records or a resync wait to be written.
func (q *Queue) Waiting() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.records) > 0 || q.resync
}

// Len returns the number of pending records.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.records)
}
