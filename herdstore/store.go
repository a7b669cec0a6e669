package herdstore

import (
	"hash/maphash"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// shardCount spreads clients over independently locked tables so that puts
// from many connections rarely contend. A power of two.
const shardCount = 256

// Table limits.
const (
	// minSlots is the size a shard's table starts at. A power of two.
	minSlots = 8
	// maxLoadPercent is how full a table may get before it doubles: open
	// addressing with linear probing stays short up to about three quarters.
	maxLoadPercent = 75
)

// Store is the client table. It is safe for concurrent use; no lock is held
// while callers do I/O.
//
// Each shard is an open-addressing hash table with a one-byte tag per slot,
// rather than a Go map keyed by client ID: a record already holds its client
// ID, so a slot is where the shard's arena keeps the record, four bytes, and a
// million clients cost tens of megabytes less.
type Store struct {
	seed   maphash.Seed
	shards *[shardCount]shard
	size   atomic.Int64
	// seq is the number the table gave the record it stored last.
	seq atomic.Uint64
}

type shard struct {
	mu    sync.RWMutex
	slots []ref
	tags  []uint8 // 0 for an empty slot, else a tag from the client's hash
	// seqs holds the number of the record in each slot, apart from the
	// records, so that a scan for the records stored since a number reads
	// the numbers alone.
	seqs []uint64
	// top is the greatest number in seqs: a scan for the records stored
	// since a number skips the shards that have none.
	top  uint64
	used int
	mem  *arena
}

// New returns an empty table.
func New() *Store {
	s := &Store{seed: maphash.MakeSeed(), shards: new([shardCount]shard)}
	arenas := new([shardCount]arena)
	for i := range s.shards {
		s.shards[i].mem = &arenas[i]
	}
	// Every use of an arena happens under its shard's lock, which keeps the
	// shards reachable: once they are not, no record memory is in use. The
	// arenas are apart from the shards so that the cleanup, which holds them,
	// does not keep the shards alive.
	runtime.AddCleanup(s.shards, freeArenas, arenas)
	return s
}

// freeArenas gives the record memory of a table that nothing uses any more
// back to the system.
func freeArenas(arenas *[shardCount]arena) {
	for i := range arenas {
		arenas[i].freeChunks()
	}
}

// tagOf returns the tag of a hash: its top byte, never 0.
func tagOf(h uint64) uint8 {
	return uint8(h>>56) | 1
}

func (s *Store) shardFor(h uint64) *shard {
	return &s.shards[h&(shardCount-1)]
}

// home returns the slot where a lookup of hash h starts in a table of n
// slots. The low bits chose the shard, so they are left out.
func home(h uint64, n int) int {
	return int(h>>8) & (n - 1)
}

// find returns the slot holding client, or the empty slot where it would go.
func (sh *shard) find(client string, h uint64) (int, bool) {
	if len(sh.slots) == 0 {
		return -1, false
	}
	mask := len(sh.slots) - 1
	tag := tagOf(h)
	for i := home(h, len(sh.slots)); ; i = (i + 1) & mask {
		switch sh.tags[i] {
		case 0:
			return i, false
		case tag:
			if sh.mem.record(sh.slots[i]).Client() == client {
				return i, true
			}
		}
	}
}

// Get returns a copy of the record of a client.
func (s *Store) Get(client []byte) (Record, bool) {
	h := maphash.Bytes(s.seed, client)
	sh := s.shardFor(h)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if i, ok := sh.find(string(client), h); ok {
		return Record{packed: strings.Clone(sh.mem.record(sh.slots[i]).packed)}, true
	}
	return Record{}, false
}

// Put stores a copy of r unless the table already holds a record for its
// client that is as new or newer, and reports whether the table changed.
func (s *Store) Put(r Record) bool {
	_, ok := s.PutSeq(r)
	return ok
}

// PutSeq is Put that also returns the number the table gave the record: the
// next of its sequence (see Seq).
func (s *Store) PutSeq(r Record) (uint64, bool) {
	return s.put(r, 0)
}

// Restore is Put for a record read back from storage: it keeps the number seq
// the record had, and the table's sequence continues after it.
func (s *Store) Restore(r Record, seq uint64) bool {
	s.AdvanceSeq(seq)
	_, ok := s.put(r, seq)
	return ok
}

// put stores r, numbered seq, or numbered next in the sequence when seq is 0.
func (s *Store) put(r Record, seq uint64) (uint64, bool) {
	client := r.Client()
	h := maphash.String(s.seed, client)
	sh := s.shardFor(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.find(client, h)
	if ok {
		if !r.NewerThan(sh.mem.record(sh.slots[i])) {
			return 0, false
		}
		sh.slots[i] = sh.mem.replace(sh.slots[i], r)
		if sh.mem.wasteful() {
			sh.compact()
		}
	} else {
		if (sh.used+1)*100 > len(sh.slots)*maxLoadPercent {
			s.grow(sh)
			i, _ = sh.find(client, h)
		}
		sh.slots[i] = sh.mem.add(r)
		sh.tags[i] = tagOf(h)
		sh.used++
		s.size.Add(1)
	}
	if seq == 0 {
		seq = s.seq.Add(1)
	}
	sh.seqs[i] = seq
	sh.top = max(sh.top, seq)
	return seq, true
}

// compact copies a shard's records into fresh chunks, next to each other,
// and gives the old chunks back.
func (sh *shard) compact() {
	old := *sh.mem
	*sh.mem = arena{}
	for j, x := range sh.slots {
		if sh.tags[j] != 0 {
			sh.slots[j] = sh.mem.add(old.record(x))
		}
	}
	old.freeChunks()
}

// grow doubles a shard's table.
func (s *Store) grow(sh *shard) {
	old, oldTags, oldSeqs := sh.slots, sh.tags, sh.seqs
	n := max(minSlots, 2*len(old))
	sh.slots, sh.tags, sh.seqs = make([]ref, n), make([]uint8, n), make([]uint64, n)
	mask := n - 1
	for j, r := range old {
		if oldTags[j] == 0 {
			continue
		}
		h := maphash.String(s.seed, sh.mem.record(r).Client())
		i := home(h, n)
		for sh.tags[i] != 0 {
			i = (i + 1) & mask
		}
		sh.slots[i], sh.tags[i], sh.seqs[i] = r, tagOf(h), oldSeqs[j]
	}
}

// RecordBytes returns how much memory the table's records take: the
// memory of its own it has handed out to records, used or freed, and the
// records too long for it, on Go's heap. Go's memory statistics count none of
// the former.
func (s *Store) RecordBytes() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += sh.mem.bytes()
		sh.mu.RUnlock()
	}
	return n
}

// Len returns the number of clients in the table.
func (s *Store) Len() int {
	return int(s.size.Load())
}

// Range calls fn with a copy of every record until fn returns false. Each
// shard is copied under its read lock and fn runs without any lock held, so
// fn may block; records put meanwhile may or may not be seen.
func (s *Store) Range(fn func(Record) bool) {
	s.RangeSince(0, math.MaxUint64, func(r Record, _ uint64) bool { return fn(r) })
}

// RangeSince is Range over the records numbered after after and up to
// through, each given with its number: what a peer that holds every record up
// to after still misses. It reads the numbers of the records it skips, not
// the records, and skips the shards that hold none numbered after after.
func (s *Store) RangeSince(after, through uint64, fn func(r Record, seq uint64) bool) {
	var batch []Record
	var ends []int
	var seqs []uint64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		if sh.top <= after {
			sh.mu.RUnlock()
			continue
		}
		n := 0
		for j, x := range sh.slots {
			if sh.tags[j] != 0 && sh.seqs[j] > after && sh.seqs[j] <= through {
				n += len(sh.mem.record(x).packed)
			}
		}
		if n == 0 {
			sh.mu.RUnlock()
			continue
		}
		// One string holds the shard's records: a copy each would cost an
		// allocation per record.
		copied := make([]byte, 0, n)
		ends, seqs = ends[:0], seqs[:0]
		for j, x := range sh.slots {
			if sh.tags[j] != 0 && sh.seqs[j] > after && sh.seqs[j] <= through {
				copied = append(copied, sh.mem.record(x).packed...)
				ends = append(ends, len(copied))
				seqs = append(seqs, sh.seqs[j])
			}
		}
		sh.mu.RUnlock()
		all := unsafe.String(unsafe.SliceData(copied), len(copied))
		batch = batch[:0]
		start := 0
		for _, end := range ends {
			batch = append(batch, Record{packed: all[start:end]})
			start = end
		}
		for k, r := range batch {
			if !fn(r, seqs[k]) {
				return
			}
		}
	}
}
