package places

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// uclaQuery is a query around UCLA's main pin.
var uclaQuery = Query{Latitude: 34.068921, Longitude: -118.4451811, RadiusMeters: 1500, MaxResults: 5}

// provision provisions and validates m as Caddy would.
func provision(t *testing.T, m caddy.Provisioner) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := m.Provision(ctx); err != nil {
		return err
	}
	if v, ok := m.(caddy.Validator); ok {
		return v.Validate()
	}
	return nil
}

// mustProvision provisions and validates m, failing the test on error.
func mustProvision(t *testing.T, m caddy.Provisioner) {
	t.Helper()
	if err := provision(t, m); err != nil {
		t.Fatalf("provisioning %T: %v", m, err)
	}
}

// legacyDoc is a decoded Nearby Search (legacy) document.
type legacyDoc struct {
	HTMLAttributions []string          `json:"html_attributions"`
	Results          []json.RawMessage `json:"results"`
	Status           string            `json:"status"`
}

func decodeLegacy(t *testing.T, body []byte) legacyDoc {
	t.Helper()
	var doc legacyDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("answer is not valid JSON: %v\n%s", err, body)
	}
	if doc.HTMLAttributions == nil || doc.Results == nil {
		t.Errorf("answer lacks html_attributions or results arrays:\n%s", body)
	}
	return doc
}

// serve starts an HTTP server with handler for the test.
func serve(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

// writeFile writes content to a new file in a temporary directory and
// returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "places.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// caddyDuration converts d for a module's Timeout field.
func caddyDuration(d time.Duration) caddy.Duration {
	return caddy.Duration(d)
}
