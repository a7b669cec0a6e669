package herdstore

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// TestScratchMakesTheSameRecords checks that a Scratch makes the records
// MakeRecord and MakeRecordOfFields make, one after another in its memory,
// and that a clone keeps its record once the memory is reused.
func TestScratchMakesTheSameRecords(t *testing.T) {
	lines := []string{
		"AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997",
		"AT A +0.1 k +1+1 1",
		"AT A +0.1 " + strings.Repeat("k", maxScratchBytes) + " +1+1 1", // longer than a Scratch keeps
		"AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963998",
	}
	o := Origin{Arrived: 7, From: netip.MustParseAddrPort("[2001:db8::17]:12000")}
	var s Scratch
	var clones []Record
	for _, line := range lines {
		want := MakeRecord([]byte(line), o)
		if got := s.MakeRecord([]byte(line), o); got != want {
			t.Errorf("Scratch.MakeRecord = %q, want %q", got.packed, want.packed)
		}
		fields := protocol.Fields(nil, []byte(line))
		got := s.MakeRecordOfFields(fields, o)
		if got != want {
			t.Errorf("Scratch.MakeRecordOfFields = %q, want %q", got.packed, want.packed)
		}
		clones = append(clones, got.Clone())
	}
	for i, line := range lines {
		if clones[i] != MakeRecord([]byte(line), o) {
			t.Errorf("clone %d = %q after the scratch was reused, want %q", i, clones[i].Line(), line)
		}
	}
	if cap(s.buf) > maxScratchBytes {
		t.Errorf("the scratch keeps %d bytes after a short record, want at most %d", cap(s.buf), maxScratchBytes)
	}
}

// TestScratchReusesItsMemory checks that making a record in a Scratch
// allocates nothing once its memory is big enough.
func TestScratchReusesItsMemory(t *testing.T) {
	line := []byte("AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997")
	fields := protocol.Fields(nil, line)
	o := Origin{Arrived: 1, From: netip.MustParseAddrPort("127.0.0.1:40001")}
	var s Scratch
	if allocs := testing.AllocsPerRun(100, func() { s.MakeRecord(line, o) }); allocs != 0 {
		t.Errorf("Scratch.MakeRecord allocates %v times, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { s.MakeRecordOfFields(fields, o) }); allocs != 0 {
		t.Errorf("Scratch.MakeRecordOfFields allocates %v times, want 0", allocs)
	}
}

// TestTableKeepsScratchRecords puts records a Scratch made and reuses it:
// the table holds copies.
func TestTableKeepsScratchRecords(t *testing.T) {
	st := New()
	var s Scratch
	lines := []string{
		"AT A +0.1 kiwi +1+1 1520023934.000000001",
		"AT A +0.1 lime +1+1 1520023934.000000002", // same length: same memory
	}
	for _, line := range lines {
		if !st.Put(s.MakeRecord([]byte(line), Origin{})) {
			t.Fatalf("%q not stored", line)
		}
	}
	for _, line := range lines {
		r := NewRecord(line)
		if got, ok := st.Get([]byte(r.Client())); !ok || got != r {
			t.Errorf("Get(%q) = %q, %v, want %q", r.Client(), got.Line(), ok, line)
		}
	}
}
