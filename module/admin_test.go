package module

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestAdminWaitsUntilStarted: while the node has not started, its table may
// be half restored from disk, so every endpoint answers 503 rather than a
// part of it.
func TestAdminWaitsUntilStarted(t *testing.T) {
	n := newNode()
	if _, _, err := nodes.LoadOrNew(nodeKey, func() (caddy.Destructor, error) { return n, nil }); err != nil {
		t.Fatal(err)
	}
	defer nodes.Delete(nodeKey)
	get := func(path string) (int, error) {
		w := httptest.NewRecorder()
		err := AdminAPI{}.serve(w, httptest.NewRequest(http.MethodGet, path, nil))
		var apiErr caddy.APIError
		if errors.As(err, &apiErr) {
			return apiErr.HTTPStatus, err
		}
		return w.Code, err
	}
	for _, path := range []string{"/herd/clients", "/herd/stats", "/herd/storage", "/herd/peers"} {
		if code, err := get(path); code != http.StatusServiceUnavailable {
			t.Errorf("GET %s before the start: %d (%v), want 503", path, code, err)
		}
	}
	n.markReady()
	for _, path := range []string{"/herd/clients", "/herd/stats", "/herd/storage", "/herd/peers"} {
		if code, err := get(path); code != http.StatusOK || err != nil {
			t.Errorf("GET %s once started: %d (%v), want 200", path, code, err)
		}
	}
}
