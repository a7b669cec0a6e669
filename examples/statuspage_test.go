package examples

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestStatusPage loads a server's status page in headless Chromium and
// watches it follow the herd without a reload: the peers it shows are the
// server's, a killed peer turns down and comes back up, and clients that
// report their location appear on the map. It keeps screenshots at a laptop's
// and a phone's width (go test -artifacts keeps them).
func TestStatusPage(t *testing.T) {
	driver := startChromeDriver(t)
	h := startHerd(t)
	m, g := h.servers[meeks], h.servers[gasol]
	page := fmt.Sprintf("http://127.0.0.1:%d/", m.httpPort)

	b := driver.newSession(t, 1280, 800)
	b.navigate(page)
	// A mark that a reload would lose: every wait below also checks that
	// the page updated itself.
	b.run(`window.notReloaded = true; return true`)

	// peersShown returns the page's peer cards as name to state.
	peersShown := func() map[string]string {
		var cards [][2]string
		b.runInto(&cards, `if (!window.notReloaded) throw new Error("the page was reloaded");
			return [...document.querySelectorAll("[data-peer]")].map(e => [e.dataset.peer, e.dataset.state])`)
		m := make(map[string]string)
		for _, c := range cards {
			m[c[0]] = c[1]
		}
		return m
	}
	var want []string
	for _, p := range h.peers(m) {
		want = append(want, p.Name)
	}
	slices.Sort(want)
	if !slices.Equal(want, []string{"Farmar", "Gasol", "Hill"}) {
		t.Fatalf("Meeks's peers per the admin API: %v", want)
	}
	allUp := func() bool {
		shown := peersShown()
		for _, name := range want {
			if shown[name] != "up" {
				return false
			}
		}
		return len(shown) == len(want)
	}
	h.waitUntil("the page shows Meeks's three peers up", allUp)
	if name := b.text("#server"); name != "Meeks" {
		t.Errorf("the page names the server %q", name)
	}

	// Clients report at Hill; the flood brings them to Meeks and its map.
	clients := map[string][2]float64{
		"kiwi.cs.ucla.edu":   {34.068930, -118.445127},
		"tokyo.example.jp":   {35.681236, 139.767125},
		"london.example.uk":  {51.507351, -0.127758},
		"sydney.example.au":  {-33.868820, 151.209296},
		"saopaulo.example":   {-23.550520, -46.633308},
		"nairobi.example.ke": {-1.292066, 36.821945},
	}
	c := dial(t, h.servers[hill])
	for id, at := range clients {
		c.iamat(id, fmt.Sprintf("%+f%+f", at[0], at[1]), now())
	}
	c.close()
	h.waitUntil("the map shows the clients sent to Hill", func() bool {
		var shown map[string][2]float64
		b.runInto(&shown, `if (!window.notReloaded) throw new Error("the page was reloaded");
			return Object.fromEntries(window.herdStatus.points)`)
		for id, at := range clients {
			got, ok := shown[id]
			if !ok || math.Abs(got[0]-at[0]) > 1e-4 || math.Abs(got[1]-at[1]) > 1e-4 {
				return false
			}
		}
		return true
	})
	var drawn int
	b.runInto(&drawn, `return Number(document.getElementById("map").dataset.points)`)
	var recent []string
	b.runInto(&recent, `return [...document.querySelectorAll("#recent [data-client]")].map(e => e.dataset.client)`)
	if drawn < len(clients) || len(recent) < len(clients) {
		t.Errorf("the map says it draws %d points and lists %d recent updates, want at least %d", drawn, len(recent), len(clients))
	}

	// Gasol dies: the page shows its link down within a few seconds.
	start := time.Now()
	h.kill(g)
	for peersShown()["Gasol"] != "down" {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("5 s after Gasol was killed the page shows its peers as %v", peersShown())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the page showed Gasol down %v after the kill", time.Since(start).Round(time.Millisecond))
	if msg := b.text(`[data-peer="Gasol"] .error`); msg == "" {
		t.Error("the down peer shows no error")
	}
	b.noOverflow()
	b.screenshot("meeks-1280x800-gasol-down.png")

	// Gasol restarts: the link redials, and the page shows it up again.
	h.start(g)
	took := h.waitUntil("the page shows Gasol up again", allUp)
	t.Logf("the page showed Gasol up %v after it listened again", took.Round(time.Millisecond))
	if msg := b.text(`[data-peer="Gasol"] .error`); msg != "" {
		t.Errorf("the peer that came back still shows the error %q", msg)
	}
	b.screenshot("meeks-1280x800.png")

	// At a phone's width the page fits, without scrolling sideways.
	b.emulate(390, 844)
	b.noOverflow()
	b.screenshot("meeks-390x844.png")
	b.run(`window.scrollTo(0, document.body.scrollHeight); return true`)
	b.screenshot("meeks-390x844-bottom.png")
}

// chromeDriver is a chromedriver process of the test's.
type chromeDriver struct {
	url string
}

// startChromeDriver starts chromedriver on a free port, stopped when the
// test ends. Without it the test skips, but not in CI, which installs it.
func startChromeDriver(t *testing.T) *chromeDriver {
	t.Helper()
	path, err := exec.LookPath("chromedriver")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("chromedriver is not installed (Debian: apt-get install chromium chromium-driver)")
		}
		t.Fatal("CI is set and chromedriver is not installed: .ci/run installs it")
	}
	port := freePorts(t, 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, "--port="+strconv.Itoa(port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("chromedriver output:\n%s", out.String())
		}
	})
	d := &chromeDriver{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(waitTimeout)
	for {
		var status struct {
			Ready bool `json:"ready"`
		}
		if err := d.call("GET", "/status", nil, &status); err == nil && status.Ready {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver not ready after %v:\n%s", waitTimeout, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends a WebDriver command and decodes its value into v.
func (d *chromeDriver) call(method, path string, body, v any) error {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, d.url+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := adminClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var reply struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, reply.Value)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(reply.Value, v)
}

// browser is one WebDriver session: a headless Chromium window.
type browser struct {
	t  *testing.T
	d  *chromeDriver
	id string
}

func (d *chromeDriver) newSession(t *testing.T, width, height int) *browser {
	t.Helper()
	options := map[string]any{"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		fmt.Sprintf("--window-size=%d,%d", width, height)}}
	if path, err := exec.LookPath("chromium"); err == nil {
		options["binary"] = path
	}
	var session struct {
		SessionID string `json:"sessionId"`
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{"goog:chromeOptions": options}}}
	if err := d.call("POST", "/session", caps, &session); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	b := &browser{t: t, d: d, id: session.SessionID}
	t.Cleanup(func() { d.call("DELETE", "/session/"+b.id, nil, nil) })
	// The window's size is the viewport's: what a screenshot shows.
	b.emulate(width, height)
	return b
}

func (b *browser) do(method, path string, body, v any) {
	b.t.Helper()
	if err := b.d.call(method, "/session/"+b.id+path, body, v); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) navigate(url string) {
	b.t.Helper()
	b.do("POST", "/url", map[string]any{"url": url}, nil)
}

// runInto runs script in the page and decodes what it returns into v.
func (b *browser) runInto(v any, script string) {
	b.t.Helper()
	b.do("POST", "/execute/sync", map[string]any{"script": script, "args": []any{}}, v)
}

func (b *browser) run(script string) {
	b.t.Helper()
	b.runInto(nil, script)
}

// text returns the text of the first element selector matches, "" if none.
func (b *browser) text(selector string) string {
	b.t.Helper()
	var s string
	b.runInto(&s, fmt.Sprintf(`const e = document.querySelector(%q); return e ? e.textContent : ""`, selector))
	return s
}

// emulate sets the viewport to width by height CSS pixels, as a device of
// that size shows it.
func (b *browser) emulate(width, height int) {
	b.t.Helper()
	b.do("POST", "/goog/cdp/execute", map[string]any{"cmd": "Emulation.setDeviceMetricsOverride", "params": map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600,
	}}, nil)
	// The page redraws its map on resize; wait until it has.
	var w int
	deadline := time.Now().Add(5 * time.Second)
	for b.runInto(&w, `return window.innerWidth`); w != width; b.runInto(&w, `return window.innerWidth`) {
		if time.Now().After(deadline) {
			b.t.Fatalf("the viewport is %d wide, want %d", w, width)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noOverflow fails the test if the page is wider than the viewport.
func (b *browser) noOverflow() {
	b.t.Helper()
	var widths [2]int
	b.runInto(&widths, `return [document.documentElement.scrollWidth, window.innerWidth]`)
	if widths[0] > widths[1] {
		b.t.Errorf("the page is %d px wide in a %d px viewport", widths[0], widths[1])
	}
}

// screenshot saves a PNG of the viewport among the test's artifacts.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	var encoded string
	b.do("GET", "/screenshot", nil, &encoded)
	png, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}
