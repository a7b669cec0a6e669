package herdstore

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"testing"
)

// numbered returns what RangeSince(after, through) hands out: each client's
// record line and number.
func numbered(s *Store, after, through uint64) map[string]uint64 {
	got := make(map[string]uint64)
	s.RangeSince(after, through, func(r Record, seq uint64) bool {
		got[r.Line()] = seq
		return true
	})
	return got
}

func TestPutNumbersTheRecordsItStores(t *testing.T) {
	s := New()
	s.AdvanceSeq(100)
	steps := []struct {
		record  Record
		changed bool
		seq     uint64
	}{
		{rec("A", "c1", "10"), true, 101},
		{rec("A", "c2", "10"), true, 102},
		{rec("A", "c1", "9"), false, 0}, // older: no number spent
		{rec("A", "c1", "11"), true, 103},
		{rec("A", "c1", "11"), false, 0}, // the same: no number spent
	}
	for i, step := range steps {
		seq, ok := s.PutSeq(step.record)
		if ok != step.changed || seq != step.seq {
			t.Errorf("step %d: PutSeq(%s) = %d, %v, want %d, %v", i, step.record.Line(), seq, ok, step.seq, step.changed)
		}
	}
	if s.Seq() != 103 {
		t.Errorf("Seq = %d, want 103", s.Seq())
	}
	want := map[string]uint64{rec("A", "c2", "10").Line(): 102, rec("A", "c1", "11").Line(): 103}
	if got := numbered(s, 0, math.MaxUint64); !maps.Equal(got, want) {
		t.Errorf("RangeSince(0, max) = %v, want %v", got, want)
	}
}

func TestRangeSinceWindows(t *testing.T) {
	s := New()
	for i := range 50 {
		s.Put(rec("A", fmt.Sprint("c", i), "1")) // numbers 1-50
	}
	for i := range 10 {
		s.Put(rec("A", fmt.Sprint("c", i), "2")) // c0-c9 renumbered 51-60
	}
	tests := []struct {
		after, through uint64
		clients        []int
	}{
		{0, math.MaxUint64, seq(0, 50)},
		{50, math.MaxUint64, seq(0, 10)},
		{55, 58, seq(5, 8)},
		{10, 20, seq(10, 20)},
		{0, 10, nil}, // c0-c9's first numbers went with their old records
		{60, math.MaxUint64, nil},
		{20, 20, nil},
	}
	for _, tt := range tests {
		got := numbered(s, tt.after, tt.through)
		var clients []int
		for line, n := range got {
			var c int
			var time string
			fmt.Sscanf(line, "AT A +0.000000001 c%d +34.068930-118.445127 %s", &c, &time)
			clients = append(clients, c)
			if n <= tt.after || n > tt.through {
				t.Errorf("RangeSince(%d, %d) handed out %q numbered %d", tt.after, tt.through, line, n)
			}
		}
		slices.Sort(clients)
		if !slices.Equal(clients, tt.clients) {
			t.Errorf("RangeSince(%d, %d) clients = %v, want %v", tt.after, tt.through, clients, tt.clients)
		}
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// Numbers move with their records when a shard's table grows and when its
// records are compacted.
func TestNumbersSurviveGrowth(t *testing.T) {
	s := New()
	want := make(map[string]uint64)
	for i := range 20000 {
		r := rec("A", fmt.Sprint("c", i), "1")
		n, _ := s.PutSeq(r)
		want[r.Line()] = n
	}
	if got := numbered(s, 0, math.MaxUint64); !maps.Equal(got, want) {
		t.Errorf("after growth, %d records numbered as put out of %d", countEqual(got, want), len(want))
	}
}

func countEqual(a, b map[string]uint64) int {
	n := 0
	for k, v := range a {
		if b[k] == v {
			n++
		}
	}
	return n
}

func TestRestoreKeepsNumbers(t *testing.T) {
	s := New()
	if !s.Restore(rec("A", "c1", "10"), 500) || !s.Restore(rec("A", "c2", "10"), 200) {
		t.Fatal("Restore into an empty table changed nothing")
	}
	if s.Restore(rec("A", "c1", "9"), 600) {
		t.Error("Restore of an older record replaced a newer one")
	}
	if s.Seq() != 600 {
		t.Errorf("Seq = %d after restoring numbers up to 600", s.Seq())
	}
	want := map[string]uint64{rec("A", "c1", "10").Line(): 500, rec("A", "c2", "10").Line(): 200}
	if got := numbered(s, 0, math.MaxUint64); !maps.Equal(got, want) {
		t.Errorf("RangeSince = %v, want %v", got, want)
	}
	if n, _ := s.PutSeq(rec("A", "c3", "1")); n != 601 {
		t.Errorf("the put after restoring got %d, want 601", n)
	}
}

func TestAdvanceSeqNeverGoesBack(t *testing.T) {
	s := New()
	s.AdvanceSeq(1000)
	s.AdvanceSeq(10)
	if s.Seq() != 1000 {
		t.Errorf("Seq = %d, want 1000", s.Seq())
	}
}

// Concurrent puts get distinct numbers, and each client's stored record
// carries the number its put returned.
func TestConcurrentPutsGetDistinctNumbers(t *testing.T) {
	const writers, each = 8, 2000
	s := New()
	var mu sync.Mutex
	given := make(map[uint64]string)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := rec("A", fmt.Sprintf("w%d-%d", w, i%100), fmt.Sprint(i))
				n, ok := s.PutSeq(r)
				if !ok {
					t.Errorf("put of %s changed nothing", r.Line())
					return
				}
				mu.Lock()
				if prev, dup := given[n]; dup {
					t.Errorf("number %d given to %s and %s", n, prev, r.Line())
				}
				given[n] = r.Line()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for line, n := range numbered(s, 0, math.MaxUint64) {
		if given[n] != line {
			t.Errorf("record %s stored with number %d, which its put did not return (%q)", line, n, given[n])
		}
	}
}
