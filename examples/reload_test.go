package examples

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// caddyReload runs `caddy reload` with a new Caddyfile for s.
func (h *herd) caddyReload(s *server, caddyfile string) {
	h.t.Helper()
	path := s.config + ".next"
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		h.t.Fatal(err)
	}
	admin := strings.TrimPrefix(s.adminURL(""), "http://")
	out, err := exec.Command(caddyBinary, "reload", "--config", path, "--adapter", "caddyfile", "--address", admin).CombinedOutput()
	if err != nil {
		h.t.Fatalf("caddy reload of %s: %v\n%s", s.name, err, out)
	}
}

// TestCaddyReloadSemantics reloads a running server with `caddy reload`:
// an unchanged peer keeps its link, a peer whose address changed is
// redialled, a removed peer's link is closed, the table is kept, and a new
// name applies to the IAMATs that follow.
func TestCaddyReloadSemantics(t *testing.T) {
	h := startHerd(t)
	s := h.servers[farmar]
	before := dial(t, s).iamat("before", kiwiLocation, now())
	h.waitUntil("Farmar's links are up", func() bool {
		return h.peer(s, "Meeks").Up && h.peer(s, "Young").Up
	})

	// Young moves behind a proxy: same peer, new address.
	proxy := startLinkProxy(t, h.servers[young].addr())
	config, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(config), "peer Young "+h.servers[young].addr(), "peer Young "+proxy.addr(), 1)
	moved = strings.Replace(moved, "name Farmar", "name Farmar2", 1)
	h.caddyReload(s, moved)

	h.waitUntil("the moved peer is dialled at its new address", func() bool {
		proxy.mu.Lock()
		defer proxy.mu.Unlock()
		return len(proxy.conns) > 0
	})
	if meeks := h.peer(s, "Meeks"); meeks.Connects != 1 || !meeks.Up {
		t.Errorf("the unchanged peer Meeks: %+v, want its first link still up", meeks)
	}
	if got := h.table(s)["before"]; got != before {
		t.Errorf("after the reload the table holds %q, want %q", got, before)
	}
	after := dial(t, s).iamat("after", kiwiLocation, now())
	if !strings.HasPrefix(after, "AT Farmar2 ") || !strings.HasPrefix(h.table(s)["before"], "AT Farmar ") {
		t.Errorf("new name: reply %q, earlier record %q", after, h.table(s)["before"])
	}
	h.waitStored("after", after, h.servers[young])

	// Young removed: its link closes.
	removed := strings.Replace(moved, "\t\tpeer Young "+proxy.addr()+"\n", "", 1)
	h.caddyReload(s, removed)
	h.waitUntil("the removed peer's link is closed", func() bool {
		proxy.mu.Lock()
		defer proxy.mu.Unlock()
		return len(proxy.conns) == 0
	})
	if peers := h.peers(s); len(peers) != 1 || peers[0].Name != "Meeks" || peers[0].Connects != 1 {
		t.Errorf("peers after removing Young: %+v", peers)
	}
}
