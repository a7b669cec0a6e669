package herdstore

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Record memory limits.
const (
	// chunkBytes is how much record memory a shard takes from the system at
	// a time. Pages of a chunk that no record has reached are never touched,
	// so a small table costs a page per shard, not a chunk.
	chunkBytes = 256 << 10
	// blockAlign is the granularity of record blocks: a block's size is its
	// record's length plus lengthBytes, rounded up to it.
	blockAlign = 4
	// lengthBytes is the record length in front of every block.
	lengthBytes = 2
	// maxBlockRecord is the longest record kept in chunks. Longer ones, which
	// only unusually long lines make, are kept on Go's heap.
	maxBlockRecord = 2048
	// offsetBits is how many low bits of a ref give the block's offset in its
	// chunk, in blockAligns; the bits above give the chunk.
	offsetBits = 16
	// maxChunks is how many chunks a shard may take: with 256 shards, 2 TiB
	// of records.
	maxChunks = 1 << (31 - offsetBits)
	// minCompactBytes is how much freed memory a shard's arena may hold, as
	// long as it is no more than a quarter of what its records take, before
	// the shard copies its records into fresh chunks. A freed block serves
	// only records of its own size: clients whose lines keep changing length
	// would otherwise leave blocks of every size behind.
	minCompactBytes = 64 << 10
)

// chunksHeld counts the chunks of all tables that are not given back yet.
var chunksHeld atomic.Int64

// ref is where an arena keeps a record: a chunk and a block in it, or, with
// largeRef set, a record on Go's heap.
type ref uint32

const largeRef ref = 1 << 31

// arena keeps the records of one shard, guarded by the shard's lock.
//
// The table's records live outside Go's heap, in chunks that the arena hands
// out as blocks and takes back when a record is replaced. A newer record of a
// client usually has the same length as the one it replaces and is written
// over it. Records that died would otherwise stay on the heap until the
// collector runs, and Go lets the heap grow to twice what is live before it
// runs: under steady updates a million clients would cost twice the memory
// their records need. The collector also no longer marks a million records.
//
// A record the arena returns borrows its memory, which a later put may
// overwrite: it must not be used after the shard's lock is released.
type arena struct {
	chunks [][]byte
	top    int   // bytes handed out of the last chunk
	live   int   // bytes of the blocks that hold records
	free   []ref // per block size in blockAligns: 1 + the first free block, 0 for none
	large  []string
	unused []ref // indexes of large that hold no record
}

// blockSize returns the size of the block that holds a record of n bytes.
func blockSize(n int) int {
	return (lengthBytes + n + blockAlign - 1) &^ (blockAlign - 1)
}

// block returns the memory from the start of the block at x to the end of its
// chunk.
func (a *arena) block(x ref) []byte {
	return a.chunks[x>>offsetBits][int(x&(1<<offsetBits-1))*blockAlign:]
}

// record returns the record at x, borrowed.
func (a *arena) record(x ref) Record {
	if x&largeRef != 0 {
		return Record{packed: a.large[x&^largeRef]}
	}
	b := a.block(x)
	n := int(binary.LittleEndian.Uint16(b))
	return Record{packed: unsafe.String(&b[lengthBytes], n)}
}

// address returns where the memory of the record at x starts, without
// reading it.
func (a *arena) address(x ref) uintptr {
	if x&largeRef != 0 {
		return uintptr(unsafe.Pointer(unsafe.StringData(a.large[x&^largeRef])))
	}
	return uintptr(unsafe.Pointer(&a.block(x)[0]))
}

// add keeps a copy of r and returns where.
func (a *arena) add(r Record) ref {
	n := len(r.packed)
	if n > maxBlockRecord {
		if k := len(a.unused); k > 0 {
			i := a.unused[k-1]
			a.unused = a.unused[:k-1]
			a.large[i] = r.packed
			return largeRef | i
		}
		a.large = append(a.large, r.packed)
		return largeRef | ref(len(a.large)-1)
	}
	x := a.alloc(blockSize(n))
	a.live += blockSize(n)
	a.write(x, r)
	return x
}

// replace keeps a copy of r instead of the record at x and returns where: in
// x's own block when r needs a block of the same size.
func (a *arena) replace(x ref, r Record) ref {
	if x&largeRef == 0 && len(r.packed) <= maxBlockRecord {
		if old := binary.LittleEndian.Uint16(a.block(x)); blockSize(int(old)) == blockSize(len(r.packed)) {
			a.write(x, r)
			return x
		}
	}
	a.remove(x)
	return a.add(r)
}

func (a *arena) write(x ref, r Record) {
	b := a.block(x)
	binary.LittleEndian.PutUint16(b, uint16(len(r.packed)))
	copy(b[lengthBytes:], r.packed)
}

// remove frees the record at x.
func (a *arena) remove(x ref) {
	if x&largeRef != 0 {
		i := x &^ largeRef
		a.large[i] = ""
		a.unused = append(a.unused, i)
		return
	}
	size := blockSize(int(binary.LittleEndian.Uint16(a.block(x))))
	a.live -= size
	a.release(x, size)
}

// release puts the block of size bytes at x on its size's free list, linked
// through the block's first bytes.
func (a *arena) release(x ref, size int) {
	class := size / blockAlign
	if class >= len(a.free) {
		a.free = append(a.free, make([]ref, class+1-len(a.free))...)
	}
	binary.LittleEndian.PutUint32(a.block(x), uint32(a.free[class]))
	a.free[class] = x + 1
}

// alloc returns a block of size bytes: a freed one of that size, or the next
// in the last chunk.
func (a *arena) alloc(size int) ref {
	class := size / blockAlign
	if class < len(a.free) && a.free[class] != 0 {
		x := a.free[class] - 1
		a.free[class] = ref(binary.LittleEndian.Uint32(a.block(x)))
		return x
	}
	if len(a.chunks) == 0 || a.top+size > chunkBytes {
		if len(a.chunks) > 0 && chunkBytes-a.top >= blockAlign {
			// The rest of the chunk still serves a record of its size.
			a.release(a.next(), chunkBytes-a.top)
		}
		if len(a.chunks) == maxChunks {
			panic("herdstore: a shard's record memory is full")
		}
		a.chunks = append(a.chunks, newChunk(chunkBytes))
		chunksHeld.Add(1)
		a.top = 0
	}
	x := a.next()
	a.top += size
	return x
}

// next returns the ref of the first unused byte of the last chunk.
func (a *arena) next() ref {
	return ref(len(a.chunks)-1)<<offsetBits | ref(a.top/blockAlign)
}

// bytes returns how much record memory the arena holds: its chunks up to
// the last block handed out, and its large records.
func (a *arena) bytes() int {
	n := a.handedOut()
	for _, s := range a.large {
		n += len(s)
	}
	return n
}

// handedOut returns the bytes of the arena's chunks up to the last block
// handed out.
func (a *arena) handedOut() int {
	if len(a.chunks) == 0 {
		return 0
	}
	return (len(a.chunks)-1)*chunkBytes + a.top
}

// wasteful reports whether the arena holds enough freed memory that its
// records should be copied into fresh chunks.
func (a *arena) wasteful() bool {
	free := a.handedOut() - a.live
	return free > minCompactBytes && free > a.live/4
}

// freeChunks gives the arena's chunks back to the system. Nothing may use the
// arena after.
func (a *arena) freeChunks() {
	for _, c := range a.chunks {
		freeChunk(c)
	}
	chunksHeld.Add(-int64(len(a.chunks)))
	a.chunks = nil
}
