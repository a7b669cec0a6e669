package herdstore

import (
	"fmt"
	"sync"
	"testing"
)

// TestPrefetchChangesNothing prefetches clients, present and absent, while
// other goroutines put records and grow the tables: under the race detector
// this fails if Prefetch reads a shard without its lock.
func TestPrefetchChangesNothing(t *testing.T) {
	s := New()
	for i := range prefetchMinClients {
		s.Put(rec("A", fmt.Sprint("before-", i), "1"))
	}
	const writers, perWriter = 4, 5000
	var clients [][]byte
	for i := range 2*prefetchBatch + 3 {
		clients = append(clients, fmt.Appendf(nil, "w%d-c%d", i%writers, i*37%perWriter), fmt.Appendf(nil, "before-%d", i))
	}
	clients = append(clients, []byte("never-put"), nil, []byte{})
	var writing sync.WaitGroup
	for w := range writers {
		writing.Go(func() {
			for i := range perWriter {
				s.Put(rec("A", fmt.Sprintf("w%d-c%d", w, i), "1"))
			}
		})
	}
	done := make(chan struct{})
	var prefetching sync.WaitGroup
	prefetching.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				s.Prefetch(clients)
			}
		}
	})
	writing.Wait()
	close(done)
	prefetching.Wait()
	if want := prefetchMinClients + writers*perWriter; s.Len() != want {
		t.Fatalf("Len = %d, want %d", s.Len(), want)
	}
	for w := range writers {
		for i := range perWriter {
			client := fmt.Sprintf("w%d-c%d", w, i)
			if r, ok := s.Get([]byte(client)); !ok || r.Client() != client {
				t.Fatalf("Get(%s) = %v, %v", client, r, ok)
			}
		}
	}
	if _, ok := s.Get([]byte("never-put")); ok {
		t.Error("a prefetched client that was never put is in the table")
	}
}

func TestPrefetchAllocatesNothing(t *testing.T) {
	s := New()
	for i := range prefetchMinClients {
		s.Put(rec("A", fmt.Sprint("client-", i), "1"))
	}
	clients := [][]byte{[]byte("client-7"), []byte("absent")}
	if allocs := testing.AllocsPerRun(100, func() { s.Prefetch(clients) }); allocs != 0 {
		t.Errorf("Prefetch allocates %v times, want 0", allocs)
	}
}

// BenchmarkPutBatch puts ever newer records in batches of 16 clients spread
// over a large table, as a handler does with the lines of one read, without
// and with a Prefetch of the batch's clients first.
func BenchmarkPutBatch(b *testing.B) {
	const batch = 16
	for _, n := range []int{1000, 100000, 1000000} {
		s, recs := newerRecords(n)
		clients := make([][]byte, len(recs))
		for i, r := range recs {
			clients[i] = []byte(r.Client())
		}
		for _, prefetched := range []bool{false, true} {
			b.Run(fmt.Sprintf("%d/prefetch=%v", n, prefetched), func(b *testing.B) {
				i := 0
				for b.Loop() {
					start := i & (len(recs) - 1)
					if prefetched {
						s.Prefetch(clients[start : start+batch])
					}
					for _, r := range recs[start : start+batch] {
						s.Put(r)
					}
					i += batch
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/put")
			})
		}
	}
}
