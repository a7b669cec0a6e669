//go:build linux

package examples

// The limits block end to end: connections and messages per client IP,
// and the WHATSAT budgets, on a real Caddy with a peer. Linux routes all of
// 127/8 to the loopback, so clients bind to 127.0.0.2 and up to be
// different IPs, while the peer links come from 127.0.0.1.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

// Limits of the limited server in these tests.
const (
	limitedConnectionsPerIP = 3
	limitedMessagesBurst    = 40 // at 20/s
	limitedWhatsatPerIP     = 3  // an hour
	limitedWhatsatGlobal    = 5  // an hour
)

// startLimitedPair starts Limited, with a limits block and the fake Google
// as its provider, and Peer, which floods to it and is its peer. It returns
// the herd, the fake provider and the two servers.
func startLimitedPair(t *testing.T) (*herd, *fakeplaces.Server, *server, *server) {
	t.Helper()
	ports := freePorts(t, 4)
	google := fakeplaces.Start(t)
	h := &herd{t: t, dir: t.TempDir()}
	limited := &server{name: "Limited", port: ports[0], adminPort: ports[1], adapter: "caddyfile"}
	peer := &server{name: "Peer", port: ports[2], adminPort: ports[3], adapter: "caddyfile"}
	configs := map[*server]string{
		limited: fmt.Sprintf(`{
	admin 127.0.0.1:%d
	log herd {
		output file Limited.log {
			roll_disabled
		}
		level WARN
		include herd layer4.handlers.herd
	}
	herd {
		name Limited
		peer Peer 127.0.0.1:%d
		places google_legacy {
			api_key %s
			endpoint %s
		}
		cache_ttl 1m
		limits {
			connections_per_ip %d
			messages_per_ip    20/s burst %d
			whatsat_per_ip     %d/h
			whatsat_global     %d/h
		}
	}
	layer4 {
		127.0.0.1:%d {
			route {
				herd
			}
		}
	}
}
`, limited.adminPort, peer.port, fakeplaces.APIKey, google.URL, limitedConnectionsPerIP, limitedMessagesBurst,
			limitedWhatsatPerIP, limitedWhatsatGlobal, limited.port),
		peer: fmt.Sprintf(`{
	admin 127.0.0.1:%d
	herd {
		name Peer
		peer Limited 127.0.0.1:%d
	}
	layer4 {
		127.0.0.1:%d {
			route {
				herd
			}
		}
	}
}
`, peer.adminPort, limited.port, peer.port),
	}
	for _, s := range []*server{limited, peer} {
		s.config = filepath.Join(h.dir, s.name+".caddyfile")
		s.output = filepath.Join(h.dir, s.name+".out")
		if err := os.WriteFile(s.config, []byte(configs[s]), 0o600); err != nil {
			t.Fatal(err)
		}
		h.servers = append(h.servers, s)
	}
	t.Cleanup(h.stop)
	for _, s := range h.servers {
		h.start(s)
	}
	return h, google, limited, peer
}

// limitedCounts returns the limited counters of GET /herd/stats.
func limitedCounts(h *herd, s *server) (map[string]int64, int) {
	h.t.Helper()
	var stats struct {
		Limited    map[string]int64 `json:"limited"`
		TrackedIPs int              `json:"tracked_ips"`
	}
	if err := json.Unmarshal([]byte(h.adminText(s, "/herd/stats")), &stats); err != nil {
		h.t.Fatal(err)
	}
	return stats.Limited, stats.TrackedIPs
}

func TestLimits(t *testing.T) {
	h, google, limited, peer := startLimitedPair(t)
	h.waitUntil("the links are up", func() bool {
		return h.peer(limited, "Peer").Up && h.peer(peer, "Limited").Up
	})

	t.Run("ConnectionsPerIP", func(t *testing.T) {
		var open []*client
		for i := range limitedConnectionsPerIP {
			c := dialFrom(t, limited, "127.0.0.2")
			defer c.close()
			hostileIAMAT(t, c, "Limited", fmt.Sprintf("conn-%d", i))
			open = append(open, c)
		}
		extra := dialFrom(t, limited, "127.0.0.2")
		defer extra.close()
		if got := <-hostileWatchClose(extra.conn, 10*time.Second); !hostileClosedByPeer(got.err) || len(got.data) > 0 {
			t.Fatalf("connection %d from one IP: read %q, %v; want it closed at once", limitedConnectionsPerIP+1, got.data, got.err)
		}
		for i, c := range open {
			hostileIAMAT(t, c, "Limited", fmt.Sprintf("conn-%d-again", i))
		}
		other := dialFrom(t, limited, "127.0.0.3")
		defer other.close()
		hostileIAMAT(t, other, "Limited", "other-ip")

		// The peer's link carries on: a record taken at Peer reaches Limited.
		// (Looked up in the table: a WHATSAT would spend the places budget.)
		at := dial(t, peer).iamat("via-peer", kiwiLocation, now())
		h.waitUntil("the peer's record reaches Limited", func() bool { return h.table(limited)["via-peer"] == at })

		counts, _ := limitedCounts(h, limited)
		if counts["connections_per_ip"] != 1 {
			t.Errorf("/herd/stats limited = %v, want connections_per_ip 1", counts)
		}
		if m := h.adminText(limited, "/metrics"); !strings.Contains(m, `caddy_herd_limited_total{limit="connections_per_ip"} 1`) {
			t.Errorf("/metrics:\n%s", grepLines(m, "caddy_herd_limited_total"))
		}
	})

	t.Run("MessageFlood", func(t *testing.T) {
		log := hostileWatchLog(t, h, limited)
		const lines = 2000
		var flood strings.Builder
		for i := range lines {
			fmt.Fprintf(&flood, "IAMAT flood-%d %s %s\n", i, kiwiLocation, now())
		}
		started := time.Now()
		c := dialFrom(t, limited, "127.0.0.4")
		defer c.close()
		closed := hostileWatchClose(c.conn, 10*time.Second)
		c.conn.Write([]byte(flood.String())) // the server may close before it reads it all
		got := <-closed
		if !hostileClosedByPeer(got.err) {
			t.Fatalf("a flood of %d lines: the connection was not closed: %v", lines, got.err)
		}
		replies := strings.Count(string(got.data), "AT Limited ")
		stored := 0
		for client := range h.table(limited) {
			if strings.HasPrefix(client, "flood-") {
				stored++
			}
		}
		// The burst, and what came back while the server read it.
		most := limitedMessagesBurst + 20*int(time.Since(started).Seconds()+1)
		if stored < limitedMessagesBurst || stored > most || replies > stored {
			t.Errorf("%d lines handled and %d replies read of %d, want the burst of %d (at most %d)", stored, replies, lines, limitedMessagesBurst, most)
		}

		// More floods from the same IP, each more than the bucket can have
		// refilled meanwhile: each closed, few log entries.
		const more = 5
		for range more {
			c := dialFrom(t, limited, "127.0.0.4")
			closed := hostileWatchClose(c.conn, 10*time.Second)
			c.conn.Write([]byte(flood.String()))
			if got := <-closed; !hostileClosedByPeer(got.err) {
				t.Errorf("a further flood was not closed: %v", got.err)
			}
			c.close()
		}
		counts, _ := limitedCounts(h, limited)
		if counts["messages_per_ip"] != 1+more {
			t.Errorf("/herd/stats limited = %v, want messages_per_ip %d", counts, 1+more)
		}
		if m := h.adminText(limited, "/metrics"); !strings.Contains(m, fmt.Sprintf(`caddy_herd_limited_total{limit="messages_per_ip"} %d`, 1+more)) {
			t.Errorf("/metrics:\n%s", grepLines(m, "caddy_herd_limited_total"))
		}
		const msg = "client IP over its message rate; closing the connection"
		h.waitUntil("the refusal is logged", func() bool { return log.count(msg, "") > 0 })
		if entries, most := log.count(msg, ""), 1+int(time.Since(started)/(10*time.Second)); entries > most {
			t.Errorf("%d log entries for %d refusals, want at most %d (one per 10 s)", entries, 1+more, most)
		}
	})

	t.Run("PeerFloodIsExempt", func(t *testing.T) {
		// Peer floods far more than 20 records a second to Limited.
		const clients = 500
		var fill strings.Builder
		for i := range clients {
			fmt.Fprintf(&fill, "IAMAT peer-fill-%d %s %s\n", i, kiwiLocation, now())
		}
		c := dial(t, peer)
		defer c.close()
		c.send(fill.String())
		for range clients {
			c.line()
		}
		h.waitUntil("Limited holds every record Peer flooded", func() bool {
			n := 0
			for client := range h.table(limited) {
				if strings.HasPrefix(client, "peer-fill-") {
					n++
				}
			}
			return n == clients
		})
		if h.peer(peer, "Limited").Connects != 1 {
			t.Errorf("Peer's link to Limited was redialled: %+v", h.peer(peer, "Limited"))
		}
	})

	t.Run("WhatsatBudget", func(t *testing.T) {
		dial(t, limited).iamat("kiwi", kiwiLocation, now())
		before := google.Requests()
		ask := func(c *client, radius int) bool {
			at, _ := c.whatsat("kiwi", fmt.Sprint(radius), "1")
			return at != ""
		}
		first := dialFrom(t, limited, "127.0.0.5")
		defer first.close()
		second := dialFrom(t, limited, "127.0.0.6")
		defer second.close()
		steps := []struct {
			c        *client
			radius   int
			answered bool
		}{
			{first, 1, true}, {first, 2, true}, {first, 3, true},
			{first, 4, false}, {first, 5, false}, // the IP's budget is spent
			{second, 6, true}, {second, 7, true},
			{second, 8, false}, // the global budget is spent
			{first, 1, true},   // from the cache: free
		}
		for i, s := range steps {
			if got := ask(s.c, s.radius); got != s.answered {
				t.Errorf("step %d, radius %d: answered %v, want %v", i, s.radius, got, s.answered)
			}
		}
		hostileIAMAT(t, first, "Limited", "still-open")
		if got := google.Requests() - before; got != limitedWhatsatGlobal {
			t.Errorf("the provider got %d requests, want the global budget of %d", got, limitedWhatsatGlobal)
		}
		counts, _ := limitedCounts(h, limited)
		if counts["whatsat_per_ip"] != 2 || counts["whatsat_global"] != 1 {
			t.Errorf("/herd/stats limited = %v, want whatsat_per_ip 2, whatsat_global 1", counts)
		}
		m := h.adminText(limited, "/metrics")
		for _, want := range []string{`caddy_herd_limited_total{limit="whatsat_per_ip"} 2`, `caddy_herd_limited_total{limit="whatsat_global"} 1`, `caddy_herd_tracked_ips `} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s:\n%s", want, grepLines(m, "caddy_herd_"))
			}
		}
	})
}
