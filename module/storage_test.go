package module

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-herd/caddy-herd/herdwal"
)

// storageConfig is a Caddy JSON config of a herd server named A on listen
// whose herd app has the storage storage (a JSON object).
func storageConfig(listen, storage string) []byte {
	return []byte(fmt.Sprintf(`{
	"admin": {"disabled": true},
	"logging": {"logs": {"default": {"writer": {"output": "discard"}}}},
	"apps": {
		"herd": {"name": "A", "storage": %s},
		"layer4": {"servers": {"herd": {"listen": [%q], "routes": [{"handle": [{"handler": "herd"}]}]}}}
	}
}`, storage, listen))
}

func dirStorage(dir, fsync string) string {
	if fsync == "" {
		return fmt.Sprintf(`{"dir": %q}`, dir)
	}
	return fmt.Sprintf(`{"dir": %q, "fsync": %q}`, dir, fsync)
}

// iamatClients stores clients named prefix-0 to prefix-(n-1) over conn.
func iamatClients(t *testing.T, conn net.Conn, r *bufio.Reader, prefix string, n int) {
	t.Helper()
	for i := range n {
		if got := exchange(t, conn, r, fmt.Sprintf("IAMAT %s-%d +1+1 %d\n", prefix, i, time.Now().UnixNano())); !strings.HasPrefix(got, "AT A ") {
			t.Fatalf("IAMAT answered %q", got)
		}
	}
}

// TestStorageAcrossReloads drives the storage through Caddy's reloads: the
// same directory keeps the open log (a new fsync level applies to it), another
// empty one receives the table, a non-empty one is refused with the running
// config left as it was, storage off keeps the table in memory and frees the
// directory, and on again writes it all to a new one, which a fresh start
// restores. Stopping leaves no goroutine behind.
func TestStorageAcrossReloads(t *testing.T) {
	listen := freeAddress(t)
	base := t.TempDir()
	d1, d2, d3 := filepath.Join(base, "one"), filepath.Join(base, "two"), filepath.Join(base, "three")
	load := func(storage string) error { return caddy.Load(storageConfig(listen, storage), true) }

	// Warm up Caddy's own background goroutines before the baseline.
	if err := load(`{"off": true}`); err != nil {
		t.Fatal(err)
	}
	caddy.Stop()
	baseline := runtime.NumGoroutine()

	if err := load(dirStorage(d1, "")); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	iamatClients(t, conn, r, "first", 10)
	n := runningNode()
	opened := n.log.Load()

	if err := load(dirStorage(d1, "always")); err != nil {
		t.Fatal(err)
	}
	if l := n.log.Load(); l != opened || l.Stats().Fsync != "always" {
		t.Errorf("a reload with the same directory replaced the log, or kept its level: %s", l.Stats().Fsync)
	}

	if err := load(dirStorage(d2, "")); err != nil {
		t.Fatal(err)
	}
	moved := n.log.Load()
	if moved == opened || moved.Dir() != d2 || moved.Stats().Snapshots != 1 {
		t.Fatalf("after a reload into %s the log is %s with %d snapshots", d2, moved.Dir(), moved.Stats().Snapshots)
	}
	if st, _ := herdwal.Probe(d1, nil); st.HeldBy != "" {
		t.Errorf("the directory moved out of is still held by %s", st.HeldBy)
	}

	err = load(dirStorage(d1, ""))
	if err == nil || !strings.Contains(err.Error(), "already holds a table") || !strings.Contains(err.Error(), d1) {
		t.Errorf("a reload into the old, non-empty directory: %v", err)
	}
	if n.log.Load() != moved {
		t.Error("a refused reload changed the storage")
	}

	if err := load(`{"off": true}`); err != nil {
		t.Fatal(err)
	}
	if n.log.Load() != nil {
		t.Error("storage off left a log open")
	}
	if st, _ := herdwal.Probe(d2, nil); st.HeldBy != "" {
		t.Errorf("with storage off the directory is still held by %s", st.HeldBy)
	}
	iamatClients(t, conn, r, "memory", 5)

	if err := load(dirStorage(d3, "")); err != nil {
		t.Fatal(err)
	}
	iamatClients(t, conn, r, "third", 5)
	conn.Close()
	caddy.Stop()
	waitUntil(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= baseline })

	if err := load(dirStorage(d3, "")); err != nil {
		t.Fatal(err)
	}
	defer caddy.Stop()
	if got := runningNode().store.Len(); got != 20 {
		t.Errorf("restarted on %s with %d clients, want 20", d3, got)
	}
}
