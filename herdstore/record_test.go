package herdstore

import (
	"net/netip"
	"runtime"
	"strconv"
	"testing"
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

// BenchmarkTableBytesPerClient reports the heap a table of b.N clients holds
// per client, with lines like the load tool's.
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
				perClient = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				runtime.KeepAlive(s)
			}
			b.ReportMetric(perClient, "heap-B/client")
		})
	}
}
