package places

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

func TestQueryValidate(t *testing.T) {
	tests := []struct {
		name    string
		q       Query
		wantErr string
	}{
		{"valid", uclaQuery, ""},
		{"smallest radius", Query{RadiusMeters: 0.001}, ""},
		{"largest radius and results", Query{Latitude: -90, Longitude: 180, RadiusMeters: 50000, MaxResults: 20}, ""},
		{"latitude too large", Query{Latitude: 90.5, RadiusMeters: 10}, "latitude"},
		{"latitude NaN", Query{Latitude: math.NaN(), RadiusMeters: 10}, "latitude"},
		{"longitude too small", Query{Longitude: -180.1, RadiusMeters: 10}, "longitude"},
		{"zero radius", Query{}, "radius"},
		{"negative radius", Query{RadiusMeters: -1}, "radius"},
		{"radius too large", Query{RadiusMeters: 50000.5}, "radius"},
		{"negative max results", Query{RadiusMeters: 10, MaxResults: -1}, "max results"},
		{"too many max results", Query{RadiusMeters: 10, MaxResults: 21}, "max results"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.q.validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("validate() = %v, want error about %s", err, tt.wantErr)
			}
		})
	}
}

func TestProvidersRejectInvalidQueries(t *testing.T) {
	fake := fakeplaces.Start(t)
	providers := map[string]Provider{
		"google_legacy": &GoogleLegacy{APIKey: fakeplaces.APIKey, Endpoint: fake.URL},
		"google":        &Google{APIKey: fakeplaces.APIKey, Endpoint: fake.URL},
		"file":          &File{Path: writeFile(t, `[]`)},
	}
	for name, p := range providers {
		mustProvision(t, p.(caddy.Provisioner))
		if _, err := p.Nearby(context.Background(), Query{Latitude: 34, Longitude: -118}); err == nil {
			t.Errorf("%s: a query without a radius succeeded", name)
		}
	}
	if n := fake.Requests(); n != 0 {
		t.Errorf("invalid queries reached the endpoint %d times", n)
	}
}

// TestModulesLoadFromJSON loads each provider as Caddy loads it from a JSON
// config, choosing the module by the inline key "provider".
func TestModulesLoadFromJSON(t *testing.T) {
	fake := fakeplaces.Start(t)
	path := writeFile(t, `{"results": [{"name": "Royce Hall", "geometry": {"location": {"lat": 34.07278, "lng": -118.44194}}}]}`)
	t.Setenv("HERD_TEST_PLACES_KEY", fakeplaces.APIKey)
	tests := []struct {
		name   string
		config string
	}{
		{"google_legacy", `{"provider": "google_legacy", "api_key": "{env.HERD_TEST_PLACES_KEY}", "endpoint": "` + fake.URL + `", "timeout": "2s"}`},
		{"google", `{"provider": "google", "api_key": "` + fakeplaces.APIKey + `", "endpoint": "` + fake.URL + `", "field_mask": "places.displayName"}`},
		{"file", `{"provider": "file", "path": ` + string(mustMarshal(t, path)) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var host struct {
				Places json.RawMessage `json:"places,omitempty" caddy:"namespace=herd.places inline_key=provider"`
			}
			host.Places = json.RawMessage(tt.config)
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			mod, err := ctx.LoadModule(&host, "Places")
			if err != nil {
				t.Fatalf("LoadModule: %v", err)
			}
			p, ok := mod.(Provider)
			if !ok {
				t.Fatalf("module %T is not a Provider", mod)
			}
			body, err := p.Nearby(context.Background(), uclaQuery)
			if err != nil {
				t.Fatalf("Nearby: %v", err)
			}
			if doc := decodeLegacy(t, body); doc.Status != "OK" || len(doc.Results) == 0 {
				t.Errorf("status %s with %d results, want OK with some", doc.Status, len(doc.Results))
			}
		})
	}
}
