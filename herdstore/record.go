// Package herdstore is the herd's client table: the newest known AT record of
// every client, ordered last-writer-wins with a deterministic tie-break so
// that every server converges on the same record.
package herdstore

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"unsafe"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// Record is one client's last known location: the AT line its origin server
// produced, fields joined by single spaces, without a line terminator, and
// where this server got it from.
//
// A record is one string: a small header, the line, then its Origin packed
// behind it. A stored client then costs one allocation, and the table's key
// (the client ID) is a substring of it; at a million clients every byte per
// record shows in the server's memory. The header holds what a table put
// compares (the client ID's place and the client time's key), so that a put
// reads only the first bytes of the record it replaces.
type Record struct {
	packed string
}

// Origin is where a server got a record: when, in Unix nanoseconds, and from
// which remote address. It takes no part in ordering records.
type Origin struct {
	Arrived int64
	From    netip.AddrPort
}

// Packed layout. Header: the client time's protocol.TimeKey (8 bytes,
// little-endian; 0 when the time has none), the client ID's offset in the
// line and its length (1 byte each; both 0 when either exceeds 255). Then the
// line. After the line: arrived (8 bytes, little-endian), the remote address
// (0, 4 or 16 bytes), the port (2 bytes, only with an address), and finally
// the length of the address and port (1 byte).
const (
	keyBytes       = 8
	clientOffset   = keyBytes
	clientLength   = keyBytes + 1
	headerBytes    = keyBytes + 2
	arrivedBytes   = 8
	maxClientPlace = 255
)

// MakeRecord makes a record from a valid, normalized AT line
// (`AT <server> <skew> <client> <location> <time>`, single spaces), copying
// line, with one allocation.
func MakeRecord(line []byte, o Origin) Record {
	return recordOf(appendRecord(nil, line, o))
}

// MakeRecordOfFields makes the same record as MakeRecord of the fields of a
// valid AT message (protocol.Classify returned AT) joined by single spaces,
// without joining them first: the fields already place the client ID and the
// time, which MakeRecord would look for again in the line.
func MakeRecordOfFields(fields [][]byte, o Origin) Record {
	return recordOf(appendRecordOfFields(nil, fields, o))
}

// recordOf returns a record that reads b: it holds only while b is not
// written.
func recordOf(b []byte) Record {
	return Record{packed: unsafe.String(unsafe.SliceData(b), len(b))}
}

func appendRecord(dst, line []byte, o Origin) []byte {
	off, size := clientPlace(line)
	timeKey := protocol.TimeKey(line[bytes.LastIndexByte(line, ' ')+1:])
	return appendPacked(dst, timeKey, off, size, [][]byte{line}, o)
}

func appendRecordOfFields(dst []byte, fields [][]byte, o Origin) []byte {
	off := protocol.ATClient // a space after each field before the client's
	for _, f := range fields[:protocol.ATClient] {
		off += len(f)
	}
	return appendPacked(dst, protocol.TimeKey(fields[protocol.ATTime]), off, len(fields[protocol.ATClient]), fields, o)
}

// appendPacked appends to dst the packed record of the line that parts,
// joined by single spaces, form, with the client time's key and the client
// ID's place in the line. Given a nil dst, it allocates once.
func appendPacked(dst []byte, timeKey uint64, clientOff, clientLen int, parts [][]byte, o Origin) []byte {
	lineBytes := len(parts) - 1
	for _, part := range parts {
		lineBytes += len(part)
	}
	var from [18]byte
	n := 0
	if o.From.IsValid() {
		addr := o.From.Addr().Unmap()
		if addr.Is4() {
			a := addr.As4()
			n = copy(from[:], a[:])
		} else {
			a := addr.As16()
			n = copy(from[:], a[:])
		}
		binary.LittleEndian.PutUint16(from[n:], o.From.Port())
		n += 2
	}
	var header [headerBytes]byte
	binary.LittleEndian.PutUint64(header[:keyBytes], timeKey)
	if clientOff <= maxClientPlace && clientLen <= maxClientPlace {
		header[clientOffset], header[clientLength] = byte(clientOff), byte(clientLen)
	}
	if need := headerBytes + lineBytes + arrivedBytes + n + 1; cap(dst)-len(dst) < need {
		// Not slices.Grow: the race detector's build makes that two
		// allocations.
		grown := make([]byte, len(dst), len(dst)+need)
		copy(grown, dst)
		dst = grown
	}
	dst = append(dst, header[:]...)
	for i, part := range parts {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, part...)
	}
	dst = binary.LittleEndian.AppendUint64(dst, uint64(o.Arrived))
	dst = append(dst, from[:n]...)
	return append(dst, byte(n))
}

// clientPlace returns the offset and length of the client ID, the fourth
// field, in line; a length of 0 if line has fewer fields.
func clientPlace[T ~string | ~[]byte](line T) (offset, length int) {
	rest := line
	for range 3 {
		i := indexSpace(rest)
		if i < 0 {
			return 0, 0
		}
		offset += i + 1
		rest = rest[i+1:]
	}
	if i := indexSpace(rest); i >= 0 {
		return offset, i
	}
	return offset, len(rest)
}

func indexSpace[T ~string | ~[]byte](s T) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return i
		}
	}
	return -1
}

// NewRecord makes a record of line with no origin.
func NewRecord(line string) Record {
	return MakeRecord([]byte(line), Origin{})
}

// Clone returns a copy of r that holds after the memory r reads is
// reused: of a record a Scratch made, say.
func (r Record) Clone() Record { return Record{packed: strings.Clone(r.packed)} }

// IsZero reports whether r is the zero Record, which holds no line.
func (r Record) IsZero() bool { return r.packed == "" }

// trailer returns the length of what follows the line.
func (r Record) trailer() int {
	if r.packed == "" {
		return 0
	}
	return arrivedBytes + int(r.packed[len(r.packed)-1]) + 1
}

// Line returns the AT line.
func (r Record) Line() string {
	if r.packed == "" {
		return ""
	}
	return r.packed[headerBytes : len(r.packed)-r.trailer()]
}

// Server returns the origin server's name, the second field of the line.
func (r Record) Server() string {
	line := r.Line()
	if len(line) < 3 {
		return ""
	}
	rest := line[3:] // after "AT "
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		return rest[:i]
	}
	return rest
}

// Client returns the client ID, the fourth field of the line. It reads only
// the header and the start of the line when the ID's place is in the header.
func (r Record) Client() string {
	if r.packed == "" {
		return ""
	}
	if size := int(r.packed[clientLength]); size > 0 {
		off := headerBytes + int(r.packed[clientOffset])
		return r.packed[off : off+size]
	}
	line := r.Line()
	off, size := clientPlace(line)
	return line[off : off+size]
}

// timeKey returns the client time's key, 0 if it has none.
func (r Record) timeKey() uint64 {
	if r.packed == "" {
		return 0
	}
	return binary.LittleEndian.Uint64([]byte(r.packed[:keyBytes]))
}

// Time returns the client's time, the last field of the line.
func (r Record) Time() string {
	line := r.Line()
	return line[strings.LastIndexByte(line, ' ')+1:]
}

// Origin returns where this server got the record.
func (r Record) Origin() Origin {
	if r.packed == "" {
		return Origin{}
	}
	n := int(r.packed[len(r.packed)-1])
	tail := r.packed[len(r.packed)-1-n-arrivedBytes : len(r.packed)-1]
	o := Origin{Arrived: int64(binary.LittleEndian.Uint64([]byte(tail[:arrivedBytes])))}
	from := []byte(tail[arrivedBytes:])
	switch n {
	case 4 + 2:
		o.From = netip.AddrPortFrom(netip.AddrFrom4([4]byte(from[:4])), binary.LittleEndian.Uint16(from[4:]))
	case 16 + 2:
		o.From = netip.AddrPortFrom(netip.AddrFrom16([16]byte(from[:16])), binary.LittleEndian.Uint16(from[16:]))
	}
	return o
}

// NewerThan reports whether r wins over old: a later client time, or on equal
// times the byte-wise greater line.
func (r Record) NewerThan(old Record) bool {
	if a, b := r.timeKey(), old.timeKey(); a != 0 && b != 0 && a != b {
		return a > b
	}
	switch protocol.CompareTime(r.Time(), old.Time()) {
	case 1:
		return true
	case -1:
		return false
	}
	return r.Line() > old.Line()
}
