package module

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/herdstore"
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

// TestAnswerFollowsItsWrite: the AT of an IAMAT is written back only after
// its record is in the log, and a peer's record that goes nowhere reaches
// the log by itself, in order, so that a restart restores both.
func TestAnswerFollowsItsWrite(t *testing.T) {
	dir := t.TempDir()
	n := newTestNode(t, nil)
	if err := n.startStorage(storagePlan{dir: dir, fsync: herdwal.FsyncEverySec}, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	conn, _ := serveOne(t, testHandler(n))
	r := bufio.NewReader(conn)
	st, _, _ := n.storageStats()
	if got := exchange(t, conn, r, fmt.Sprintf("IAMAT kiwi +1+1 %d\n", time.Now().UnixNano())); !strings.HasPrefix(got, "AT Test ") {
		t.Fatalf("IAMAT answered %q", got)
	}
	after, _, _ := n.storageStats()
	if after.Records != st.Records+1 {
		t.Errorf("%d records in the log once the AT came, want %d", after.Records, st.Records+1)
	}
	io.WriteString(conn, "AT Other +0.5 apple +1+1 1\n")
	waitUntil(t, "the peer's record to be written", func() bool {
		st, _, _ := n.storageStats()
		return st.Records == after.Records+1
	})
	n.closeLog(n.log.Load(), zap.NewNop())
	n.log.Store(nil)

	restored := newTestNode(t, nil)
	if err := restored.startStorage(storagePlan{dir: dir, fsync: herdwal.FsyncEverySec}, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if got := restored.store.Len(); got != 2 {
		t.Errorf("%d clients restored, want 2", got)
	}
}

// TestCatchUpReadsWrittenRecords: a catch-up reads the table only once the
// records left for the log to write are written, since it hands them to a
// peer.
func TestCatchUpReadsWrittenRecords(t *testing.T) {
	n := newTestNode(t, nil)
	if err := n.startStorage(storagePlan{dir: t.TempDir(), fsync: herdwal.FsyncEverySec}, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	var f floods
	if !n.apply(herdstore.NewRecord("AT Other +0.5 kiwi +1+1 1"), "", &f) || f.awaited() {
		t.Fatal("the record was not stored, or something waits for it")
	}
	n.flood(&f)
	linkServer{n}.RangeSince(0, n.store.Seq(), func(herdstore.Record, uint64) bool {
		if st, _, _ := n.storageStats(); st.Records != 1 {
			t.Errorf("%d records in the log while the catch-up reads the table, want 1", st.Records)
		}
		return true
	})
}
