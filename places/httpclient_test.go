package places

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

// countDials makes client count the connections it opens.
func countDials(t *testing.T, client *http.Client) *atomic.Int64 {
	t.Helper()
	transport, ok := client.Transport.(*http.Transport)
	if !ok || transport.DialContext == nil {
		t.Fatalf("client transport %T has no dialer to count", client.Transport)
	}
	dial := transport.DialContext
	var dials atomic.Int64
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	return &dials
}

// TestHTTPProvidersReuseConnectionSequentially sends queries one after
// another: whatever the answer, success or error, they all travel on the
// first connection, because every response is read to its end.
func TestHTTPProvidersReuseConnectionSequentially(t *testing.T) {
	const queries = 20
	tests := []struct {
		name     string
		provider string
		fail     func(fake *fakeplaces.Server)
		wantErr  bool
	}{
		{"legacy answers", "google_legacy", nil, false},
		{"legacy OVER_QUERY_LIMIT", "google_legacy", func(f *fakeplaces.Server) { f.SetLegacyStatus("OVER_QUERY_LIMIT") }, false},
		{"legacy HTTP 500", "google_legacy", func(f *fakeplaces.Server) { f.SetFailure(http.StatusInternalServerError) }, true},
		{"new answers", "google", nil, false},
		{"new HTTP 403", "google", func(f *fakeplaces.Server) { f.SetFailure(http.StatusForbidden) }, true},
		{"new HTTP 429", "google", func(f *fakeplaces.Server) { f.SetFailure(http.StatusTooManyRequests) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := fakeplaces.Start(t)
			if tt.fail != nil {
				tt.fail(fake)
			}
			var client *http.Client
			var provider Provider
			switch tt.provider {
			case "google_legacy":
				g := newLegacy(t, fake.URL)
				client, provider = g.client, g
			case "google":
				g := newGoogle(t, fake.URL, "")
				client, provider = g.client, g
			}
			dials := countDials(t, client)
			for i := range queries {
				_, err := provider.Nearby(context.Background(), uclaQuery)
				if (err != nil) != tt.wantErr {
					t.Fatalf("query %d: error %v, want an error: %v", i, err, tt.wantErr)
				}
			}
			if got := fake.Requests(); got != queries {
				t.Fatalf("the fake received %d requests, want %d", got, queries)
			}
			if got := dials.Load(); got != 1 {
				t.Errorf("%d sequential queries opened %d connections, want 1", queries, got)
			}
		})
	}
}

// TestHTTPProviderReusesConnectionsConcurrently sends rounds of concurrent
// queries, each round held at the server until all its queries are there:
// the first round needs one connection per query, and the later rounds
// reuse them all.
func TestHTTPProviderReusesConnectionsConcurrently(t *testing.T) {
	const concurrent, rounds = 8, 5
	arrived := make(chan struct{})
	release := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"html_attributions": [], "results": [], "status": "ZERO_RESULTS"}`))
	})
	g := &GoogleLegacy{APIKey: "key", Endpoint: srv.URL}
	mustProvision(t, g)
	dials := countDials(t, g.client)

	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, concurrent)
		for range concurrent {
			wg.Go(func() {
				if _, err := g.Nearby(context.Background(), uclaQuery); err != nil {
					errs <- err
				}
			})
		}
		for range concurrent {
			<-arrived
		}
		for range concurrent {
			release <- struct{}{}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if got := dials.Load(); got != concurrent {
		t.Errorf("%d rounds of %d concurrent queries opened %d connections, want %d", rounds, concurrent, got, concurrent)
	}
}
