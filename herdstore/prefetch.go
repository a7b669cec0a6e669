package herdstore

import (
	"hash/maphash"
	"unsafe"
)

// prefetchBatch is how many lookups one pass of Prefetch overlaps: a read
// buffer's worth of lines, few enough that what the first one fetched is
// still cached when its put comes.
const prefetchBatch = 64

// prefetchMinClients is the table size below which Prefetch does nothing:
// a smaller table stays in the CPU cache, and prefetching it would only cost
// its locks.
const prefetchMinClients = 1 << 14

// Cached reports whether the table is small enough to stay in the CPU cache,
// so that Prefetch would do nothing for it.
func (s *Store) Cached() bool {
	return s.Len() < prefetchMinClients
}

// Prefetch starts moving into the CPU cache the table memory that a put or get
// of each client will read, and returns without waiting for it. A lookup in a
// large table waits for main memory twice, once for the client's slot and
// once for the record in it; the lines of one read then pay those waits
// together instead of one after another. It changes nothing in the table.
// It does nothing for a table small enough to stay cached.
func (s *Store) Prefetch(clients [][]byte) {
	if s.Cached() {
		return
	}
	var hashes [prefetchBatch]uint64
	for len(clients) > 0 {
		n := min(len(clients), prefetchBatch)
		for j, client := range clients[:n] {
			h := maphash.Bytes(s.seed, client)
			hashes[j] = h
			sh := s.shardFor(h)
			sh.mu.RLock()
			if len(sh.slots) > 0 {
				i := home(h, len(sh.slots))
				prefetch(uintptr(unsafe.Pointer(&sh.tags[i])))
				prefetch(uintptr(unsafe.Pointer(&sh.slots[i])))
			}
			sh.mu.RUnlock()
		}
		// By now the first slots have arrived: fetch the records they hold.
		for _, h := range hashes[:n] {
			sh := s.shardFor(h)
			sh.mu.RLock()
			if len(sh.slots) > 0 {
				if i := home(h, len(sh.slots)); sh.tags[i] != 0 {
					prefetch(sh.mem.address(sh.slots[i]))
				}
			}
			sh.mu.RUnlock()
		}
		clients = clients[n:]
	}
}
