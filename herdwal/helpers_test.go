package herdwal_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/internal/crashfs"
)

// dir is where the logs of tests on crashfs live.
const dir = "/herd/data"

// rec is a record as a test wrote it.
type rec struct {
	Seq     uint64
	Arrived int64
	From    netip.AddrPort
	Line    string
}

func (r rec) entry() []byte {
	return herdwal.AppendRecord(nil, r.Seq, r.Arrived, r.From, []byte(r.Line))
}

func recOf(r herdwal.Record) rec {
	return rec{Seq: r.Seq, Arrived: r.Arrived, From: r.From, Line: string(r.Line)}
}

// atLine is an AT line of client at client time t (nanoseconds).
func atLine(client int, t int64) string {
	return fmt.Sprintf("AT S +0.000000001 client-%d +34.068930-118.445127 %d.%09d", client, t/1e9, t%1e9)
}

// clientOf returns the client of an AT line made by atLine.
func clientOf(line string) string {
	return strings.Fields(line)[3]
}

// timeOf returns the client time of an AT line made by atLine.
func timeOf(line string) int64 {
	f := strings.Fields(line)
	var sec, nsec int64
	fmt.Sscanf(f[len(f)-1], "%d.%d", &sec, &nsec)
	return sec*1e9 + nsec
}

var addrs = []netip.AddrPort{
	{},
	netip.MustParseAddrPort("192.0.2.7:40000"),
	netip.MustParseAddrPort("[2001:db8::7]:40001"),
}

// makeRecs makes n records numbered from seq on, for clients 0..clients-1.
func makeRecs(seq uint64, n, clients int) []rec {
	out := make([]rec, n)
	for i := range out {
		s := seq + uint64(i)
		out[i] = rec{Seq: s, Arrived: int64(s) * 1000, From: addrs[int(s)%len(addrs)], Line: atLine(int(s)%clients, int64(s)*1e6)}
	}
	return out
}

func entries(rs ...rec) []byte {
	var b []byte
	for _, r := range rs {
		b = append(b, r.entry()...)
	}
	return b
}

// restored collects what Open restores.
type restored struct {
	mu   sync.Mutex
	recs []rec
}

func (c *restored) restore(r herdwal.Record) error {
	c.mu.Lock()
	c.recs = append(c.recs, recOf(r))
	c.mu.Unlock()
	return nil
}

// checkGoroutines fails t if goroutines started during it are still running
// when it ends. Call it first, so that it runs after the other cleanups.
func checkGoroutines(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines left running, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// open opens dir with opts and fails t on an error.
func open(t testing.TB, opts herdwal.Options) (*herdwal.Log, herdwal.Recovery, []rec) {
	t.Helper()
	var got restored
	l, r, err := herdwal.Open(dir, opts, got.restore)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, r, got.recs
}

func mustWrite(t testing.TB, l *herdwal.Log, rs ...rec) {
	t.Helper()
	if err := l.Write(entries(rs...)); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func mustClose(t testing.TB, l *herdwal.Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func equalRecs(t testing.TB, what string, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: record %d is %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

func noDamage(t testing.TB, r herdwal.Recovery) {
	t.Helper()
	for _, d := range r.Damage {
		t.Errorf("damage: %s", d)
	}
}

// segments returns the paths of the segments in dir of f, in order.
func segments(t testing.TB, f herdwal.FS) []string {
	return filesWith(t, f, "log-")
}

func snapshots(t testing.TB, f herdwal.FS) []string {
	return filesWith(t, f, "snapshot-")
}

func filesWith(t testing.TB, f herdwal.FS, prefix string) []string {
	t.Helper()
	names, err := f.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out
}

func readFile(t testing.TB, f *crashfs.FS, name string) []byte {
	t.Helper()
	b, err := f.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// boundaries returns the offsets where the entries of a file begin, and its
// length.
func boundaries(b []byte) []int {
	var out []int
	for off := 0; off+8 <= len(b); {
		out = append(out, off)
		off += 8 + int(binary.LittleEndian.Uint32(b[off:]))
	}
	return append(out, len(b))
}

// dirBytes adds up the sizes of the files of dir in f.
func dirBytes(t testing.TB, f *crashfs.FS) int64 {
	t.Helper()
	names, err := f.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, name := range names {
		n += int64(len(readFile(t, f, filepath.Join(dir, name))))
	}
	return n
}

// newest keeps the newest record of each client, as the server's table does:
// the later client time wins.
func newest(rs []rec) map[string]rec {
	m := map[string]rec{}
	for _, r := range rs {
		c := clientOf(r.Line)
		if old, ok := m[c]; !ok || timeOf(r.Line) > timeOf(old.Line) {
			m[c] = r
		}
	}
	return m
}

func equalTables(t testing.TB, what string, got, want map[string]rec) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	for _, c := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[c]; !ok {
			t.Errorf("%s: client %s missing, want %+v", what, c, want[c])
		} else if g != want[c] {
			t.Errorf("%s: client %s is %+v, want %+v", what, c, g, want[c])
		}
	}
	for c := range got {
		if _, ok := want[c]; !ok {
			t.Errorf("%s: client %s restored, but never written", what, c)
		}
	}
	t.FailNow()
}

// table is a client table for Options.Source: the newest record per client.
type table struct {
	mu   sync.Mutex
	recs map[string]rec
}

func newTable() *table {
	return &table{recs: map[string]rec{}}
}

func (tb *table) put(r rec) bool {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	c := clientOf(r.Line)
	if old, ok := tb.recs[c]; ok && timeOf(r.Line) <= timeOf(old.Line) {
		return false
	}
	tb.recs[c] = r
	return true
}

func (tb *table) restore(r herdwal.Record) error {
	tb.put(recOf(r))
	return nil
}

func (tb *table) snapshot() map[string]rec {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return maps.Clone(tb.recs)
}

// source yields the table's records, holding its lock as a shard's would be
// held while its records are copied.
func (tb *table) source(yield func(herdwal.Record) bool) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, c := range slices.Sorted(maps.Keys(tb.recs)) {
		r := tb.recs[c]
		if !yield(herdwal.Record{Seq: r.Seq, Arrived: r.Arrived, From: r.From, Line: []byte(r.Line)}) {
			return
		}
	}
}

// waitFor waits until cond holds, failing t after a while.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// withFile replaces the content of name in f, durably.
func withFile(t testing.TB, f *crashfs.FS, name string, b []byte) {
	t.Helper()
	if err := f.WriteFile(name, b); err != nil {
		t.Fatal(err)
	}
}

func removeFile(t testing.TB, f *crashfs.FS, name string) {
	t.Helper()
	if err := f.Remove(name); err != nil {
		t.Fatal(err)
	}
	if err := f.SyncDir(filepath.Dir(name)); err != nil {
		t.Fatal(err)
	}
}

func damageAt(r herdwal.Recovery, file string) []herdwal.Damage {
	var out []herdwal.Damage
	for _, d := range r.Damage {
		if d.File == file {
			out = append(out, d)
		}
	}
	return out
}

func pid() string {
	return fmt.Sprint(os.Getpid())
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

// frame frames an entry's type and payload as the log does.
func frame(body []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, body...)
}

func appendUint64(b []byte, v uint64) []byte {
	return binary.LittleEndian.AppendUint64(b, v)
}
