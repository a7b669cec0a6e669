package module

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/places"
)

func keyN(i int) placesKey {
	return newPlacesKey(places.Query{Latitude: float64(i) / 1000, Longitude: 1, RadiusMeters: 1000, MaxResults: 5})
}

func TestPlacesKey(t *testing.T) {
	base := places.Query{Latitude: 34.06893, Longitude: -118.445127, RadiusMeters: 10000, MaxResults: 5}
	tests := []struct {
		name string
		q    places.Query
		same bool
	}{
		{"identical", base, true},
		{"latitude", places.Query{Latitude: 34.06894, Longitude: base.Longitude, RadiusMeters: base.RadiusMeters, MaxResults: base.MaxResults}, false},
		{"longitude", places.Query{Latitude: base.Latitude, Longitude: -118.445128, RadiusMeters: base.RadiusMeters, MaxResults: base.MaxResults}, false},
		{"radius", places.Query{Latitude: base.Latitude, Longitude: base.Longitude, RadiusMeters: 10001, MaxResults: base.MaxResults}, false},
		{"max results", places.Query{Latitude: base.Latitude, Longitude: base.Longitude, RadiusMeters: base.RadiusMeters, MaxResults: 6}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newPlacesKey(tt.q) == newPlacesKey(base); got != tt.same {
				t.Errorf("key of %+v equals key of %+v: %v, want %v", tt.q, base, got, tt.same)
			}
		})
	}
	nan := places.Query{Latitude: math.NaN()}
	if newPlacesKey(nan) != newPlacesKey(nan) {
		t.Error("a NaN query's key does not equal itself: it could never be deleted")
	}
}

func TestAnswerCacheExpiry(t *testing.T) {
	const ttl = time.Minute
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		after time.Duration
		hit   bool
	}{
		{0, true},
		{ttl - time.Nanosecond, true},
		{ttl, false},
		{2 * ttl, false},
	}
	for _, tt := range tests {
		t.Run(tt.after.String(), func(t *testing.T) {
			c := newAnswerCache(ttl, 10, 1<<20)
			c.put(keyN(1), []byte("answer"), t0)
			body, ok := c.get(keyN(1), t0.Add(tt.after))
			if ok != tt.hit || (ok && string(body) != "answer") {
				t.Errorf("get %v after put = %q, %v; want a hit: %v", tt.after, body, ok, tt.hit)
			}
			if _, ok := c.get(keyN(2), t0); ok {
				t.Error("a key never put is a hit")
			}
			if !tt.hit && len(c.entries) != 0 {
				t.Errorf("an expired answer is still held after a get")
			}
		})
	}
}

func TestAnswerCacheBounds(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	body := func(size int) []byte { return []byte(strings.Repeat("x", size))[:size:size] }
	tests := []struct {
		name                 string
		maxEntries, maxBytes int
		puts, size           int
		wantKept             []int // keys still cached, oldest first
	}{
		{"entry bound evicts the oldest", 3, 1 << 20, 5, 10, []int{2, 3, 4}},
		{"byte bound evicts the oldest", 100, 100, 5, 40, []int{3, 4}},
		{"within bounds keeps all", 10, 1000, 5, 10, []int{0, 1, 2, 3, 4}},
		{"an answer larger than the cache is not kept", 10, 100, 3, 101, nil},
		{"zero entries keeps nothing", 0, 1000, 3, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newAnswerCache(time.Minute, tt.maxEntries, tt.maxBytes)
			for i := range tt.puts {
				c.put(keyN(i), body(tt.size), t0)
				if c.order.Len() > max(tt.maxEntries, 0) || c.bytes > tt.maxBytes || len(c.entries) != c.order.Len() {
					t.Fatalf("after %d puts: %d entries (%d indexed), %d bytes; bounds %d entries, %d bytes",
						i+1, c.order.Len(), len(c.entries), c.bytes, tt.maxEntries, tt.maxBytes)
				}
			}
			var kept []int
			for i := range tt.puts {
				if _, ok := c.get(keyN(i), t0); ok {
					kept = append(kept, i)
				}
			}
			if !slices.Equal(kept, tt.wantKept) {
				t.Errorf("kept %v, want %v", kept, tt.wantKept)
			}
			if c.bytes != len(kept)*tt.size {
				t.Errorf("accounts %d bytes for %d answers of %d", c.bytes, len(kept), tt.size)
			}
		})
	}
}

// TestAnswerCacheDropsExpiredFirst fills the cache, lets it expire, and puts
// again: the expired answers go, and the new ones do not evict each other.
func TestAnswerCacheDropsExpiredFirst(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newAnswerCache(time.Minute, 3, 1<<20)
	for i := range 3 {
		c.put(keyN(i), []byte("old"), t0)
	}
	later := t0.Add(time.Minute)
	c.put(keyN(10), []byte("new"), later)
	if c.order.Len() != 1 || c.bytes != 3 {
		t.Errorf("%d answers, %d bytes after a put over expired ones; want only the new one", c.order.Len(), c.bytes)
	}
	c.put(keyN(11), []byte("new"), later)
	c.put(keyN(10), []byte("newer"), later) // replaces, does not add
	if c.order.Len() != 2 {
		t.Errorf("%d answers, want 2", c.order.Len())
	}
	if body, ok := c.get(keyN(10), later); !ok || string(body) != "newer" {
		t.Errorf("replaced answer %q, %v", body, ok)
	}
}

func TestAnswerCacheOffCachesNothing(t *testing.T) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		c := newAnswerCache(ttl, 10, 1<<20)
		c.put(keyN(1), []byte("answer"), time.Now())
		if _, ok := c.get(keyN(1), time.Now()); ok {
			t.Errorf("ttl %v: a cache hit", ttl)
		}
	}
}
