package module

import (
	"context"
	"encoding/json"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-herd/caddy-herd/places"
)

// sharedPlaces is the places provider as WHATSAT sees it: it stands in
// front of the configured provider so that identical queries cost one
// request to it. Queries are identical when their whole places.Query is:
// latitude, longitude, radius and max results. The Places API (New) is
// asked for as many results as the bound, so its answers differ by bound;
// the legacy API and the file ignore the bound, but one rule for every
// provider keeps this type ignorant of them.
//
// Identical queries in flight at the same time share one request, made with
// the node's context, so a client that goes away cancels nothing for the
// others. With a cache TTL, a successful answer is also served again to
// identical queries until it expires.
//
// Each config builds its own around its own provider, so a reload starts
// with an empty cache; the counters are the node's and carry on.
type sharedPlaces struct {
	upstream places.Provider
	name     string          // the provider's module name, for metrics
	ctx      context.Context // the node's; requests to the provider end with it
	cache    *answerCache    // nil without a cache TTL
	flights  flightGroup[placesKey, sharedAnswer]
	counters *upstreamCounters
	now      func() time.Time // the cache's clock
}

// sharedAnswer is the result of one call to the provider, or of the cache
// if an identical call filled it just before.
type sharedAnswer struct {
	body   []byte
	cached bool
}

// newSharedPlaces puts upstream behind coalescing and, if cacheTTL is
// positive, a cache. Requests to upstream use ctx; counters count them and
// the queries they saved.
func newSharedPlaces(ctx context.Context, upstream places.Provider, cacheTTL time.Duration, counters *upstreamCounters) *sharedPlaces {
	s := &sharedPlaces{
		upstream: upstream,
		ctx:      ctx,
		cache:    newAnswerCache(cacheTTL, maxCachedAnswers, maxCachedAnswerSize),
		counters: counters,
		now:      time.Now,
	}
	if m, ok := upstream.(caddy.Module); ok {
		s.name = m.CaddyModule().ID.Name()
	}
	return s
}

// Nearby answers q from the cache, from an identical request in flight, or
// from a new request to the provider. ctx bounds only this caller's wait.
// The answer may be shared with other callers: it must not be modified.
func (s *sharedPlaces) Nearby(ctx context.Context, q places.Query) ([]byte, error) {
	return s.nearbyCharged(ctx, q, nil)
}

// nearbyCharged is Nearby with an upstream budget: charge, if not nil, is
// called once if and only if q needs a request of its own to the provider,
// just before it is sent; if charge refuses, so does q, with charge's error,
// and nothing is sent. Answers from the cache or shared with a request in
// flight cost nothing.
func (s *sharedPlaces) nearbyCharged(ctx context.Context, q places.Query, charge func() error) ([]byte, error) {
	key := newPlacesKey(q)
	if body, ok := s.cache.get(key, s.now()); ok {
		s.counters.cached.Add(1)
		return body, nil
	}
	// The cache is looked at again when no identical request is in flight,
	// under the flights' lock: a request that just ended has filled it by
	// then, and no other can begin, so a query is charged exactly when it
	// goes upstream.
	start := func() (sharedAnswer, bool, error) {
		if body, ok := s.cache.get(key, s.now()); ok {
			return sharedAnswer{body: body, cached: true}, true, nil
		}
		if charge != nil {
			if err := charge(); err != nil {
				return sharedAnswer{}, false, err
			}
		}
		return sharedAnswer{}, false, nil
	}
	answer, err, shared := s.flights.do(ctx, key, start, func() (sharedAnswer, error) {
		return s.ask(key, q)
	})
	switch {
	case shared:
		s.counters.coalesced.Add(1)
	case err == nil && answer.cached:
		s.counters.cached.Add(1)
	}
	return answer.body, err
}

// ask sends q to the provider and caches a successful answer.
func (s *sharedPlaces) ask(key placesKey, q places.Query) (sharedAnswer, error) {
	s.counters.requests.Add(1)
	started := time.Now()
	body, err := s.upstream.Nearby(s.ctx, q)
	placesLatency.WithLabelValues(s.name).Observe(time.Since(started).Seconds())
	if err != nil {
		return sharedAnswer{}, err
	}
	if s.cache != nil && answeredOK(body) {
		s.cache.put(key, body, s.now())
	}
	return sharedAnswer{body: body}, nil
}

// answeredOK reports whether a places answer is a success worth caching:
// its status is OK or ZERO_RESULTS. The legacy API answers HTTP 200 with
// statuses such as OVER_QUERY_LIMIT or REQUEST_DENIED, which are errors.
func answeredOK(body []byte) bool {
	var doc struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return false
	}
	return doc.Status == "OK" || doc.Status == "ZERO_RESULTS"
}

// CaddyModule reports the module information of the provider behind s, so
// that the node names that provider, not this wrapper, in logs and metrics.
// A provider that is no module has none.
func (s *sharedPlaces) CaddyModule() caddy.ModuleInfo {
	if m, ok := s.upstream.(caddy.Module); ok {
		return m.CaddyModule()
	}
	return caddy.ModuleInfo{}
}

// Interface guards
var (
	_ places.Provider = (*sharedPlaces)(nil)
	_ chargedProvider = (*sharedPlaces)(nil)
	_ caddy.Module    = (*sharedPlaces)(nil)
)
