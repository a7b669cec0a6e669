package places

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

func newGoogle(t *testing.T, endpoint, fieldMask string) *Google {
	t.Helper()
	g := &Google{APIKey: fakeplaces.APIKey, Endpoint: endpoint, FieldMask: fieldMask}
	mustProvision(t, g)
	return g
}

// searchDirect asks the fake for a Nearby Search (New) answer without the
// provider and returns its places.
func searchDirect(t *testing.T, fake *fakeplaces.Server, maxResults int, fieldMask string) []json.RawMessage {
	t.Helper()
	body := `{"maxResultCount": ` + string(mustMarshal(t, maxResults)) +
		`, "locationRestriction": {"circle": {"center": {"latitude": 34.068921, "longitude": -118.4451811}, "radius": 1500}}}`
	req, err := http.NewRequest(http.MethodPost, fake.URL+"/v1/places:searchNearby", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Goog-Api-Key", fakeplaces.APIKey)
	req.Header.Set("X-Goog-FieldMask", fieldMask)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Places []json.RawMessage `json:"places"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("fake answer: %v\n%s", err, raw)
	}
	return doc.Places
}

func compactJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestGoogleRequestShape(t *testing.T) {
	fake := fakeplaces.Start(t)
	tests := []struct {
		name           string
		fieldMask      string
		q              Query
		wantMask       string
		wantMaxResults int
	}{
		{"default mask, no max results", "", Query{Latitude: 34.068921, Longitude: -118.4451811, RadiusMeters: 1500}, "*", 1},
		{"custom mask", "places.displayName,places.location", Query{Latitude: 34.0722, Longitude: -118.4432, RadiusMeters: 250.5, MaxResults: 5}, "places.displayName,places.location", 5},
		{"twenty results", "", Query{Latitude: -33.8688, Longitude: 151.2093, RadiusMeters: 50000, MaxResults: 20}, "*", 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGoogle(t, fake.URL, tt.fieldMask)
			if _, err := g.Nearby(context.Background(), tt.q); err != nil {
				t.Fatalf("Nearby: %v", err)
			}
			r := fake.LastRequest()
			if r.Method != http.MethodPost || r.Path != "/v1/places:searchNearby" || len(r.Query) != 0 {
				t.Errorf("request %s %s?%s, want POST /v1/places:searchNearby", r.Method, r.Path, r.Query.Encode())
			}
			for header, want := range map[string]string{
				"X-Goog-Api-Key":   fakeplaces.APIKey,
				"X-Goog-FieldMask": tt.wantMask,
				"Content-Type":     "application/json",
			} {
				if got := r.Header.Get(header); got != want {
					t.Errorf("%s = %q, want %q", header, got, want)
				}
			}
			var body struct {
				MaxResultCount      *int `json:"maxResultCount"`
				LocationRestriction struct {
					Circle struct {
						Center struct {
							Latitude  float64 `json:"latitude"`
							Longitude float64 `json:"longitude"`
						} `json:"center"`
						Radius float64 `json:"radius"`
					} `json:"circle"`
				} `json:"locationRestriction"`
			}
			dec := json.NewDecoder(bytes.NewReader(r.Body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("request body %s: %v", r.Body, err)
			}
			c := body.LocationRestriction.Circle
			if body.MaxResultCount == nil || *body.MaxResultCount != tt.wantMaxResults ||
				c.Center.Latitude != tt.q.Latitude || c.Center.Longitude != tt.q.Longitude || c.Radius != tt.q.RadiusMeters {
				t.Errorf("request body = %s, want maxResultCount %d around %v,%v within %v m",
					r.Body, tt.wantMaxResults, tt.q.Latitude, tt.q.Longitude, tt.q.RadiusMeters)
			}
		})
	}
}

func TestGoogleWrapsInLegacyShape(t *testing.T) {
	fake := fakeplaces.Start(t)
	tests := []struct {
		name       string
		fieldMask  string
		maxResults int
	}{
		{"every field", "", 3},
		{"one place", "*", 1},
		{"all places", "", 20},
		{"field mask", "places.displayName,places.location", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGoogle(t, fake.URL, tt.fieldMask)
			q := uclaQuery
			q.MaxResults = tt.maxResults
			got, err := g.Nearby(context.Background(), q)
			if err != nil {
				t.Fatalf("Nearby: %v", err)
			}
			if !strings.HasPrefix(string(got), "{\n   \"html_attributions\": [],\n   \"results\": [\n      {\n         \"") ||
				!strings.HasSuffix(string(got), "\n   ],\n   \"status\": \"OK\"\n}") {
				t.Errorf("answer is not the legacy shape indented with three spaces:\n%s", got)
			}
			mask := tt.fieldMask
			if mask == "" {
				mask = "*"
			}
			want := searchDirect(t, fake, tt.maxResults, mask)
			doc := decodeLegacy(t, got)
			if doc.Status != "OK" || len(doc.Results) != len(want) || len(want) == 0 {
				t.Fatalf("status %s with %d results, want OK with %d", doc.Status, len(doc.Results), len(want))
			}
			for i := range want {
				// Same bytes once whitespace is removed: same key order, same escapes.
				if g, w := compactJSON(t, doc.Results[i]), compactJSON(t, want[i]); g != w {
					t.Errorf("result %d =\n%s\nwant\n%s", i, g, w)
				}
			}
		})
	}
}

func TestGoogleZeroResults(t *testing.T) {
	fake := fakeplaces.Start(t)
	g := newGoogle(t, fake.URL, "")
	got, err := g.Nearby(context.Background(), Query{Latitude: 34.0689, Longitude: -118.4452, RadiusMeters: 0.5, MaxResults: 5})
	if err != nil {
		t.Fatalf("Nearby: %v", err)
	}
	want := "{\n   \"html_attributions\": [],\n   \"results\": [],\n   \"status\": \"ZERO_RESULTS\"\n}"
	if string(got) != want {
		t.Errorf("answer =\n%s\nwant\n%s", got, want)
	}
}

func TestGoogleRejectsMalformedPlaces(t *testing.T) {
	for _, body := range []string{`{"places": "Royce Hall"}`, `{"places": {"name": "Royce Hall"}}`} {
		srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		})
		g := newGoogle(t, srv.URL, "")
		if _, err := g.Nearby(context.Background(), uclaQuery); err == nil || !strings.Contains(err.Error(), "decoding response") {
			t.Errorf("answer %s: error = %v, want a decoding error", body, err)
		}
	}
}

func TestGoogleDefaults(t *testing.T) {
	g := &Google{APIKey: "k"}
	mustProvision(t, g)
	if g.baseURL != "https://places.googleapis.com" || g.FieldMask != "*" || g.client.Timeout != 5*time.Second {
		t.Errorf("defaults: endpoint %q, field mask %q, timeout %v", g.baseURL, g.FieldMask, g.client.Timeout)
	}
}
