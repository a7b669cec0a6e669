package module

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(StatusHandler{})
}

// statusPage holds the status page: everything it needs is in the binary, so
// it works on a machine with no internet.
//
//go:embed statuspage
var statusPage embed.FS

// Map point bounds.
const (
	// defaultMaxPoints is how many clients the status page's map shows
	// unless max_points says otherwise.
	defaultMaxPoints = 2000
	// maxMaxPoints is the most max_points may ask for: beyond it the JSON
	// stops being cheap to serve every second.
	maxMaxPoints = 20000
)

// StatusHandler serves a live status page of the herd server running in the
// same Caddy, and the JSON it is drawn from: the server's clients and rates,
// its peer links, its storage and a map of a sample of its clients. It is
// read-only. Mount it in any site, behind the authentication used there:
//
//	GET <mount>/             the page
//	GET <mount>/status.json  what the page shows
//
// Other methods are answered 405, unknown paths 404, and 503 while no herd app
// runs or it is still restoring its table.
type StatusHandler struct {
	// MaxPoints is the most clients the map shows: beyond it, a sample.
	// Default: 2000; at most 20000.
	MaxPoints int `json:"max_points,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (StatusHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.herd_status",
		New: func() caddy.Module { return new(StatusHandler) },
	}
}

// Provision sets the defaults.
func (h *StatusHandler) Provision(caddy.Context) error {
	if h.MaxPoints == 0 {
		h.MaxPoints = defaultMaxPoints
	}
	return nil
}

// Validate checks the bounds.
func (h *StatusHandler) Validate() error {
	if h.MaxPoints < 0 || h.MaxPoints > maxMaxPoints {
		return fmt.Errorf("validating herd_status: max_points %d is out of [0, %d]", h.MaxPoints, maxMaxPoints)
	}
	return nil
}

// statusAssets are the files of the page, by the last element of their path,
// with their content types.
var statusAssets = map[string]string{
	"":               "text/html; charset=utf-8",
	"index.html":     "text/html; charset=utf-8",
	"status.js":      "text/javascript; charset=utf-8",
	"status.css":     "text/css; charset=utf-8",
	"coastline.json": "application/json",
}

// statusPolicy lets the page load only what it serves itself.
const statusPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// ServeHTTP serves the page, its files and its JSON by the last element of
// the request's path, so that the page works wherever it is mounted (its
// URLs are relative), with the mount's prefix stripped or not.
func (h *StatusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("the herd status page is read-only: use GET"))
	}
	name := path.Base(r.URL.Path)
	if r.URL.Path == "" || r.URL.Path[len(r.URL.Path)-1] == '/' {
		name = ""
	}
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	if name == "status.json" {
		return h.serveJSON(w, r)
	}
	contentType, ok := statusAssets[name]
	if !ok {
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("no such file of the herd status page: %s", r.URL.Path))
	}
	if name == "" {
		name = "index.html"
	}
	data, err := statusPage.ReadFile("statuspage/" + name)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("reading the status page's %s: %w", name, err))
	}
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Security-Policy", statusPolicy)
	// The files change only with the binary: a browser asks again, and
	// gets a 304 while the binary is the same.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", statusETags[name])
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	return nil
}

// statusETags name the page's files by a hash of their content.
var statusETags = func() map[string]string {
	tags := make(map[string]string)
	for name := range statusAssets {
		if data, err := statusPage.ReadFile("statuspage/" + name); err == nil {
			sum := sha256.Sum256(data)
			tags[name] = fmt.Sprintf(`"%x"`, sum[:12])
		}
	}
	return tags
}()

func (h *StatusHandler) serveJSON(w http.ResponseWriter, r *http.Request) error {
	n := runningNode()
	if n == nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("no herd app is running"))
	}
	// Until the first config has started, the table may be half restored
	// from disk: the page would show a part of it as the whole.
	if !n.started() {
		return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("the herd app is starting: its table is being restored"))
	}
	body, err := json.Marshal(statusViewOf(n, h.MaxPoints))
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("encoding the herd status: %w", err))
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = w.Write(body)
	return err
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*StatusHandler)(nil)
	_ caddy.Validator             = (*StatusHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*StatusHandler)(nil)
)
