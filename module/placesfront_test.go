package module

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/places"
)

// gatedPlaces is a provider that counts its requests, tells the test of each
// as it arrives, and holds them until the test opens the gate.
type gatedPlaces struct {
	body  string
	err   error
	calls atomic.Int64
	asked chan places.Query // each request's query as it arrives; nil for none
	gate  chan struct{}     // requests answer once it is closed; nil for at once
}

func (p *gatedPlaces) Nearby(ctx context.Context, q places.Query) ([]byte, error) {
	p.calls.Add(1)
	if p.asked != nil {
		p.asked <- q
	}
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return []byte(p.body), nil
}

// testClock is a clock that moves only when the test says so.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Unix(1_700_000_000, 0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newSharedTestNode returns a node whose provider is upstream behind
// sharedPlaces with cacheTTL, on a test clock, and a channel that receives
// the key of each query that joins one in flight.
func newSharedTestNode(t *testing.T, upstream places.Provider, cacheTTL time.Duration) (*node, *sharedPlaces, *testClock, <-chan placesKey) {
	t.Helper()
	n := newTestNode(t, nil)
	s := newSharedPlaces(n.ctx, upstream, cacheTTL, &n.stats.placesUpstream)
	clock := newTestClock()
	s.now = clock.Now
	joined := make(chan placesKey, 64)
	s.flights.onJoin = func(k placesKey) { joined <- k }
	n.configure("Test", nil, s, nil, zap.NewNop())
	return n, s, clock, joined
}

// counts returns the node's places counters: requests sent upstream,
// coalesced and cached.
func counts(n *node) [3]int64 {
	c := &n.stats.placesUpstream
	return [3]int64{c.requests.Load(), c.coalesced.Load(), c.cached.Load()}
}

// readAnswer reads one WHATSAT answer: a `? ` line, or the AT line, the JSON
// and the blank line that ends it.
func readAnswer(t *testing.T, conn net.Conn, r *bufio.Reader) string {
	t.Helper()
	var answer strings.Builder
	for {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading a WHATSAT answer after %q: %v", answer.String(), err)
		}
		answer.WriteString(line)
		if line == "\n" || strings.HasPrefix(answer.String(), "? ") {
			return answer.String()
		}
	}
}

const (
	kiwiRecord = "AT A +0.1 kiwi +34.068930-118.445127 1"
	pearRecord = "AT A +0.1 pear +34.068930-118.445000 1"
	onePlace   = `{"results":[{"n":1},{"n":2}],"status":"OK"}`
)

// uclaQuery is a query for places around UCLA.
var uclaQuery = places.Query{Latitude: 34.068921, Longitude: -118.4451811, RadiusMeters: 1500, MaxResults: 5}

// sendWhatsats opens one connection per line, sends each its line, and
// returns the connections and their readers.
func sendWhatsats(t *testing.T, n *node, lines ...string) ([]net.Conn, []*bufio.Reader) {
	t.Helper()
	conns := make([]net.Conn, len(lines))
	readers := make([]*bufio.Reader, len(lines))
	for i, line := range lines {
		conns[i], _ = serveOne(t, testHandler(n))
		readers[i] = bufio.NewReader(conns[i])
		go io.WriteString(conns[i], line+"\n")
	}
	// Cleanups run last first, so this one runs before the connections'
	// own: it ends any request a failing test left held upstream, so that
	// the handlers, and with them the connections, can end.
	t.Cleanup(n.cancel)
	return conns, readers
}

func TestWhatsatCoalescesIdenticalQueries(t *testing.T) {
	const clients = 8
	upstream := &gatedPlaces{body: onePlace, asked: make(chan places.Query, clients), gate: make(chan struct{})}
	n, s, _, joined := newSharedTestNode(t, upstream, 0)
	n.store.Put(herdstore.NewRecord(kiwiRecord))

	lines := make([]string, clients)
	for i := range lines {
		lines[i] = "WHATSAT kiwi 10 1"
	}
	conns, readers := sendWhatsats(t, n, lines...)
	waitFor(t, upstream.asked, "the request upstream")
	for range clients - 1 {
		waitFor(t, joined, "a WHATSAT to join the request in flight")
	}
	close(upstream.gate)

	want := kiwiRecord + "\n" + `{"results":[{"n":1}],"status":"OK"}` + "\n\n"
	for i := range conns {
		if got := readAnswer(t, conns[i], readers[i]); got != want {
			t.Errorf("client %d got %q, want %q", i, got, want)
		}
	}
	if got := upstream.calls.Load(); got != 1 {
		t.Errorf("%d requests upstream for %d identical WHATSATs, want 1", got, clients)
	}
	if got, want := counts(n), [3]int64{1, clients - 1, 0}; got != want {
		t.Errorf("upstream, coalesced, cached = %v, want %v", got, want)
	}
	if got := n.stats.placesOK.Load(); got != clients {
		t.Errorf("%d WHATSATs answered ok, want %d", got, clients)
	}
	if len(s.flights.flights) != 0 {
		t.Errorf("%d flights left after the answer", len(s.flights.flights))
	}
}

func TestWhatsatCoalescingNeedsIdenticalQueries(t *testing.T) {
	const first = "WHATSAT kiwi 10 1"
	tests := []struct {
		name      string
		second    string
		coalesced bool
	}{
		{"identical", first, true},
		{"another location", "WHATSAT pear 10 1", false},
		{"another radius", "WHATSAT kiwi 11 1", false},
		{"another bound", "WHATSAT kiwi 10 2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := &gatedPlaces{body: onePlace, asked: make(chan places.Query, 2), gate: make(chan struct{})}
			n, _, _, joined := newSharedTestNode(t, upstream, 0)
			n.store.Put(herdstore.NewRecord(kiwiRecord))
			n.store.Put(herdstore.NewRecord(pearRecord))

			conns, readers := sendWhatsats(t, n, first, tt.second)
			waitFor(t, upstream.asked, "the first request upstream")
			if tt.coalesced {
				waitFor(t, joined, "the second WHATSAT to join the first")
			} else {
				// Both requests are upstream at once: the second did not
				// wait for the first.
				waitFor(t, upstream.asked, "the second request upstream")
			}
			close(upstream.gate)
			for i := range conns {
				if got := readAnswer(t, conns[i], readers[i]); strings.HasPrefix(got, "? ") {
					t.Errorf("client %d got %q", i, got)
				}
			}
			wantCalls := int64(2)
			if tt.coalesced {
				wantCalls = 1
			}
			if got := upstream.calls.Load(); got != wantCalls {
				t.Errorf("%d requests upstream, want %d", got, wantCalls)
			}
		})
	}
}

// TestWhatsatCoalescedErrorReachesEveryWaiter fails the one shared request:
// every waiter answers `? <line>`, and nothing is cached, so the next
// WHATSAT asks again.
func TestWhatsatCoalescedErrorReachesEveryWaiter(t *testing.T) {
	const clients = 5
	upstream := &gatedPlaces{err: errors.New("quota exceeded"), asked: make(chan places.Query, clients+1), gate: make(chan struct{})}
	n, _, _, joined := newSharedTestNode(t, upstream, time.Hour)
	n.store.Put(herdstore.NewRecord(kiwiRecord))

	lines := make([]string, clients)
	for i := range lines {
		lines[i] = "WHATSAT kiwi 10 1"
	}
	conns, readers := sendWhatsats(t, n, lines...)
	waitFor(t, upstream.asked, "the request upstream")
	for range clients - 1 {
		waitFor(t, joined, "a WHATSAT to join the request in flight")
	}
	close(upstream.gate)
	for i := range conns {
		if got := readAnswer(t, conns[i], readers[i]); got != "? WHATSAT kiwi 10 1\n" {
			t.Errorf("client %d got %q", i, got)
		}
	}

	conns, readers = sendWhatsats(t, n, "WHATSAT kiwi 10 1")
	waitFor(t, upstream.asked, "a new request upstream after the error")
	if got := readAnswer(t, conns[0], readers[0]); got != "? WHATSAT kiwi 10 1\n" {
		t.Errorf("after the error: %q", got)
	}
	if got, want := counts(n), [3]int64{2, clients - 1, 0}; got != want {
		t.Errorf("upstream, coalesced, cached = %v, want %v", got, want)
	}
	if got := n.stats.placesFailed.Load(); got != clients+1 {
		t.Errorf("%d WHATSATs failed, want %d", got, clients+1)
	}
}

func TestWhatsatAnswersFromTheCache(t *testing.T) {
	upstream := &gatedPlaces{body: onePlace}
	n, _, clock, _ := newSharedTestNode(t, upstream, time.Minute)
	n.store.Put(herdstore.NewRecord(kiwiRecord))
	conn, _ := serveOne(t, testHandler(n))
	r := bufio.NewReader(conn)
	ask := func(line string) string {
		go io.WriteString(conn, line+"\n")
		return readAnswer(t, conn, r)
	}

	first := ask("WHATSAT kiwi 10 2")
	clock.advance(59 * time.Second)
	if again := ask("WHATSAT kiwi 10 2"); again != first {
		t.Errorf("cached answer %q, want %q", again, first)
	}
	if got := upstream.calls.Load(); got != 1 {
		t.Errorf("%d requests upstream within the TTL, want 1", got)
	}
	clock.advance(time.Second)
	ask("WHATSAT kiwi 10 2")
	if got := upstream.calls.Load(); got != 2 {
		t.Errorf("%d requests upstream once the TTL is over, want 2", got)
	}
	if got, want := counts(n), [3]int64{2, 0, 1}; got != want {
		t.Errorf("upstream, coalesced, cached = %v, want %v", got, want)
	}
}

func TestSharedPlacesCachesOnlySuccess(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		err    error
		cached bool
	}{
		{"OK", `{"results":[{"n":1}],"status":"OK"}`, nil, true},
		{"ZERO_RESULTS", "{\n   \"results\" : [],\n   \"status\" : \"ZERO_RESULTS\"\n}", nil, true},
		{"OVER_QUERY_LIMIT", `{"error_message":"quota","results":[],"status":"OVER_QUERY_LIMIT"}`, nil, false},
		{"REQUEST_DENIED", `{"results":[],"status":"REQUEST_DENIED"}`, nil, false},
		{"no status", `{"results":[]}`, nil, false},
		{"not JSON", `<html>`, nil, false},
		{"error", "", errors.New("HTTP 500"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := &gatedPlaces{body: tt.body, err: tt.err}
			_, s, _, _ := newSharedTestNode(t, upstream, time.Minute)
			for range 2 {
				body, err := s.Nearby(context.Background(), uclaQuery)
				if string(body) != tt.body || !errors.Is(err, tt.err) {
					t.Fatalf("Nearby = %q, %v; want %q, %v", body, err, tt.body, tt.err)
				}
			}
			wantCalls := int64(2)
			if tt.cached {
				wantCalls = 1
			}
			if got := upstream.calls.Load(); got != wantCalls {
				t.Errorf("%d requests upstream for two queries, want %d", got, wantCalls)
			}
		})
	}
}

func TestSharedPlacesCacheStaysBounded(t *testing.T) {
	upstream := &gatedPlaces{body: onePlace}
	_, s, _, _ := newSharedTestNode(t, upstream, time.Hour)
	const queries = maxCachedAnswers + 100
	for i := range queries {
		q := uclaQuery
		q.Latitude = float64(i) / 1e6
		if _, err := s.Nearby(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(s.cache.entries); got != maxCachedAnswers {
		t.Errorf("%d answers cached after %d distinct queries, want the bound %d", got, queries, maxCachedAnswers)
	}
	if len(s.flights.flights) != 0 {
		t.Errorf("%d flights left", len(s.flights.flights))
	}
	// The oldest went; the newest is served from the cache.
	q := uclaQuery
	q.Latitude = float64(queries-1) / 1e6
	s.Nearby(context.Background(), q)
	q.Latitude = 0
	s.Nearby(context.Background(), q)
	if got := upstream.calls.Load(); got != queries+1 {
		t.Errorf("%d requests upstream, want %d: the newest cached, the oldest evicted", got, queries+1)
	}
}

// TestSharedPlacesRequestOutlivesItsCallers ends the context of the caller
// that started a request: the request goes on for the other waiter, with the
// node's context. Only the node's end cancels it.
func TestSharedPlacesRequestOutlivesItsCallers(t *testing.T) {
	upstream := &gatedPlaces{body: onePlace, asked: make(chan places.Query, 2), gate: make(chan struct{})}
	n, s, _, joined := newSharedTestNode(t, upstream, 0)

	leaving, leave := context.WithCancel(context.Background())
	leaver := make(chan error, 1)
	go func() {
		_, err := s.Nearby(leaving, uclaQuery)
		leaver <- err
	}()
	waitFor(t, upstream.asked, "the request upstream")
	stayer := make(chan string, 1)
	go func() {
		body, _ := s.Nearby(context.Background(), uclaQuery)
		stayer <- string(body)
	}()
	waitFor(t, joined, "the second caller to join")
	leave()
	if err := waitFor(t, leaver, "the leaving caller"); !errors.Is(err, context.Canceled) {
		t.Errorf("the leaving caller got %v", err)
	}
	close(upstream.gate)
	if got := waitFor(t, stayer, "the staying caller"); got != onePlace {
		t.Errorf("the staying caller got %q, want the answer", got)
	}

	upstream.gate = make(chan struct{}) // hold the next request until the node ends
	failed := make(chan error, 1)
	go func() {
		_, err := s.Nearby(context.Background(), uclaQuery)
		failed <- err
	}()
	waitFor(t, upstream.asked, "the next request upstream")
	n.cancel()
	if err := waitFor(t, failed, "the request to end with the node"); !errors.Is(err, context.Canceled) {
		t.Errorf("with the node ended the request got %v, want context.Canceled", err)
	}
}

func BenchmarkSharedPlacesCacheHit(b *testing.B) {
	s := newSharedPlaces(context.Background(), &gatedPlaces{body: onePlace}, time.Hour, new(upstreamCounters))
	if _, err := s.Nearby(context.Background(), uclaQuery); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			s.Nearby(context.Background(), uclaQuery)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.Nearby(context.Background(), uclaQuery)
			}
		})
	})
}
