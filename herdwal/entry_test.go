package herdwal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestAppendRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		from netip.AddrPort
		want netip.AddrPort // as decoded
		line string
	}{
		{"no address", netip.AddrPort{}, netip.AddrPort{}, "AT S +0.000000001 client-7 +34.068930-118.445127 1795633160.000000042"},
		{"IPv4", netip.MustParseAddrPort("192.0.2.7:12000"), netip.MustParseAddrPort("192.0.2.7:12000"), "AT S +0.1 kiwi +1+1 1"},
		{"IPv6", netip.MustParseAddrPort("[2001:db8::1]:443"), netip.MustParseAddrPort("[2001:db8::1]:443"), "AT S +0.1 kiwi +1+1 1"},
		{"IPv4 in IPv6", netip.MustParseAddrPort("[::ffff:192.0.2.7]:1"), netip.MustParseAddrPort("[::ffff:192.0.2.7]:1"), "x"},
		{"zone dropped", netip.MustParseAddrPort("[fe80::1%eth0]:2"), netip.MustParseAddrPort("[fe80::1]:2"), "x"},
		{"port zero", netip.MustParseAddrPort("192.0.2.7:0"), netip.MustParseAddrPort("192.0.2.7:0"), "x"},
		{"empty line", netip.AddrPort{}, netip.AddrPort{}, ""},
		{"longest line", netip.MustParseAddrPort("[2001:db8::1]:443"), netip.MustParseAddrPort("[2001:db8::1]:443"), strings.Repeat("a", MaxLineBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			b := AppendRecord(bytes.Clone(prefix), 1<<40+3, -5, tt.from, []byte(tt.line))
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("AppendRecord changed what dst held")
			}
			er := newEntryReader(bytes.NewReader(b[len(prefix):]), int64(len(b)-len(prefix)))
			typ, p, err := er.next()
			if err != nil || typ != typeRecord {
				t.Fatalf("next: type %d, %v", typ, err)
			}
			r, err := decodeRecord(p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Seq != 1<<40+3 || r.Arrived != -5 || r.From != tt.want || string(r.Line) != tt.line {
				t.Errorf("decoded %d %d %v %.40q, want %d %d %v %.40q", r.Seq, r.Arrived, r.From, r.Line, uint64(1<<40+3), -5, tt.want, tt.line)
			}
			if _, _, err := er.next(); err != io.EOF {
				t.Errorf("after the entry: %v, want EOF", err)
			}
			if n, err := countRecords(b[len(prefix):]); n != 1 || err != nil {
				t.Errorf("countRecords: %d, %v; want 1, nil", n, err)
			}
		})
	}
}

func TestAppendRecordAllocatesNothingWithRoom(t *testing.T) {
	dst := make([]byte, 0, 4096)
	from := netip.MustParseAddrPort("[2001:db8::1]:443")
	line := []byte("AT S +0.000000001 client-7 +34.068930-118.445127 1795633160.000000042")
	allocs := testing.AllocsPerRun(1000, func() {
		dst = AppendRecord(dst[:0], 7, 8, from, line)
	})
	if allocs != 0 {
		t.Errorf("AppendRecord allocated %v times per call with room in dst", allocs)
	}
}

// entryAt makes an entry of type typ with payload p, framed as on disk.
func entryOf(typ byte, p []byte) []byte {
	return appendEntry(nil, typ, func(b []byte) []byte { return append(b, p...) })
}

func TestEntryReaderProblems(t *testing.T) {
	good := entryOf(typeClosed, nil)
	rec := AppendRecord(nil, 1, 2, netip.AddrPort{}, []byte("line"))
	badSum := bytes.Clone(rec)
	badSum[len(badSum)-1] ^= 1
	long := make([]byte, 8)
	binary.LittleEndian.PutUint32(long, maxEntryBytes+1)
	pastEnd := bytes.Clone(rec)
	binary.LittleEndian.PutUint32(pastEnd, uint32(len(rec)))
	tests := []struct {
		name    string
		file    []byte
		problem string
	}{
		{"zero-filled", append(bytes.Clone(good), make([]byte, 4096)...), problemZero},
		{"torn header", append(bytes.Clone(good), rec[:5]...), problemTorn},
		{"torn payload", append(bytes.Clone(good), rec[:len(rec)-1]...), problemTorn},
		{"length past the end", append(bytes.Clone(good), pastEnd...), problemTorn},
		{"length beyond the limit", append(bytes.Clone(good), append(long, make([]byte, 64)...)...), problemLength},
		{"checksum", append(bytes.Clone(good), badSum...), problemChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			er := newEntryReader(bytes.NewReader(tt.file), int64(len(tt.file)))
			if typ, _, err := er.next(); err != nil || typ != typeClosed {
				t.Fatalf("first entry: type %d, %v", typ, err)
			}
			_, _, err := er.next()
			var ee *entryError
			if !errors.As(err, &ee) {
				t.Fatalf("second entry: %v, want an entry error", err)
			}
			if ee.offset != int64(len(good)) || ee.problem != tt.problem {
				t.Errorf("error at offset %d, %q; want offset %d, %q", ee.offset, ee.problem, len(good), tt.problem)
			}
		})
	}
}

func TestCountRecordsRefuses(t *testing.T) {
	rec := AppendRecord(nil, 1, 2, netip.AddrPort{}, []byte("line"))
	tests := []struct {
		name    string
		entries []byte
	}{
		{"partial entry", rec[:len(rec)-1]},
		{"partial header", append(bytes.Clone(rec), rec[:3]...)},
		{"zero length", append(bytes.Clone(rec), make([]byte, 9)...)},
		{"not a record", append(bytes.Clone(rec), entryOf(typeClosed, nil)...)},
		{"too long a line", AppendRecord(nil, 1, 2, netip.AddrPort{}, make([]byte, MaxLineBytes+recordFixedBytes))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n, err := countRecords(tt.entries); err == nil {
				t.Errorf("countRecords accepted it as %d records", n)
			}
		})
	}
}

// reencode encodes a decoded entry again, as the log would have written it.
func reencode(typ byte, p []byte) ([]byte, bool) {
	switch typ {
	case typeRecord:
		r, err := decodeRecord(p)
		if err != nil {
			return nil, false
		}
		return AppendRecord(nil, r.Seq, r.Arrived, r.From, r.Line), true
	case typeCursor:
		peer, c, err := decodeCursor(p)
		if err != nil {
			return nil, false
		}
		return appendCursor(nil, peer, c), true
	case typeSegmentHeader:
		h, err := decodeSegmentHeader(p)
		if err != nil {
			return nil, false
		}
		return appendSegmentHeader(nil, h), true
	case typeSnapshotHeader:
		h, err := decodeSnapshotHeader(p)
		if err != nil {
			return nil, false
		}
		return appendSnapshotHeader(nil, h), true
	case typeSnapshotEnd:
		e, err := decodeSnapshotEnd(p)
		if err != nil {
			return nil, false
		}
		return appendSnapshotEnd(nil, e), true
	case typeClosed:
		if len(p) != 0 {
			return nil, false
		}
		return appendClosed(nil), true
	}
	return nil, false
}

func FuzzEntries(f *testing.F) {
	var seg []byte
	seg = appendSegmentHeader(seg, segmentHeader{num: 3, epoch: "0123456789abcdef", bootID: "boot"})
	seg = AppendRecord(seg, 1, 2, netip.MustParseAddrPort("192.0.2.1:5"), []byte("AT S +0.1 kiwi +1+1 1"))
	seg = AppendRecord(seg, 2, 3, netip.MustParseAddrPort("[2001:db8::1]:6"), []byte("AT S +0.1 pear +1+1 2"))
	seg = appendCursor(seg, "Meeks", Cursor{Epoch: "fedcba9876543210", Seq: 99})
	seg = appendClosed(seg)
	var snap []byte
	snap = appendSnapshotHeader(snap, snapshotHeader{num: 3, epoch: "e"})
	snap = appendCursor(snap, "", Cursor{})
	snap = AppendRecord(snap, 1, 2, netip.AddrPort{}, nil)
	snap = appendSnapshotEnd(snap, snapshotEnd{records: 1, maxSeq: 1})
	f.Add(seg)
	f.Add(snap)
	f.Add(seg[:len(seg)-3])
	f.Add(append(bytes.Clone(seg), make([]byte, 100)...))
	flipped := bytes.Clone(seg)
	flipped[40] ^= 0x10
	f.Add(flipped)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		er := newEntryReader(bytes.NewReader(data), int64(len(data)))
		for {
			off := er.off
			typ, p, err := er.next()
			if err == io.EOF {
				if off != int64(len(data)) {
					t.Fatalf("EOF at offset %d of %d", off, len(data))
				}
				return
			}
			if err != nil {
				var ee *entryError
				if !errors.As(err, &ee) || ee.offset != off {
					t.Fatalf("error %v at offset %d", err, off)
				}
				return
			}
			raw := data[off:er.off]
			if got := entryOf(typ, p); !bytes.Equal(got, raw) {
				t.Fatalf("entry at %d re-frames to %x, was %x", off, got, raw)
			}
			if got, ok := reencode(typ, p); ok && !bytes.Equal(got, raw) {
				t.Fatalf("entry of type %d at %d re-encodes to %x, was %x", typ, off, got, raw)
			}
		}
	})
}
