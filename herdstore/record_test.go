package herdstore

import (
	"bytes"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-herd/caddy-herd/protocol"
)

func TestRecordFields(t *testing.T) {
	const line = "AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997"
	tests := []struct {
		name   string
		origin Origin
	}{
		{"no origin", Origin{}},
		{"IPv4", Origin{Arrived: 1520023935000000001, From: netip.MustParseAddrPort("127.0.0.1:40001")}},
		{"IPv4-mapped IPv6 is stored as IPv4", Origin{Arrived: 1, From: netip.MustParseAddrPort("[::ffff:10.1.2.3]:65535")}},
		{"IPv6", Origin{Arrived: -5, From: netip.MustParseAddrPort("[2001:db8::17]:12000")}},
		{"arrival only", Origin{Arrived: 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := MakeRecord([]byte(line), tt.origin)
			if r.Line() != line {
				t.Errorf("Line = %q, want %q", r.Line(), line)
			}
			if r.Server() != "Farmar" || r.Client() != "kiwi.cs.ucla.edu" || r.Time() != "1520023934.918963997" {
				t.Errorf("Server, Client, Time = %q, %q, %q", r.Server(), r.Client(), r.Time())
			}
			want := tt.origin
			want.From = netip.AddrPortFrom(want.From.Addr().Unmap(), want.From.Port())
			if !tt.origin.From.IsValid() {
				want.From = netip.AddrPort{}
			}
			if got := r.Origin(); got != want {
				t.Errorf("Origin = %+v, want %+v", got, want)
			}
		})
	}
}

func TestZeroRecord(t *testing.T) {
	var r Record
	if !r.IsZero() || r.Line() != "" || r.Server() != "" || r.Client() != "" || r.Time() != "" || r.Origin() != (Origin{}) {
		t.Errorf("zero record = %q %q %q %+v", r.Line(), r.Client(), r.Time(), r.Origin())
	}
}

func TestMakeRecordAllocatesOnce(t *testing.T) {
	line := []byte("AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997")
	o := Origin{Arrived: 1, From: netip.MustParseAddrPort("127.0.0.1:40001")}
	if allocs := testing.AllocsPerRun(100, func() { MakeRecord(line, o) }); allocs != 1 {
		t.Errorf("MakeRecord allocates %v times, want 1", allocs)
	}
}

// TestMakeRecordOfFields checks that a record made of an AT message's fields
// is the record made of its line, normalized.
func TestMakeRecordOfFields(t *testing.T) {
	longClient := strings.Repeat("k", 300) // too long for the header to place
	tests := []struct {
		name, message, line string
	}{
		{"normalized", "AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997",
			"AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997"},
		{"extra whitespace", " AT\tFarmar  +0.1 kiwi +1+1 1\r", "AT Farmar +0.1 kiwi +1+1 1"},
		{"client ID longer than the header places", "AT A +0.1 " + longClient + " +1+1 1", "AT A +0.1 " + longClient + " +1+1 1"},
		{"time with no key", "AT A +0.1 kiwi +1+1 123456789012345678901.5", "AT A +0.1 kiwi +1+1 123456789012345678901.5"},
	}
	origins := []Origin{{}, {Arrived: 7, From: netip.MustParseAddrPort("127.0.0.1:40001")},
		{Arrived: -1, From: netip.MustParseAddrPort("[2001:db8::17]:12000")}}
	for _, tt := range tests {
		fields := protocol.Fields(nil, protocol.TrimSpace([]byte(tt.message)))
		if protocol.Classify(fields) != protocol.AT {
			t.Fatalf("%s: %q is not a valid AT message", tt.name, tt.message)
		}
		for _, o := range origins {
			got, want := MakeRecordOfFields(fields, o), MakeRecord([]byte(tt.line), o)
			if got != want {
				t.Errorf("%s, %+v: MakeRecordOfFields = %q, MakeRecord = %q", tt.name, o, got.packed, want.packed)
			}
			if got.Line() != tt.line || got.Client() != string(fields[protocol.ATClient]) {
				t.Errorf("%s: Line, Client = %q, %q", tt.name, got.Line(), got.Client())
			}
		}
	}
	fields := protocol.Fields(nil, []byte(tests[0].message))
	o := origins[1]
	if allocs := testing.AllocsPerRun(100, func() { MakeRecordOfFields(fields, o) }); allocs != 1 {
		t.Errorf("MakeRecordOfFields allocates %v times, want 1", allocs)
	}
}

// FuzzMakeRecordOfFields checks that a record made of any valid AT message's
// fields is the one MakeRecord makes of its normalized line.
func FuzzMakeRecordOfFields(f *testing.F) {
	f.Add("AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997")
	f.Add(" AT\tFarmar  +0.1 kiwi +1+1 1\r")
	f.Add("AT A -0.000000001 x -90+180 0")
	f.Fuzz(func(t *testing.T, message string) {
		fields := protocol.Fields(nil, protocol.TrimSpace([]byte(message)))
		if protocol.Classify(fields) != protocol.AT {
			return
		}
		line := bytes.Join(fields, []byte(" "))
		o := Origin{Arrived: 1, From: netip.MustParseAddrPort("10.0.0.1:1")}
		if got, want := MakeRecordOfFields(fields, o), MakeRecord(line, o); got != want {
			t.Errorf("MakeRecordOfFields = %q, MakeRecord = %q", got.packed, want.packed)
		}
	})
}

// BenchmarkTableBytesPerClient reports the memory a table of n clients holds
// per client, with lines like the load tool's: its heap and its record
// memory.
func BenchmarkTableBytesPerClient(b *testing.B) {
	for _, n := range []int{1000, 100000, 1000000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var perClient float64
			for range b.N {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				s := New()
				from := netip.MustParseAddrPort("127.0.0.1:40001")
				for i := range n {
					line := "AT Alpha +0.000123456 load-" + strconv.Itoa(i) + " +34.068930-118.445127 1795633160.797134656"
					s.Put(MakeRecord([]byte(line), Origin{Arrived: int64(i), From: from}))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perClient = float64(int(after.HeapAlloc)-int(before.HeapAlloc)+s.RecordBytes()) / float64(n)
				runtime.KeepAlive(s)
			}
			b.ReportMetric(perClient, "heap-B/client")
		})
	}
}
