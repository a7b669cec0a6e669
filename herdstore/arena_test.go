package herdstore

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// lineOf returns a record whose line is n bytes long.
func lineOf(client string, n int, time string) Record {
	line := fmt.Sprintf("AT A +0.1 %s +1+1 %s", client, time)
	pad := strings.Repeat("x", max(0, n-len(line)))
	return NewRecord(fmt.Sprintf("AT A%s +0.1 %s +1+1 %s", pad, client, time))
}

func TestArenaKeepsRecords(t *testing.T) {
	tests := []struct {
		name          string
		first, second int // line lengths
	}{
		{"same length", 80, 80},
		{"same block size", 80, 81},
		{"longer", 80, 120},
		{"shorter", 120, 80},
		{"to a large record", 80, 3000},
		{"from a large record", 3000, 80},
		{"large to large", 3000, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a arena
			defer a.freeChunks()
			neighbour := a.add(lineOf("other", 90, "1"))
			first := lineOf("c", tt.first, "1")
			x := a.add(first)
			if got := a.record(x); got != first {
				t.Fatalf("record = %q, want %q", got.packed, first.packed)
			}
			second := lineOf("c", tt.second, "2")
			y := a.replace(x, second)
			if got := a.record(y); got != second {
				t.Errorf("after replace, record = %q, want %q", got.packed, second.packed)
			}
			if got, want := a.record(neighbour), lineOf("other", 90, "1"); got != want {
				t.Errorf("replace changed another record: %q, want %q", got.packed, want.packed)
			}
			if x&largeRef == 0 && y&largeRef == 0 {
				inPlace := blockSize(len(first.packed)) == blockSize(len(second.packed))
				if (x == y) != inPlace {
					t.Errorf("replace kept the block: %v, want %v", x == y, inPlace)
				}
			}
		})
	}
}

// A replaced record's block serves the next record of its size, so that a
// table under steady updates takes no more memory.
func TestArenaReusesFreedBlocks(t *testing.T) {
	var a arena
	defer a.freeChunks()
	refs := make([]ref, 1000)
	for i := range refs {
		refs[i] = a.add(lineOf(fmt.Sprint("c", i), 80+i%2*40, "1"))
	}
	filled := a.bytes()
	for round := range 5 {
		for i := range refs {
			// Alternate each record between two block sizes.
			n := 80 + (i+round+1)%2*40
			refs[i] = a.replace(refs[i], lineOf(fmt.Sprint("c", i), n, fmt.Sprint(round+2)))
		}
	}
	for i, x := range refs {
		if got, want := a.record(x), lineOf(fmt.Sprint("c", i), 80+(i+5)%2*40, "6"); got != want {
			t.Fatalf("record %d = %q, want %q", i, got.packed, want.packed)
		}
	}
	// A record that changes size may find no freed block of its new size
	// until one block of each size waits on its free list.
	spare := blockSize(len(lineOf("c999", 80, "2").packed)) + blockSize(len(lineOf("c999", 120, "2").packed))
	if grown := a.bytes() - filled; grown > spare {
		t.Errorf("five rounds of updates took %d more bytes, want at most %d", grown, spare)
	}
}

// Records fill chunk after chunk; the end of a chunk too short for the next
// record still serves a record of its size.
func TestArenaSpansChunks(t *testing.T) {
	var a arena
	defer a.freeChunks()
	r := lineOf("c", 110, "1")
	size := blockSize(len(r.packed))
	if chunkBytes%size < 40 {
		t.Fatalf("records of %d bytes leave %d bytes at a chunk's end, too few for this test", size, chunkBytes%size)
	}
	var refs []ref
	for len(a.chunks) < 3 {
		refs = append(refs, a.add(r))
	}
	for i, x := range refs {
		if got := a.record(x); got != r {
			t.Fatalf("record %d = %q, want %q", i, got.packed, r.packed)
		}
	}
	tail := chunkBytes % size
	short := lineOf("d", tail-lengthBytes-len(r.packed)+len(r.Line()), "1")
	if blockSize(len(short.packed)) != tail {
		t.Fatalf("short record's block is %d bytes, want %d", blockSize(len(short.packed)), tail)
	}
	ends := map[int]bool{}
	for range 2 {
		x := a.add(short)
		ends[int(x>>offsetBits)] = int(x&(1<<offsetBits-1))*blockAlign == chunkBytes-tail
		if a.record(x) != short {
			t.Errorf("record at a chunk's end = %q, want %q", a.record(x).packed, short.packed)
		}
	}
	if !ends[0] || !ends[1] {
		t.Errorf("two records of a chunk end's size went to %v (chunk: at its end), want the ends of chunks 0 and 1", ends)
	}
}

// A table updated again and again holds no more record memory than after it
// was filled.
func TestStoreUpdatesInPlace(t *testing.T) {
	s := New()
	const n = 10000
	for i := range n {
		s.Put(MakeRecord(fmt.Appendf(nil, "AT A +0.000000001 load-%d +34.068930-118.445127 1795633160.%09d", i, 0), Origin{}))
	}
	filled := s.RecordBytes()
	for round := 1; round <= 3; round++ {
		for i := range n {
			s.Put(MakeRecord(fmt.Appendf(nil, "AT A +0.000000001 load-%d +34.068930-118.445127 1795633160.%09d", i, round), Origin{}))
		}
	}
	if got := s.RecordBytes(); got != filled {
		t.Errorf("record memory %d bytes after three updates of every client, %d after the fill", got, filled)
	}
	r, _ := s.Get([]byte("load-77"))
	if r.Time() != "1795633160.000000003" {
		t.Errorf("load-77's time = %s, want the third update's", r.Time())
	}
}

// Random adds and replaces of records of every size, short and large, leave
// every record as last written; the blocks freed serve later records.
func TestArenaAgainstAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var a arena
	defer a.freeChunks()
	refs := map[int]ref{}
	want := map[int]Record{}
	for op := range 50000 {
		k := rng.IntN(500)
		n := 20 + rng.IntN(200)
		if rng.IntN(50) == 0 {
			n = maxBlockRecord + rng.IntN(1000)
		}
		r := lineOf(fmt.Sprint("c", k), n, fmt.Sprint(op))
		if x, ok := refs[k]; ok {
			refs[k] = a.replace(x, r)
		} else {
			refs[k] = a.add(r)
		}
		want[k] = r
		if op%5000 == 0 || op == 49999 {
			for k, x := range refs {
				if got := a.record(x); got != want[k] {
					t.Fatalf("after %d operations, record of c%d = %q, want %q", op+1, k, got.packed, want[k].packed)
				}
			}
		}
	}
	// 500 records of at most about 240 bytes, and the freed blocks of every
	// size waiting for a record of their size: far less than a chunk.
	if len(a.chunks) != 1 {
		t.Errorf("500 records after 50,000 updates take %d chunks, want 1", len(a.chunks))
	}
}

// Clients whose lines keep changing length leave freed blocks of every size
// behind; the table copies a shard's records into fresh chunks before those
// take more than minCompactBytes and a quarter of its records' memory.
func TestStoreCompactsFreedBlocks(t *testing.T) {
	s := New()
	const clients = 200
	var last []Record
	for n := 60; n <= 1500; n += blockAlign {
		last = last[:0]
		for c := range clients {
			r := lineOf(fmt.Sprint("c", c), n, fmt.Sprint(n))
			if !s.Put(r) {
				t.Fatalf("a newer record of c%d was not stored", c)
			}
			last = append(last, r)
		}
	}
	live := 0
	for _, r := range last {
		live += blockSize(len(r.packed))
	}
	// Each shard may hold its freed blocks up to the limit, and the end of
	// a chunk too short for the next block.
	most := shardCount*(minCompactBytes+blockSize(maxBlockRecord)) + live*5/4
	if got := s.RecordBytes(); got > most {
		t.Errorf("records of %d bytes take %d bytes of record memory, want at most %d", live, got, most)
	}
	for c, want := range last {
		if got, ok := s.Get([]byte(fmt.Sprint("c", c))); !ok || got != want {
			t.Fatalf("c%d = %q, want %q", c, got.packed, want.packed)
		}
	}
}
