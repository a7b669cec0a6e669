package herdstore

import (
	"sync"
	"sync/atomic"
)

// shardCount spreads clients over independently locked maps so that puts from
// many connections rarely contend. A power of two.
const shardCount = 256

// Store is the client table. It is safe for concurrent use; no lock is held
// while callers do I/O.
type Store struct {
	shards [shardCount]shard
	size   atomic.Int64
}

type shard struct {
	mu      sync.RWMutex
	records map[string]Record
}

// New returns an empty table.
func New() *Store {
	s := new(Store)
	for i := range s.shards {
		s.shards[i].records = make(map[string]Record)
	}
	return s
}

// shardFor hashes a client ID with FNV-1a.
func (s *Store) shardFor(client string) *shard {
	h := uint32(2166136261)
	for i := 0; i < len(client); i++ {
		h ^= uint32(client[i])
		h *= 16777619
	}
	return &s.shards[h&(shardCount-1)]
}

// Get returns the record of a client. The conversion of client to a string
// in the map index does not allocate.
func (s *Store) Get(client []byte) (Record, bool) {
	sh := s.shardFor(string(client))
	sh.mu.RLock()
	r, ok := sh.records[string(client)]
	sh.mu.RUnlock()
	return r, ok
}

// Put stores r unless the table already holds a record for its client that is
// as new or newer, and reports whether the table changed.
func (s *Store) Put(r Record) bool {
	client := r.Client()
	sh := s.shardFor(client)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, ok := sh.records[client]
	if ok && !r.NewerThan(old) {
		return false
	}
	sh.records[client] = r
	if !ok {
		s.size.Add(1)
	}
	return true
}

// Len returns the number of clients in the table.
func (s *Store) Len() int {
	return int(s.size.Load())
}

// Range calls fn for every record until fn returns false. Each shard is
// copied under its read lock and fn runs without any lock held, so fn may
// block; records put meanwhile may or may not be seen.
func (s *Store) Range(fn func(Record) bool) {
	var batch []Record
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		batch = batch[:0]
		for _, r := range sh.records {
			batch = append(batch, r)
		}
		sh.mu.RUnlock()
		for _, r := range batch {
			if !fn(r) {
				return
			}
		}
	}
}
