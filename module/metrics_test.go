package module

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// placesConfig is a Caddy JSON config with the herd on listen, named name,
// answering WHATSAT from the example places file with a one-minute cache.
func placesConfig(t *testing.T, name, listen string) []byte {
	t.Helper()
	file, err := filepath.Abs("../examples/places.json")
	if err != nil {
		t.Fatal(err)
	}
	return []byte(fmt.Sprintf(`{
	"admin": {"disabled": true},
	"logging": {"logs": {"default": {"writer": {"output": "discard"}}}},
	"apps": {
		"herd": {"name": %q, "places": {"provider": "file", "path": %q}, "cache_ttl": "1m", "storage": {"off": true}},
		"layer4": {"servers": {"herd": {"listen": [%q], "routes": [{"handle": [{"handler": "herd"}]}]}}}
	}
}`, name, file, listen))
}

// gatherCounters returns the value of every herd counter as name{labels}.
func gatherCounters(t *testing.T) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := make(map[string]float64)
	for _, f := range families {
		if f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			values[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	return values
}

// TestPlacesCountersAcrossReload asks the same WHATSAT through Caddy before
// and after a reload: the cache answers the second, the reloaded config
// starts with an empty cache, and /herd/stats and the metrics count each
// request upstream and each one saved, carrying on across the reload.
func TestPlacesCountersAcrossReload(t *testing.T) {
	listen := freeAddress(t)
	conn, r := loadAndDial(t, placesConfig(t, "A", listen), listen)
	exchange(t, conn, r, "IAMAT kiwi +34.068930-118.445127 1\n")
	whatsat := func() string {
		if _, err := conn.Write([]byte("WHATSAT kiwi 1 3\n")); err != nil {
			t.Fatal(err)
		}
		return readAnswer(t, conn, r)
	}
	first := whatsat()
	if strings.HasPrefix(first, "? ") || !strings.Contains(first, "Boelter Hall") {
		t.Fatalf("WHATSAT answered %q", first)
	}
	if second := whatsat(); second != first {
		t.Errorf("the cached answer %q differs from the first %q", second, first)
	}

	if err := caddy.Load(placesConfig(t, "B", listen), true); err != nil {
		t.Fatal(err)
	}
	if third := whatsat(); !strings.HasPrefix(third, "AT A ") || third[strings.Index(third, "\n"):] != first[strings.Index(first, "\n"):] {
		t.Errorf("after the reload WHATSAT answered %q", third)
	}

	n := runningNode()
	if n == nil {
		t.Fatal("no running node")
	}
	stats := n.statsView().Places
	for field, want := range map[string]int64{"ok": 3, "error": 0, "upstream": 2, "coalesced": 0, "cached": 1} {
		if stats[field] != want {
			t.Errorf("/herd/stats places_requests %s = %d, want %d (all: %v)", field, stats[field], want, stats)
		}
	}
	counters := gatherCounters(t)
	for metric, want := range map[string]float64{
		`caddy_herd_places_requests_total{outcome="ok",provider="file"}`:             3,
		`caddy_herd_places_upstream_requests_total{provider="file"}`:                 2,
		`caddy_herd_places_requests_saved_total{provider="file",reason="cached"}`:    1,
		`caddy_herd_places_requests_saved_total{provider="file",reason="coalesced"}`: 0,
	} {
		if got, ok := counters[metric]; !ok || got != want {
			t.Errorf("%s = %v (present: %v), want %v", metric, got, ok, want)
		}
	}
}
