package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/peering"
)

// runAsNode makes n the process's running node for the test.
func runAsNode(t *testing.T, n *node) {
	t.Helper()
	if _, _, err := nodes.LoadOrNew(nodeKey, func() (caddy.Destructor, error) { return n, nil }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nodes.Delete(nodeKey) })
}

// serveStatus runs the handler on one request and returns the response and
// the status of the error it returned, if any.
func serveStatus(t *testing.T, h *StatusHandler, method, target string) (*httptest.ResponseRecorder, int) {
	t.Helper()
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, httptest.NewRequest(method, target, nil), nil)
	if err == nil {
		return w, w.Code
	}
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) {
		t.Fatalf("%s %s: an error that is not a handler error: %v", method, target, err)
	}
	return w, he.StatusCode
}

func newStatusHandler(t *testing.T, maxPoints int) *StatusHandler {
	t.Helper()
	h := &StatusHandler{MaxPoints: maxPoints}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestStatusRoutes(t *testing.T) {
	n := newTestNode(t, nil)
	runAsNode(t, n)
	h := newStatusHandler(t, 0)
	for _, tc := range []struct {
		method, target string
		code           int
		contentType    string
		contains       string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script src="status.js"`},
		{"GET", "/herd/status/", 200, "text/html; charset=utf-8", `<canvas id="map"`},
		{"GET", "/index.html", 200, "text/html; charset=utf-8", "<title>"},
		{"GET", "/herd/status/status.js", 200, "text/javascript; charset=utf-8", "status.json"},
		{"GET", "/status.css", 200, "text/css; charset=utf-8", "canvas#map"},
		{"GET", "/coastline.json", 200, "application/json", "[["},
		{"GET", "/herd/status/status.json", 200, "application/json", `"server":"Test"`},
		{"HEAD", "/status.json", 200, "application/json", ""},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/nothing", 404, "", ""},
		{"GET", "/herd/status/../secret", 404, "", ""},
		{"POST", "/", 405, "", ""},
		{"POST", "/status.json", 405, "", ""},
		{"DELETE", "/status.json", 405, "", ""},
		{"PUT", "/status.js", 405, "", ""},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			w, code := serveStatus(t, h, tc.method, tc.target)
			if code != tc.code {
				t.Fatalf("status %d, want %d", code, tc.code)
			}
			if code == http.StatusMethodNotAllowed && w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow: %q", w.Header().Get("Allow"))
			}
			if tc.contentType != "" && w.Header().Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", w.Header().Get("Content-Type"), tc.contentType)
			}
			if tc.method == "HEAD" && w.Body.Len() != 0 {
				t.Errorf("HEAD answered a body of %d bytes", w.Body.Len())
			}
			if !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("body does not contain %q:\n%.300s", tc.contains, w.Body.String())
			}
		})
	}
}

// TestStatusPageSelfContained: the page loads nothing from elsewhere, so it
// works on a machine with no internet, and its policy says so to the browser.
func TestStatusPageSelfContained(t *testing.T) {
	n := newTestNode(t, nil)
	runAsNode(t, n)
	h := newStatusHandler(t, 0)
	for _, name := range []string{"/", "/status.js", "/status.css"} {
		w, _ := serveStatus(t, h, "GET", name)
		if body := w.Body.String(); strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "//cdn") {
			t.Errorf("%s refers to another site", name)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", name, csp)
		}
	}
	// The browser asks again with the ETag and gets a 304.
	w, _ := serveStatus(t, h, "GET", "/status.js")
	req := httptest.NewRequest("GET", "/status.js", nil)
	req.Header.Set("If-None-Match", w.Header().Get("ETag"))
	again := httptest.NewRecorder()
	if err := h.ServeHTTP(again, req, nil); err != nil || again.Code != http.StatusNotModified {
		t.Errorf("GET with the ETag: %d, %v; want 304", again.Code, err)
	}
}

// statusJSON decodes the handler's JSON.
func statusJSON(t *testing.T, h *StatusHandler) (statusView, map[string]any) {
	t.Helper()
	w, code := serveStatus(t, h, "GET", "/status.json")
	if code != http.StatusOK {
		t.Fatalf("GET status.json: %d: %s", code, w.Body.String())
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	var v statusView
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	return v, raw
}

func fillStore(n *node, clients int) {
	for i := range clients {
		lat := float64(i%170) - 85 + 0.5
		lon := float64(i%350) - 175 + 0.25
		line := fmt.Sprintf("AT Test +0.1 client%d %+.6f%+.6f %d.000000001", i, lat, lon, 1700000000+i)
		n.store.PutSeq(herdstore.MakeRecord([]byte(line), herdstore.Origin{Arrived: time.Now().UnixNano()}))
	}
}

func TestStatusJSON(t *testing.T) {
	n := newNode()
	t.Cleanup(func() { n.Destruct() })
	// A peer nobody listens on: its link is down, with an error.
	n.configure("Farmar", []Peer{{Name: "Gasol", Address: "127.0.0.1:1"}}, nil, nil, zap.NewNop())
	if err := n.startStorage(storagePlan{dir: t.TempDir(), fsync: herdwal.FsyncEverySec}, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	n.markReady()
	runAsNode(t, n)
	fillStore(n, 5000)
	h := newStatusHandler(t, 100)

	v, raw := statusJSON(t, h)
	for _, key := range []string{"server", "now", "started", "uptime_seconds", "clients", "rates", "totals", "peers", "storage", "map"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("the JSON has no %q", key)
		}
	}
	if v.Server != "Farmar" || v.Clients != 5000 {
		t.Errorf("server %q with %d clients, want Farmar with 5000", v.Server, v.Clients)
	}
	if len(v.Map.Points) != 100 || !v.Map.Sampled || v.Map.MaxPoints != 100 {
		t.Errorf("map: %d points, sampled %v, max %d; want 100 of a sample", len(v.Map.Points), v.Map.Sampled, v.Map.MaxPoints)
	}
	for _, p := range v.Map.Points {
		if p.Client == "" || p.Lat < -90 || p.Lat > 90 || p.Lon < -180 || p.Lon > 180 || (p.Lat == 0 && p.Lon == 0) {
			t.Fatalf("point %+v", p)
		}
	}
	// The records that changed the table last, newest first.
	if len(v.Map.Recent) != recentUpdates {
		t.Fatalf("%d recent updates, want %d", len(v.Map.Recent), recentUpdates)
	}
	for i, r := range v.Map.Recent {
		if want := fmt.Sprintf("client%d", 4999-i); r.Client != want || r.Server != "Test" {
			t.Errorf("recent[%d] = %s from %s, want %s from Test", i, r.Client, r.Server, want)
		}
	}
	if v.Storage == nil || !v.Storage.On || v.Storage.Dir == "" {
		t.Errorf("storage %+v, want it on", v.Storage)
	}
	if len(v.Peers) != 1 || v.Peers[0].Name != "Gasol" || v.Peers[0].Address != "127.0.0.1:1" {
		t.Fatalf("peers %+v", v.Peers)
	}
	// The link keeps failing to dial: down, with the reason.
	waitUntil(t, "the down link's error", func() bool {
		v, _ = statusJSON(t, h)
		return !v.Peers[0].Up && v.Peers[0].LastError != ""
	})
}

// TestStatusLastErrorOnlyWhileDown: a link that came back keeps its last
// error in Status, which the page would show as a current fault.
func TestStatusLastErrorOnlyWhileDown(t *testing.T) {
	n := newTestNode(t, nil)
	runAsNode(t, n)
	// A port nobody listens on yet: the link fails to dial it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	n.configure("Test", []Peer{{Name: "Later", Address: addr}}, nil, nil, zap.NewNop())
	h := newStatusHandler(t, 0)
	waitUntil(t, "the link to fail", func() bool {
		v, _ := statusJSON(t, h)
		return len(v.Peers) == 1 && !v.Peers[0].Up && v.Peers[0].LastError != ""
	})
	// The peer starts: it holds the connection and reads what it gets.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	var v statusView
	waitUntil(t, "the link to come up", func() bool {
		v, _ = statusJSON(t, h)
		return len(v.Peers) == 1 && v.Peers[0].Up
	})
	if (*n.links.Load())[0].Status().LastError == "" {
		t.Fatal("the link forgot its error: this test shows nothing")
	}
	if v.Peers[0].LastError != "" {
		t.Errorf("an up peer shows the error %q", v.Peers[0].LastError)
	}
}

func TestStatusCatchingUp(t *testing.T) {
	connected := time.Unix(1000, 0)
	for _, tc := range []struct {
		name string
		st   peering.Status
		want bool
	}{
		{"down", peering.Status{Up: false, Since: connected}, false},
		{"up, no catch-up yet", peering.Status{Up: true, Since: connected}, true},
		{"up, the last catch-up was on an earlier connection", peering.Status{Up: true, Since: connected, LastCatchUp: &peering.CatchUp{At: connected.Add(-time.Minute)}}, true},
		{"up, caught up on this connection", peering.Status{Up: true, Since: connected, LastCatchUp: &peering.CatchUp{At: connected.Add(time.Millisecond)}}, false},
	} {
		if got := catchingUp(tc.st); got != tc.want {
			t.Errorf("%s: catching up %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStatusStorageOff(t *testing.T) {
	n := newTestNode(t, nil)
	runAsNode(t, n)
	_, raw := statusJSON(t, newStatusHandler(t, 0))
	if raw["storage"] != nil {
		t.Errorf("storage %v, want null while the table is in memory only", raw["storage"])
	}
	m := raw["map"].(map[string]any)
	if pts, ok := m["points"].([]any); !ok || len(pts) != 0 {
		t.Errorf("points %v, want an empty list", m["points"])
	}
	if m["sampled"] != false {
		t.Errorf("sampled %v with no clients", m["sampled"])
	}
}

func TestStatusNotStarted(t *testing.T) {
	n := newNode()
	t.Cleanup(func() { n.Destruct() })
	runAsNode(t, n)
	h := newStatusHandler(t, 0)
	if _, code := serveStatus(t, h, "GET", "/status.json"); code != http.StatusServiceUnavailable {
		t.Errorf("status.json before the start: %d, want 503", code)
	}
	// The page itself loads, and says it cannot update.
	if _, code := serveStatus(t, h, "GET", "/"); code != http.StatusOK {
		t.Errorf("the page before the start: %d, want 200", code)
	}
}

func TestStatusRates(t *testing.T) {
	var r rateRing
	n := newNode()
	t0 := time.Unix(1000, 0)
	if got := r.observe(n, t0, statusTotals{IAMAT: 10}); got != nil {
		t.Errorf("rates from a single sample: %+v", got)
	}
	got := r.observe(n, t0.Add(time.Second), statusTotals{IAMAT: 110, ATReceived: 30, RecordsSent: 50})
	if got == nil || got.IAMAT != 100 || got.FloodedIn != 30 || got.FloodedOut != 50 || got.Over != 1 {
		t.Errorf("rates over 1 s: %+v", got)
	}
	// Many requests close together: the rate stays over about a second.
	for i := range 20 {
		got = r.observe(n, t0.Add(time.Second+time.Duration(i+1)*10*time.Millisecond), statusTotals{IAMAT: 110})
	}
	if got == nil || got.Over != 1.2 || got.IAMAT != 83.33 {
		t.Errorf("rates after 20 requests 10 ms apart: %+v, want 100 IAMAT over 1.2 s", got)
	}
	// A second later, the burst is behind the window.
	got = r.observe(n, t0.Add(2300*time.Millisecond), statusTotals{IAMAT: 110, RecordsSent: 50})
	if got == nil || got.Over < 1 || got.Over >= 2 || got.IAMAT != 0 {
		t.Errorf("rates a second after the burst: %+v", got)
	}
	// A link removed by a reload: its count goes, not a negative rate.
	got = r.observe(n, t0.Add(3*time.Second), statusTotals{IAMAT: 110, RecordsSent: 0})
	if got == nil || got.FloodedOut != 0 {
		t.Errorf("rates after a count went down: %+v", got)
	}
	// Another node starts afresh.
	if got := r.observe(newNode(), t0.Add(4*time.Second), statusTotals{}); got != nil {
		t.Errorf("rates of a new node from the old one's samples: %+v", got)
	}
}

func TestStatusCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		input string
		want  int
		err   bool
	}{
		{"herd_status", 0, false},
		{"herd_status {\n max_points 500\n}", 500, false},
		{"herd_status {\n max_points many\n}", 0, true},
		{"herd_status {\n max_points\n}", 0, true},
		{"herd_status {\n colour blue\n}", 0, true},
		{"herd_status extra", 0, true},
	} {
		var h StatusHandler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if (err != nil) != tc.err || h.MaxPoints != tc.want {
			t.Errorf("%q: max_points %d, error %v; want %d, error %v", tc.input, h.MaxPoints, err, tc.want, tc.err)
		}
	}
	for _, bad := range []int{-1, maxMaxPoints + 1} {
		if err := (&StatusHandler{MaxPoints: bad}).Validate(); err == nil {
			t.Errorf("max_points %d validated", bad)
		}
	}
}

// BenchmarkStatusJSON measures the JSON of a server with a million clients:
// what the page asks for every second.
func BenchmarkStatusJSON(b *testing.B) {
	n := newNode()
	defer n.Destruct()
	n.configure("Bench", nil, nil, nil, zap.NewNop())
	n.markReady()
	if _, _, err := nodes.LoadOrNew(nodeKey, func() (caddy.Destructor, error) { return n, nil }); err != nil {
		b.Fatal(err)
	}
	defer nodes.Delete(nodeKey)
	fillStore(n, 1_000_000)
	h := &StatusHandler{MaxPoints: defaultMaxPoints}
	req := httptest.NewRequest("GET", "/status.json", nil)
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, req, nil); err != nil || w.Code != 200 {
			b.Fatal(err, w.Code)
		}
		b.SetBytes(int64(w.Body.Len()))
	}
}
