package examples

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

func (h *herd) adminText(s *server, path string) string {
	h.t.Helper()
	resp, err := adminClient.Get(s.adminURL(path))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		h.t.Fatalf("GET %s on %s: %s: %s", path, s.name, resp.Status, body)
	}
	return string(body)
}

func TestStatsAndMetrics(t *testing.T) {
	h := startHerd(t)
	s := h.servers[farmar]
	c := dial(t, s)
	defer c.close()
	at := c.iamat("kiwi", kiwiLocation, now())
	c.send("IAMAT broken\nnonsense\n")
	c.line()
	c.line()
	c.whatsat("kiwi", "10", "1")
	c.whatsat("nobody", "10", "1")

	var stats struct {
		Clients  int                         `json:"clients"`
		Records  int                         `json:"record_bytes"`
		Uptime   float64                     `json:"uptime_seconds"`
		Messages map[string]map[string]int64 `json:"messages"`
		Places   map[string]int64            `json:"places_requests"`
	}
	if err := json.Unmarshal([]byte(h.adminText(s, "/herd/stats")), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Clients != 1 || stats.Uptime <= 0 || stats.Messages["IAMAT"]["ok"] != 1 || stats.Messages["IAMAT"]["invalid"] != 1 ||
		stats.Messages["invalid"]["invalid"] != 1 || stats.Messages["WHATSAT"]["ok"] != 1 || stats.Messages["WHATSAT"]["invalid"] != 1 || stats.Places["ok"] != 1 {
		t.Errorf("GET /herd/stats = %+v", stats)
	}
	// One record: the AT line and a few dozen bytes of header and origin.
	if len(at) >= stats.Records || stats.Records > len(at)+64 {
		t.Errorf("GET /herd/stats: record_bytes %d for one record of a %d-byte AT line", stats.Records, len(at))
	}

	h.waitUntil("the links show up in /metrics", func() bool {
		m := h.adminText(s, "/metrics")
		return strings.Contains(m, `caddy_herd_peer_up{peer="Meeks"} 1`) && strings.Contains(m, `caddy_herd_peer_up{peer="Young"} 1`)
	})
	metrics := h.adminText(s, "/metrics")
	for _, want := range []string{
		`caddy_herd_messages_total{command="IAMAT",result="ok"} 1`,
		`caddy_herd_messages_total{command="WHATSAT",result="invalid"} 1`,
		`caddy_herd_clients 1`,
		fmt.Sprintf("caddy_herd_record_bytes %d\n", stats.Records),
		`caddy_herd_records_total{outcome="applied"} 1`,
		`caddy_herd_places_requests_total{outcome="ok",provider="google_legacy"} 1`,
		`caddy_herd_iamat_duration_seconds_count 1`,
		`caddy_herd_places_request_duration_seconds_count{provider="google_legacy"} 1`,
		`caddy_herd_floods_sent_total{peer="Meeks"}`,
		`caddy_herd_peer_queue_length{peer="Young"}`,
		`caddy_herd_messages_total{command="HERD",result="ok"}`,
		`caddy_herd_storage_written_bytes_total `,
		`caddy_herd_storage_disk_bytes `,
		`caddy_herd_storage_records `,
		`caddy_herd_storage_failing 0`,
		`caddy_herd_storage_last_snapshot_timestamp_seconds `,
		`caddy_herd_storage_fsync_duration_seconds_count `,
		`caddy_herd_storage_snapshot_duration_seconds_count `,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A reload registers the collectors again in the new config's registry;
	// the counters carry on.
	config, _ := os.ReadFile(s.config)
	h.reload(s, strings.Replace(string(config), "name Farmar", "name Farmar2", 1))
	c.iamat("kiwi2", kiwiLocation, now())
	metrics = h.adminText(s, "/metrics")
	if !strings.Contains(metrics, `caddy_herd_messages_total{command="IAMAT",result="ok"} 2`) || !strings.Contains(metrics, "caddy_herd_iamat_duration_seconds_count 2") {
		t.Errorf("after a reload /metrics shows:\n%s", grepLines(metrics, "caddy_herd_"))
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
