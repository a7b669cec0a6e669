package places

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

// TestGoogleProvidersJSON pins the JSON field names, and their order, of both
// Google providers: the shared googleAPI they embed adds none.
func TestGoogleProvidersJSON(t *testing.T) {
	tests := []struct {
		name      string
		m         any
		provision bool // provisioning fills the unexported state, which must stay out of the JSON
		want      string
	}{
		{"google_legacy", &GoogleLegacy{APIKey: "k", Endpoint: "http://e", Timeout: caddy.Duration(time.Second)}, true,
			`{"api_key":"k","endpoint":"http://e","timeout":1000000000}`},
		{"google", &Google{APIKey: "k", Endpoint: "http://e", FieldMask: "places.id", Timeout: caddy.Duration(time.Second)}, true,
			`{"api_key":"k","endpoint":"http://e","field_mask":"places.id","timeout":1000000000}`},
		{"google_legacy empty", &GoogleLegacy{}, false, `{}`},
		{"google empty", &Google{}, false, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.provision {
				mustProvision(t, tt.m.(caddy.Provisioner))
			}
			if got := string(mustMarshal(t, tt.m)); got != tt.want {
				t.Errorf("JSON = %s, want %s", got, tt.want)
			}
		})
	}

	var g Google
	if err := json.Unmarshal([]byte(`{"api_key": "k", "endpoint": "http://e", "field_mask": "places.id", "timeout": "2s"}`), &g); err != nil {
		t.Fatal(err)
	}
	if want := (Google{APIKey: "k", Endpoint: "http://e", FieldMask: "places.id", Timeout: caddy.Duration(2 * time.Second)}); !reflect.DeepEqual(g, want) {
		t.Errorf("decoded %+v, want %+v", g, want)
	}
}

// TestGoogleProvidersParseCommonSubdirectivesAlike feeds both Google providers
// the same blocks of their common subdirectives.
func TestGoogleProvidersParseCommonSubdirectivesAlike(t *testing.T) {
	type common struct {
		apiKey, endpoint string
		timeout          caddy.Duration
	}
	parse := func(t *testing.T, name, block string) (common, error) {
		t.Helper()
		d := caddyfile.NewTestDispenser(name + " " + block)
		switch name {
		case "google":
			var g Google
			err := g.UnmarshalCaddyfile(d)
			return common{g.APIKey, g.Endpoint, g.Timeout}, err
		case "google_legacy":
			var g GoogleLegacy
			err := g.UnmarshalCaddyfile(d)
			return common{g.APIKey, g.Endpoint, g.Timeout}, err
		}
		t.Fatalf("no provider %q", name)
		return common{}, nil
	}
	tests := []struct {
		block   string
		want    common
		wantErr string // after the provider name and ": ", if it starts with ":"
	}{
		{"{\n\ttimeout 1m30s\n\tendpoint http://127.0.0.1:1\n\tapi_key k\n}", common{"k", "http://127.0.0.1:1", caddy.Duration(90 * time.Second)}, ""},
		{"{\n\tapi_key first\n\tapi_key second\n}", common{apiKey: "second"}, ""},
		{"{\n\tapi_key k\n\tapi_key\n}", common{apiKey: "k"}, "api_key: expected one argument"},
		{"{\n\tapi_key k\n\ttimeout 2s\n\ttimeout 0s\n}", common{apiKey: "k", timeout: caddy.Duration(2 * time.Second)}, `timeout: must be positive, got "0s"`},
		{"{\n\tapi_key k\n\tendpoint a b\n}", common{apiKey: "k"}, `endpoint: expected one argument, got extra "b"`},
		{"{\n}", common{}, ": api_key is required"},
		{"", common{}, ": api_key is required"},
		{"k", common{}, `: unexpected argument "k"; options go in a block`},
		{"{\n\tapi_key k\n\tkey k\n}", common{apiKey: "k"}, `: unrecognized subdirective "key"`},
	}
	for _, name := range []string{"google", "google_legacy"} {
		for _, tt := range tests {
			got, err := parse(t, name, tt.block)
			wantErr := tt.wantErr
			if strings.HasPrefix(wantErr, ":") {
				wantErr = name + wantErr
			}
			switch {
			case wantErr == "" && err != nil:
				t.Errorf("%s %q: error %v", name, tt.block, err)
			case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
				t.Errorf("%s %q: error %v, want one containing %q", name, tt.block, err, wantErr)
			}
			if got != tt.want {
				t.Errorf("%s %q: got %+v, want %+v", name, tt.block, got, tt.want)
			}
		}
	}
}

func TestGoogleInvalidKeyIsAnError(t *testing.T) {
	fake := fakeplaces.Start(t)
	for name, newProvider := range httpProviders {
		t.Run(name, func(t *testing.T) {
			p := newProvider(t, fake.URL, secretKey, 0)
			body, err := p.Nearby(context.Background(), uclaQuery)
			if name == "google_legacy" {
				// Nearby Search (legacy) answers HTTP 200 with REQUEST_DENIED,
				// passed through.
				if err != nil || !strings.Contains(string(body), `"REQUEST_DENIED"`) {
					t.Errorf("got %q, %v; want Google's REQUEST_DENIED answer", body, err)
				}
				return
			}
			const want = "querying Google Places API (New): HTTP 400 Bad Request: INVALID_ARGUMENT: API key not valid. Please pass a valid API key."
			if err == nil || err.Error() != want {
				t.Errorf("got %q, %v; want error %q", body, err, want)
			}
			if err != nil {
				checkNoSecret(t, err, secretKey)
			}
		})
	}
}

func TestGoogleProvidersCleanup(t *testing.T) {
	for _, m := range []provisionValidator{&Google{APIKey: "k"}, &GoogleLegacy{APIKey: "k"}} {
		cu, ok := m.(caddy.CleanerUpper)
		if !ok {
			t.Fatalf("%T is not a caddy.CleanerUpper", m)
		}
		if err := cu.Cleanup(); err != nil { // not provisioned: nothing to close
			t.Errorf("%T.Cleanup() before Provision = %v", m, err)
		}
		mustProvision(t, m)
		if err := cu.Cleanup(); err != nil {
			t.Errorf("%T.Cleanup() = %v", m, err)
		}
	}
}
