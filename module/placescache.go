package module

import (
	"container/list"
	"math"
	"sync"
	"time"

	"github.com/caddy-herd/caddy-herd/places"
)

// Bounds of the places answer cache. Google answers a nearby search in a few
// tens of kilobytes, so the byte bound is the one that usually applies; the
// entry bound keeps the index small when answers are tiny (ZERO_RESULTS).
const (
	maxCachedAnswers    = 10000
	maxCachedAnswerSize = 64 << 20 // bytes, all answers together
)

// placesKey identifies a places query: two queries with the same key get the
// same answer from the provider. Coordinates are kept as their bits so that
// every key equals itself, even a NaN one, and can be found and deleted.
type placesKey struct {
	latitude, longitude, radiusMeters uint64
	maxResults                        int
}

func newPlacesKey(q places.Query) placesKey {
	return placesKey{
		latitude:     math.Float64bits(q.Latitude),
		longitude:    math.Float64bits(q.Longitude),
		radiusMeters: math.Float64bits(q.RadiusMeters),
		maxResults:   q.MaxResults,
	}
}

// answerCache keeps places answers for a fixed time, within a bound on their
// number and their total size. Every answer lives equally long, so the
// oldest answer is also the first to expire: one list in insertion order
// serves both to drop the expired and to evict the oldest when full.
type answerCache struct {
	ttl        time.Duration
	maxEntries int
	maxBytes   int

	mu      sync.Mutex
	entries map[placesKey]*list.Element // of *cachedAnswer
	order   list.List                   // oldest first
	bytes   int                         // capacity of the cached bodies, together
}

type cachedAnswer struct {
	key     placesKey
	body    []byte
	expires time.Time
}

// newAnswerCache returns a cache that keeps answers for ttl, at most
// maxEntries of them and maxBytes together, or nil, which caches nothing, if
// ttl is not positive.
func newAnswerCache(ttl time.Duration, maxEntries, maxBytes int) *answerCache {
	if ttl <= 0 {
		return nil
	}
	return &answerCache{
		ttl:        ttl,
		maxEntries: maxEntries,
		maxBytes:   maxBytes,
		entries:    make(map[placesKey]*list.Element),
	}
}

// get returns the answer cached for key, unless it has expired by now.
func (c *answerCache) get(key placesKey, now time.Time) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	a := e.Value.(*cachedAnswer)
	if !now.Before(a.expires) {
		c.remove(e)
		return nil, false
	}
	return a.body, true
}

// put caches body for key from now on, replacing what key held. It first
// drops the expired answers, then evicts the oldest until the new one fits.
// An answer larger than the whole cache is not kept.
func (c *answerCache) put(key placesKey, body []byte, now time.Time) {
	size := cap(body)
	if c == nil || size > c.maxBytes || c.maxEntries < 1 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.remove(e)
	}
	for e := c.order.Front(); e != nil && !now.Before(e.Value.(*cachedAnswer).expires); e = c.order.Front() {
		c.remove(e)
	}
	for c.order.Len() >= c.maxEntries || c.bytes+size > c.maxBytes {
		c.remove(c.order.Front())
	}
	c.entries[key] = c.order.PushBack(&cachedAnswer{key: key, body: body, expires: now.Add(c.ttl)})
	c.bytes += size
}

// remove drops e; c.mu is held.
func (c *answerCache) remove(e *list.Element) {
	a := c.order.Remove(e).(*cachedAnswer)
	delete(c.entries, a.key)
	c.bytes -= cap(a.body)
}
