// Package peering keeps the herd's outbound links to its peers: one TCP link
// per peer that dials, backs off, catches the peer up on the whole table and
// then streams live updates, without ever blocking the clients that cause them.
package peering

import (
	"sync"

	"github.com/caddy-herd/caddy-herd/herdstore"
)

// Queue holds the records waiting to be sent on one link: at most one per
// client, a newer record replacing an older one in place, so its memory is
// bounded by the number of clients whatever the peer does.
type Queue struct {
	mu      sync.Mutex
	pending map[string]herdstore.Record
	order   []string
	ready   chan struct{}
	// inFlight counts the records of the last Take not yet reported
	// written, so that a drain does not end while they are on their way.
	inFlight int
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{pending: make(map[string]herdstore.Record), ready: make(chan struct{}, 1)}
}

// Push queues r unless a record at least as new is already pending for its
// client. It never blocks.
func (q *Queue) Push(r herdstore.Record) {
	q.mu.Lock()
	old, ok := q.pending[r.Client]
	switch {
	case !ok:
		q.pending[r.Client] = r
		q.order = append(q.order, r.Client)
	case r.NewerThan(old):
		q.pending[r.Client] = r
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled after a Push; a receiver then calls Take.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Take moves up to max pending records, oldest first, onto dst.
func (q *Queue) Take(dst []herdstore.Record, max int) []herdstore.Record {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, len(q.order))
	for _, client := range q.order[:n] {
		dst = append(dst, q.pending[client])
		delete(q.pending, client)
	}
	q.order = q.order[n:]
	if len(q.order) == 0 {
		q.order = nil
	}
	q.inFlight = n
	return dst
}

// Written reports that the records of the last Take are written.
func (q *Queue) Written() {
	q.mu.Lock()
	q.inFlight = 0
	q.mu.Unlock()
}

// Idle reports whether nothing is pending or in flight.
func (q *Queue) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order) == 0 && q.inFlight == 0
}

// Len returns the number of pending records.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// Clear drops every pending record.
func (q *Queue) Clear() {
	q.mu.Lock()
	q.pending = make(map[string]herdstore.Record)
	q.order = nil
	q.inFlight = 0
	q.mu.Unlock()
}
