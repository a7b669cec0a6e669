package places

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

func newLegacy(t *testing.T, endpoint string) *GoogleLegacy {
	t.Helper()
	g := &GoogleLegacy{APIKey: fakeplaces.APIKey, Endpoint: endpoint}
	mustProvision(t, g)
	return g
}

// fetchDirect asks the fake for a Nearby Search (legacy) answer without the
// provider, for comparison.
func fetchDirect(t *testing.T, fake *fakeplaces.Server, key string) []byte {
	t.Helper()
	q := url.Values{"location": {"34.068921,-118.4451811"}, "radius": {"1500"}, "key": {key}}
	resp, err := http.Get(fake.URL + "/maps/api/place/nearbysearch/json?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestGoogleLegacyRequestShape(t *testing.T) {
	fake := fakeplaces.Start(t)
	g := newLegacy(t, fake.URL+"/") // a trailing slash is dropped
	tests := []struct {
		q                        Query
		wantLocation, wantRadius string
	}{
		{uclaQuery, "34.068921,-118.4451811", "1500"},
		{Query{Latitude: 34.0722, Longitude: -118.4432, RadiusMeters: 2500.5, MaxResults: 20}, "34.0722,-118.4432", "2500.5"},
		{Query{Latitude: -33.8688, Longitude: 151.2093, RadiusMeters: 50000}, "-33.8688,151.2093", "50000"},
		{Query{Latitude: 0.0000001, Longitude: 0, RadiusMeters: 1}, "0.0000001,0", "1"},
	}
	for _, tt := range tests {
		if _, err := g.Nearby(context.Background(), tt.q); err != nil {
			t.Fatalf("Nearby(%+v): %v", tt.q, err)
		}
		r := fake.LastRequest()
		if r.Method != http.MethodGet || r.Path != "/maps/api/place/nearbysearch/json" || len(r.Body) != 0 {
			t.Errorf("request %s %s with %d body bytes, want GET /maps/api/place/nearbysearch/json without body", r.Method, r.Path, len(r.Body))
		}
		want := url.Values{"location": {tt.wantLocation}, "radius": {tt.wantRadius}, "key": {fakeplaces.APIKey}}
		if r.Query.Encode() != want.Encode() {
			t.Errorf("query = %v, want %v", r.Query, want)
		}
	}
}

func TestGoogleLegacyPassesAnswersThrough(t *testing.T) {
	fake := fakeplaces.Start(t)
	tests := []struct {
		name         string
		legacyStatus string
		key          string
		wantStatus   string
	}{
		{"OK", "", fakeplaces.APIKey, `"status" : "OK"`},
		{"ZERO_RESULTS", "ZERO_RESULTS", fakeplaces.APIKey, `"status" : "ZERO_RESULTS"`},
		{"OVER_QUERY_LIMIT", "OVER_QUERY_LIMIT", fakeplaces.APIKey, `"status" : "OVER_QUERY_LIMIT"`},
		{"INVALID_REQUEST", "INVALID_REQUEST", fakeplaces.APIKey, `"status" : "INVALID_REQUEST"`},
		{"REQUEST_DENIED for a wrong key", "", "AIza-wrong-key", `"status" : "REQUEST_DENIED"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.SetLegacyStatus(tt.legacyStatus)
			g := &GoogleLegacy{APIKey: tt.key, Endpoint: fake.URL}
			mustProvision(t, g)
			got, err := g.Nearby(context.Background(), uclaQuery)
			if err != nil {
				t.Fatalf("Nearby: %v", err)
			}
			want := fetchDirect(t, fake, tt.key)
			if !bytes.Equal(got, want) {
				t.Errorf("answer differs from Google's bytes:\ngot:\n%.300s\nwant:\n%.300s", got, want)
			}
			if !bytes.Contains(got, []byte(tt.wantStatus)) {
				t.Errorf("answer lacks %s", tt.wantStatus)
			}
		})
	}
	// The normal answer's formatting, blank lines included, survives.
	fake.SetLegacyStatus("")
	got, err := newLegacy(t, fake.URL).Nearby(context.Background(), uclaQuery)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "\n\n\n") || !strings.Contains(string(got), `"html_attributions" : [],`) {
		t.Errorf("formatting lost:\n%.300s", got)
	}
}

func TestGoogleLegacyDefaults(t *testing.T) {
	g := &GoogleLegacy{APIKey: "k"}
	mustProvision(t, g)
	if g.baseURL != "https://maps.googleapis.com" {
		t.Errorf("default endpoint = %q", g.baseURL)
	}
	if g.client.Timeout != 5*time.Second {
		t.Errorf("default timeout = %v, want 5s", g.client.Timeout)
	}
	if err := g.Cleanup(); err != nil {
		t.Errorf("Cleanup: %v", err)
	}
}
