package places

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

// secretKey is an API key that must never appear in an error.
const secretKey = "AIzaSyD-secret+key/with=odd&chars"

// unreachableURL returns the URL of a local port nothing listens on.
func unreachableURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// blockUntilCanceled answers no request: it waits until the client gives up.
// It reads the request body first, for the server to notice the client
// closing the connection only once the body is consumed.
func blockUntilCanceled(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// httpProviders builds each HTTP provider for an endpoint, key and timeout.
var httpProviders = map[string]func(t *testing.T, endpoint, key string, timeout time.Duration) Provider{
	"google_legacy": func(t *testing.T, endpoint, key string, timeout time.Duration) Provider {
		g := &GoogleLegacy{APIKey: key, Endpoint: endpoint, Timeout: caddyDuration(timeout)}
		mustProvision(t, g)
		return g
	},
	"google": func(t *testing.T, endpoint, key string, timeout time.Duration) Provider {
		g := &Google{APIKey: key, Endpoint: endpoint, Timeout: caddyDuration(timeout)}
		mustProvision(t, g)
		return g
	},
}

func TestHTTPProviderErrors(t *testing.T) {
	fake := fakeplaces.Start(t)
	failing := func(status int) func(t *testing.T) string {
		return func(t *testing.T) string {
			fake.SetFailure(status)
			t.Cleanup(func() { fake.SetFailure(0) })
			return fake.URL
		}
	}
	answering := func(contentType, body string) func(t *testing.T) string {
		return func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", contentType)
				_, _ = io.WriteString(w, body)
			}).URL
		}
	}
	tests := []struct {
		name     string
		endpoint func(t *testing.T) string
		key      string
		timeout  time.Duration
		wantErr  string
	}{
		{"HTTP 500", failing(http.StatusInternalServerError), secretKey, 0, "HTTP 500 Internal Server Error: INTERNAL: Internal error encountered."},
		{"HTTP 403", failing(http.StatusForbidden), secretKey, 0, "HTTP 403 Forbidden: PERMISSION_DENIED"},
		{"HTTP 503", failing(http.StatusServiceUnavailable), secretKey, 0, "HTTP 503"},
		{"HTML body", answering("text/html", "<!DOCTYPE html><html>Bad gateway</html>"), secretKey, 0, `not a JSON object (Content-Type "text/html", body begins "<!DOCTYPE html>`},
		{"JSON array", answering("application/json", `[{"status": "OK"}]`), secretKey, 0, "not a JSON object"},
		{"JSON string", answering("application/json", `"OK"`), secretKey, 0, "not a JSON object"},
		{"truncated JSON", answering("application/json", `{"results": [`), secretKey, 0, "not a JSON object"},
		{"empty body", answering("application/json", ""), secretKey, 0, "not a JSON object"},
		{"unreachable", unreachableURL, secretKey, 0, "connect"},
		{"timeout", func(t *testing.T) string { return serve(t, blockUntilCanceled).URL }, secretKey, 50 * time.Millisecond, "Timeout"},
	}
	for name, newProvider := range httpProviders {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				p := newProvider(t, tt.endpoint(t), tt.key, tt.timeout)
				body, err := p.Nearby(context.Background(), uclaQuery)
				if err == nil {
					t.Fatalf("Nearby succeeded with %q, want an error", body)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				checkNoSecret(t, err, secretKey)
			})
		}
	}
}

// checkNoSecret fails if err, or a URL in its chain, reveals key in any
// form.
func checkNoSecret(t *testing.T, err error, key string) {
	t.Helper()
	for _, form := range []string{key, url.QueryEscape(key), url.PathEscape(key)} {
		if strings.Contains(err.Error(), form) {
			t.Errorf("error reveals the API key: %v", err)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) && strings.Contains(uerr.URL, form) {
			t.Errorf("url.Error reveals the API key: %s", uerr.URL)
		}
	}
}

func TestUnreachableEndpointErrorHidesKey(t *testing.T) {
	g := httpProviders["google_legacy"](t, unreachableURL(t), secretKey, 0)
	_, err := g.Nearby(context.Background(), uclaQuery)
	if err == nil {
		t.Fatal("Nearby succeeded against an unreachable endpoint")
	}
	checkNoSecret(t, err, secretKey)
	// The request URL is still reported, with the key replaced.
	var uerr *url.Error
	if !errors.As(err, &uerr) {
		t.Fatalf("error %v does not wrap a *url.Error", err)
	}
	if !strings.Contains(err.Error(), "/maps/api/place/nearbysearch/json?location=34.068921,-118.4451811&radius=1500&key=REDACTED") {
		t.Errorf("error does not show the redacted request URL: %v", err)
	}
}

func TestTimeoutErrorIsATimeout(t *testing.T) {
	for name, newProvider := range httpProviders {
		t.Run(name, func(t *testing.T) {
			p := newProvider(t, serve(t, blockUntilCanceled).URL, secretKey, 50*time.Millisecond)
			_, err := p.Nearby(context.Background(), uclaQuery)
			var nerr net.Error
			if !errors.As(err, &nerr) || !nerr.Timeout() {
				t.Errorf("error %v is not a timeout", err)
			}
			checkNoSecret(t, err, secretKey)
		})
	}
}

func TestCanceledContext(t *testing.T) {
	fake := fakeplaces.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, newProvider := range httpProviders {
		p := newProvider(t, fake.URL, fakeplaces.APIKey, 0)
		if _, err := p.Nearby(ctx, uclaQuery); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: error %v, want context.Canceled", name, err)
		}
	}
}
