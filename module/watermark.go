package module

import (
	"sync"
	"sync/atomic"
	"time"
)

// sessions knows every open connection's floor: the least number any record
// it stored may have that is not yet on disk and handed to the links. A
// connection numbers records one line at a time but writes them to disk and
// to the links once per read, so the records numbered up to some n are not
// all there once n was given: the watermark is the number below every floor.
type sessions struct {
	mu     sync.Mutex
	floors map[*atomic.Uint64]struct{}
}

// join registers a connection by its floor, 0 while it has no records on
// their way.
func (s *sessions) join(f *atomic.Uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.floors == nil {
		s.floors = make(map[*atomic.Uint64]struct{})
	}
	s.floors[f] = struct{}{}
}

// leave forgets a connection once it has stored and handed over its last
// records.
func (s *sessions) leave(f *atomic.Uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.floors, f)
}

// count returns the number of open connections.
func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.floors)
}

// watermark returns a number up to which every record numbered is stored
// and handed to the links, given seq, the table's last number, read first. A
// connection sets its floor to the table's last number plus one before its
// first put of a read, so a record numbered up to seq whose connection has
// not handed it over yet holds the floor below it.
func (s *sessions) watermark(seq uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for f := range s.floors {
		if v := f.Load(); v != 0 && v-1 < seq {
			seq = v - 1
		}
	}
	return seq
}

// waitClosed waits until every connection has left, or until timeout, and
// reports whether they all did.
func (s *sessions) waitClosed(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for s.count() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
