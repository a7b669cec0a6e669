package herdstore

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func rec(server, client, time string) Record {
	return NewRecord(fmt.Sprintf("AT %s +0.000000001 %s +34.068930-118.445127 %s", server, client, time))
}

func TestNewRecord(t *testing.T) {
	r := NewRecord("AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997")
	if r.Client() != "kiwi.cs.ucla.edu" || r.Time() != "1520023934.918963997" {
		t.Errorf("NewRecord = %+v", r)
	}
}

func TestPutLastWriterWins(t *testing.T) {
	tests := []struct {
		name    string
		first   Record
		second  Record
		changed bool
		kept    Record
	}{
		{"later time wins", rec("A", "c", "10"), rec("A", "c", "11"), true, rec("A", "c", "11")},
		{"earlier time loses", rec("A", "c", "11"), rec("A", "c", "10.999999999"), false, rec("A", "c", "11")},
		{"times compare by value", rec("A", "c", "9.5"), rec("A", "c", "10"), true, rec("A", "c", "10")},
		{"equal time, greater line wins", rec("A", "c", "10"), rec("B", "c", "10"), true, rec("B", "c", "10")},
		{"equal time, smaller line loses", rec("B", "c", "10"), rec("A", "c", "10"), false, rec("B", "c", "10")},
		{"equal value, other spelling is a tie-break", rec("A", "c", "10"), rec("A", "c", "10.0"), true, rec("A", "c", "10.0")},
		{"same record changes nothing", rec("A", "c", "10"), rec("A", "c", "10"), false, rec("A", "c", "10")},
		{"huge times", rec("A", "c", "99999999999999999999999"), rec("A", "c", "100000000000000000000000"), true, rec("A", "c", "100000000000000000000000")},
		{"a time too large for a key beats one with a key", rec("A", "c", "9999999999.999999999"), rec("A", "c", "10000000000"), true, rec("A", "c", "10000000000")},
		{"a time with a key loses to one too large for a key", rec("A", "c", "10000000000"), rec("A", "c", "9999999999.999999999"), false, rec("A", "c", "10000000000")},
		{"nanoseconds decide", rec("A", "c", "1520023934.918963997"), rec("A", "c", "1520023934.918963998"), true, rec("A", "c", "1520023934.918963998")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			if !s.Put(tt.first) {
				t.Fatal("first put did not change the table")
			}
			if got := s.Put(tt.second); got != tt.changed {
				t.Errorf("second Put = %v, want %v", got, tt.changed)
			}
			got, ok := s.Get([]byte("c"))
			if !ok || got != tt.kept {
				t.Errorf("Get = %+v, %v, want %+v", got, ok, tt.kept)
			}
			if s.Len() != 1 {
				t.Errorf("Len = %d, want 1", s.Len())
			}
		})
	}
}

// TestLongClientID stores a client whose ID is too long for the record's
// header to place: it is found by scanning the line instead.
func TestLongClientID(t *testing.T) {
	long := strings.Repeat("k", 300)
	s := New()
	s.Put(rec("A", long, "1"))
	s.Put(rec("A", long+"x", "1"))
	if !s.Put(rec("A", long, "2")) {
		t.Error("a newer record for the long client ID did not replace the older one")
	}
	if got, ok := s.Get([]byte(long)); !ok || got != rec("A", long, "2") {
		t.Errorf("Get = %q, %v", got.Line(), ok)
	}
	if got := rec("A", long, "2").Client(); got != long {
		t.Errorf("Client = %q", got)
	}
	if s.Len() != 2 {
		t.Errorf("Len = %d, want 2", s.Len())
	}
}

// TestConcurrentPutsConverge puts the same records from many goroutines in
// different orders: whatever the interleaving, the newest record wins and
// exactly one put per client reports the final value as new.
func TestConcurrentPutsConverge(t *testing.T) {
	const clients, versions, writers = 200, 50, 8
	s := New()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < clients*versions; i++ {
				j := (i*7 + w*13) % (clients * versions)
				client, version := j%clients, j/clients
				s.Put(rec(fmt.Sprintf("S%d", w%2), fmt.Sprintf("c%d", client), fmt.Sprint(version)))
				s.Get([]byte(fmt.Sprintf("c%d", client)))
			}
		}(w)
	}
	wg.Wait()
	if s.Len() != clients {
		t.Fatalf("Len = %d, want %d", s.Len(), clients)
	}
	checkConverged(t, s, clients, versions)
}

// Records read while newer ones are written over them stay whole: each is one
// a writer put.
func TestReadsDuringPuts(t *testing.T) {
	const clients, versions = 100, 200
	s := New()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(done)
		for v := range versions {
			for c := range clients {
				s.Put(rec("S1", fmt.Sprintf("c%d", c), fmt.Sprint(v)))
			}
		}
	}()
	var reads int
	go func() {
		defer wg.Done()
		check := func(r Record) {
			reads++
			if want := rec("S1", r.Client(), r.Time()); r != want {
				t.Errorf("read record %q, want %q", r.packed, want.packed)
			}
		}
		for {
			select {
			case <-done:
				return
			default:
			}
			if r, ok := s.Get([]byte("c7")); ok {
				check(r)
			}
			s.Range(func(r Record) bool { check(r); return true })
		}
	}()
	wg.Wait()
	if reads == 0 {
		t.Error("no record was read while puts ran")
	}
	checkConverged(t, s, clients, versions)
}

func checkConverged(t *testing.T, s *Store, clients, versions int) {
	t.Helper()
	seen := 0
	s.Range(func(r Record) bool {
		seen++
		if want := rec("S1", r.Client(), fmt.Sprint(versions-1)); r != want {
			t.Errorf("record %+v, want %+v", r, want)
		}
		return true
	})
	if seen != clients {
		t.Errorf("Range saw %d records, want %d", seen, clients)
	}
}

func TestRangeStops(t *testing.T) {
	s := New()
	for i := 0; i < 10; i++ {
		s.Put(rec("A", fmt.Sprint(i), "1"))
	}
	n := 0
	s.Range(func(Record) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("Range called fn %d times after it returned false at 3", n)
	}
}

// Records the table hands out are copies: a later put that writes a newer
// record over the stored one's memory must not change them.
func TestRecordsOutliveLaterPuts(t *testing.T) {
	s := New()
	first := rec("A", "kiwi", "1520023934.000000001")
	s.Put(first)
	got, _ := s.Get([]byte("kiwi"))
	var ranged Record
	s.Range(func(r Record) bool { ranged = r; return true })
	later := rec("A", "kiwi", "1520023934.000000002")
	if len(later.packed) != len(first.packed) {
		t.Fatal("the later record must be as long as the first, to be written over it")
	}
	if !s.Put(later) {
		t.Fatal("the later record did not replace the first")
	}
	if got != first || ranged != first {
		t.Errorf("after a newer put, Get's record = %q, Range's = %q, want %q", got.Line(), ranged.Line(), first.Line())
	}
	if now, _ := s.Get([]byte("kiwi")); now != later {
		t.Errorf("Get = %q, want %q", now.Line(), later.Line())
	}
}

func TestGetAllocatesOnce(t *testing.T) {
	s := New()
	s.Put(rec("A", "kiwi", "1"))
	key := []byte("kiwi")
	if allocs := testing.AllocsPerRun(100, func() { s.Get(key) }); allocs != 1 {
		t.Errorf("Get allocates %v times, want 1 (the copy)", allocs)
	}
}

func BenchmarkPut(b *testing.B) {
	s := New()
	recs := make([]Record, 1<<16)
	for i := range recs {
		recs[i] = rec("A", fmt.Sprintf("client-%d", i), "1")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Put(recs[i&(len(recs)-1)])
	}
}

func BenchmarkGet(b *testing.B) {
	s := New()
	keys := make([][]byte, 1<<16)
	for i := range keys {
		r := rec("A", fmt.Sprintf("client-%d", i), "1")
		s.Put(r)
		keys[i] = []byte(r.Client())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Get(keys[i&(len(keys)-1)])
	}
}

// BenchmarkPutNewer puts ever newer records for clients spread over tables
// of growing size: the cost per put should not grow with the table.
func BenchmarkPutNewer(b *testing.B) {
	for _, n := range []int{1000, 100000, 1000000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, recs := newerRecords(n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.Put(recs[i&(len(recs)-1)])
			}
		})
	}
}

// newerRecords returns a table of n clients and 65536 records newer than the
// stored ones, for clients spread over the whole table.
func newerRecords(n int) (*Store, []Record) {
	s := New()
	for i := range n {
		s.Put(MakeRecord(fmt.Appendf(nil, "AT A +0.000000001 load-%d +34.068930-118.445127 1795633160.%09d", i, 0), Origin{}))
	}
	recs := make([]Record, 1<<16)
	for i := range recs {
		recs[i] = MakeRecord(fmt.Appendf(nil, "AT A +0.000000001 load-%d +34.068930-118.445127 1795633161.%09d", (i*7919)%n, i), Origin{})
	}
	return s, recs
}

// A table that nothing uses any more gives its record memory back.
func TestUnusedTableFreesRecordMemory(t *testing.T) {
	// Let the tables of earlier tests go first.
	before := chunksHeld.Load()
	for settled := 0; settled < 2; {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // cleanups run on their own goroutine
		if now := chunksHeld.Load(); now == before {
			settled++
		} else {
			before, settled = now, 0
		}
	}
	func() {
		s := New()
		for i := range 1000 {
			s.Put(rec("A", fmt.Sprint("c", i), "1"))
		}
		if held := s.recordChunks(); held < shardCount/2 {
			t.Fatalf("a table of 1000 clients holds %d chunks, want about one per shard", held)
		}
	}()
	for range 50 {
		runtime.GC()
		if chunksHeld.Load() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d chunks still held after the table became unused", chunksHeld.Load()-before)
}

// recordChunks returns how many chunks the table's records take.
func (s *Store) recordChunks() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.mem.chunks)
		sh.mu.RUnlock()
	}
	return n
}
