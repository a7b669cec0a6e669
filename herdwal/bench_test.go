package herdwal_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/caddy-herd/caddy-herd/herdwal"
)

// BenchmarkWrite writes batches of 16 records of about 80 bytes from many
// goroutines at once, as connections do, to a directory on the real disk.
func BenchmarkWrite(b *testing.B) {
	for _, level := range []herdwal.Fsync{herdwal.FsyncEverySec, herdwal.FsyncAlways} {
		b.Run(level.String(), func(b *testing.B) {
			l, _, err := herdwal.Open(b.TempDir(), herdwal.Options{Fsync: level}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			const batch = 16
			from := netip.MustParseAddrPort("192.0.2.7:40000")
			size := len(oneBatch(0, batch, from))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				entries := oneBatch(1, batch, from)
				for pb.Next() {
					if err := l.Write(entries); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := l.Stats()
			b.ReportMetric(float64(st.Fsyncs)/float64(b.N), "fsyncs/op")
		})
	}
}

func oneBatch(seq uint64, n int, from netip.AddrPort) []byte {
	var b []byte
	for i := range n {
		// 80 bytes or so: an AT line of a client of the herd.
		line := fmt.Sprintf("AT Farmar +0.263873386 client-%04d +34.068930-118.445127 1621464827.959498503", i)
		b = herdwal.AppendRecord(b, seq+uint64(i), 1621464828000000000, from, []byte(line))
	}
	return b
}

func BenchmarkAppendRecord(b *testing.B) {
	line := []byte("AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	from := netip.MustParseAddrPort("192.0.2.7:40000")
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = herdwal.AppendRecord(dst[:0], 1, 2, from, line)
	}
}
