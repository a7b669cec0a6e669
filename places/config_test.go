package places

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

// provisionValidator is a module Caddy provisions and validates.
type provisionValidator interface {
	caddy.Provisioner
	caddy.Validator
}

func TestAPIKeyPlaceholder(t *testing.T) {
	fake := fakeplaces.Start(t)
	t.Setenv("HERD_TEST_PLACES_KEY", fakeplaces.APIKey)
	const placeholder = "{env.HERD_TEST_PLACES_KEY}"
	tests := []struct {
		name    string
		p       Provider
		sentKey func(r fakeplaces.Request) string
	}{
		{"google_legacy", &GoogleLegacy{APIKey: placeholder, Endpoint: fake.URL}, func(r fakeplaces.Request) string { return r.Query.Get("key") }},
		{"google", &Google{APIKey: placeholder, Endpoint: fake.URL}, func(r fakeplaces.Request) string { return r.Header.Get("X-Goog-Api-Key") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustProvision(t, tt.p.(caddy.Provisioner))
			body, err := tt.p.Nearby(context.Background(), uclaQuery)
			if err != nil {
				t.Fatalf("Nearby: %v", err)
			}
			if got := tt.sentKey(fake.LastRequest()); got != fakeplaces.APIKey {
				t.Errorf("sent key %q, want the resolved placeholder", got)
			}
			if doc := decodeLegacy(t, body); doc.Status != "OK" {
				t.Errorf("status %q, want OK", doc.Status)
			}
		})
	}
}

func TestAPIKeyRequired(t *testing.T) {
	t.Setenv("HERD_TEST_EMPTY_KEY", "")
	for _, key := range []string{"", "   ", "{env.HERD_TEST_EMPTY_KEY}", "{env.HERD_TEST_NO_SUCH_VARIABLE_SET}"} {
		for name, m := range map[string]provisionValidator{
			"google_legacy": &GoogleLegacy{APIKey: key},
			"google":        &Google{APIKey: key},
		} {
			if err := provision(t, m); !errors.Is(err, errAPIKeyRequired) {
				t.Errorf("%s with api_key %q: error %v, want %q", name, key, err, errAPIKeyRequired)
			}
			if err := m.Validate(); !errors.Is(err, errAPIKeyRequired) {
				t.Errorf("%s with api_key %q: Validate() = %v, want %q", name, key, err, errAPIKeyRequired)
			}
		}
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		endpoint string
		want     string
		wantErr  string
	}{
		{"http://127.0.0.1:18080", "http://127.0.0.1:18080", ""},
		{"https://proxy.example.com/google/", "https://proxy.example.com/google", ""},
		{"ftp://example.com", "", "scheme must be http or https"},
		{"localhost:8080", "", "scheme must be http or https"},
		{"http://", "", "host is missing"},
		{"http://user:hunter2@example.com", "", "user information"},
		{"http://example.com/?x=1", "", "query or fragment"},
		{"http://example.com/#top", "", "query or fragment"},
		{"http://exa mple.com", "", "parsing endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			g := &GoogleLegacy{APIKey: "k", Endpoint: tt.endpoint}
			err := provision(t, g)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr == "" && g.baseURL != tt.want:
				t.Errorf("base URL %q, want %q", g.baseURL, tt.want)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one about %s", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Errorf("error reveals the endpoint password: %v", err)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	for _, m := range []provisionValidator{
		&GoogleLegacy{APIKey: "k", Timeout: caddyDuration(-time.Second)},
		&Google{APIKey: "k", Timeout: caddyDuration(-time.Second)},
	} {
		if err := provision(t, m); err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("%T with a negative timeout: error %v", m, err)
		}
	}
	g := &Google{APIKey: "k", Timeout: caddyDuration(1500 * time.Millisecond)}
	mustProvision(t, g)
	if g.client.Timeout != 1500*time.Millisecond {
		t.Errorf("client timeout %v, want 1.5s", g.client.Timeout)
	}
}
