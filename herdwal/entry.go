package herdwal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"slices"
)

// Record is one stored client record as the log keeps it.
type Record struct {
	// Seq is this server's number for the record.
	Seq uint64
	// Arrived is when it was received, in Unix nanoseconds.
	Arrived int64
	// From is the remote address it came from; the zero value when unknown.
	From netip.AddrPort
	// Line is the AT line, without a newline. It is valid only during the
	// call that gets it: recovery reuses its memory for the next record.
	Line []byte
}

// Entry types. The values are stored on disk: never renumber them.
const (
	typeSegmentHeader  byte = 1
	typeRecord         byte = 2
	typeCursor         byte = 3
	typeClosed         byte = 4
	typeSnapshotHeader byte = 5
	typeSnapshotEnd    byte = 6
)

// Entry framing and limits.
const (
	// entryHeaderBytes is the length and checksum in front of every entry.
	entryHeaderBytes = 8

	// MaxLineBytes is the longest Line a record can always have. Recovery
	// reads the length of an entry larger than such a record as damage, so
	// that a corrupt length never makes it allocate more; Write refuses
	// such entries rather than write what recovery would cut.
	MaxLineBytes = 1 << 20

	// recordFixedBytes is a record's payload without its line, at most:
	// seq, arrived, the from length, a 16-byte address and a port.
	recordFixedBytes = 8 + 8 + 1 + 16 + 2

	// maxEntryBytes is the greatest length an entry may have (its type and
	// payload). Every kind of entry fits in it.
	maxEntryBytes = 1 + recordFixedBytes + MaxLineBytes

	// maxShortBytes bounds the strings stored with a one-byte length:
	// epochs and boot ids.
	maxShortBytes = 255

	// formatVersion is the version of segment and snapshot headers, which
	// is also the one in meta.
	formatVersion = 1
)

// Magic numbers of segment and snapshot headers: a file of another kind (or
// of another program) put in the directory reads as damage, not as data.
var (
	segmentMagic  = [4]byte{'H', 'R', 'D', 'L'}
	snapshotMagic = [4]byte{'H', 'R', 'D', 'S'}
)

// castagnoli is computed once: building the table on every call would cost
// more than checksumming an entry.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendRecord appends the encoded log entry of one record to dst and returns
// it. It allocates nothing when dst has room for the entry. A zone of from's
// address is not kept. A line longer than MaxLineBytes may make an entry
// that Write refuses.
func AppendRecord(dst []byte, seq uint64, arrived int64, from netip.AddrPort, line []byte) []byte {
	fromBytes := 0
	if from.Addr().IsValid() {
		fromBytes = 18
		if from.Addr().Is4() {
			fromBytes = 6
		}
	}
	n := entryHeaderBytes + 1 + 8 + 8 + 1 + fromBytes + len(line)
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	b := dst[start+entryHeaderBytes:]
	b[0] = typeRecord
	binary.LittleEndian.PutUint64(b[1:], seq)
	binary.LittleEndian.PutUint64(b[9:], uint64(arrived))
	b[17] = byte(fromBytes)
	p := 18
	switch fromBytes {
	case 6:
		a := from.Addr().As4()
		copy(b[p:], a[:])
		p += 4
	case 18:
		a := from.Addr().As16()
		copy(b[p:], a[:])
		p += 16
	}
	if fromBytes != 0 {
		binary.LittleEndian.PutUint16(b[p:], from.Port())
		p += 2
	}
	copy(b[p:], line)
	sealEntry(dst[start:])
	return dst
}

// sealEntry fills in the length and checksum of the one entry e, whose type
// and payload are in place behind its header.
func sealEntry(e []byte) {
	body := e[entryHeaderBytes:]
	binary.LittleEndian.PutUint32(e[0:], uint32(len(body)))
	binary.LittleEndian.PutUint32(e[4:], crc32.Checksum(body, castagnoli))
}

// appendEntry appends an entry of type typ whose payload is what fill
// appends to its argument.
func appendEntry(dst []byte, typ byte, fill func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, entryHeaderBytes)...)
	dst = append(dst, typ)
	if fill != nil {
		dst = fill(dst)
	}
	sealEntry(dst[start:])
	return dst
}

// appendShort appends s with a one-byte length; s must be at most
// maxShortBytes long.
func appendShort(dst []byte, s string) []byte {
	dst = append(dst, byte(len(s)))
	return append(dst, s...)
}

// segmentHeader is the first entry of every segment.
type segmentHeader struct {
	num    uint64
	epoch  string
	bootID string
}

func appendSegmentHeader(dst []byte, h segmentHeader) []byte {
	return appendEntry(dst, typeSegmentHeader, func(b []byte) []byte {
		b = append(b, segmentMagic[:]...)
		b = append(b, formatVersion)
		b = binary.LittleEndian.AppendUint64(b, h.num)
		b = appendShort(b, h.epoch)
		return appendShort(b, h.bootID)
	})
}

// snapshotHeader is the first entry of every snapshot.
type snapshotHeader struct {
	num   uint64
	epoch string
}

func appendSnapshotHeader(dst []byte, h snapshotHeader) []byte {
	return appendEntry(dst, typeSnapshotHeader, func(b []byte) []byte {
		b = append(b, snapshotMagic[:]...)
		b = append(b, formatVersion)
		b = binary.LittleEndian.AppendUint64(b, h.num)
		return appendShort(b, h.epoch)
	})
}

// snapshotEnd is the last entry of a complete snapshot.
type snapshotEnd struct {
	records uint64
	maxSeq  uint64
}

func appendSnapshotEnd(dst []byte, e snapshotEnd) []byte {
	return appendEntry(dst, typeSnapshotEnd, func(b []byte) []byte {
		b = binary.LittleEndian.AppendUint64(b, e.records)
		return binary.LittleEndian.AppendUint64(b, e.maxSeq)
	})
}

// appendCursor appends a cursor entry. The caller checks that c.Epoch is at
// most maxShortBytes long and that the entry fits in maxEntryBytes.
func appendCursor(dst []byte, peer string, c Cursor) []byte {
	return appendEntry(dst, typeCursor, func(b []byte) []byte {
		b = binary.LittleEndian.AppendUint64(b, c.Seq)
		b = appendShort(b, c.Epoch)
		return append(b, peer...)
	})
}

// cursorEntryBytes is the length of the entry appendCursor makes.
func cursorEntryBytes(peer string, c Cursor) int {
	return entryHeaderBytes + 1 + 8 + 1 + len(c.Epoch) + len(peer)
}

func appendClosed(dst []byte) []byte {
	return appendEntry(dst, typeClosed, nil)
}

// errMalformed is returned by the payload decoders: the entry's checksum held,
// so what it holds was written that way, but not by this version.
var errMalformed = errors.New("malformed")

// readShort reads a string with a one-byte length from the front of b.
func readShort(b []byte) (string, []byte, error) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", nil, errMalformed
	}
	n := int(b[0])
	return string(b[1 : 1+n]), b[1+n:], nil
}

func decodeSegmentHeader(p []byte) (segmentHeader, error) {
	var h segmentHeader
	if len(p) < 4+1+8 || [4]byte(p[:4]) != segmentMagic || p[4] != formatVersion {
		return h, errMalformed
	}
	h.num = binary.LittleEndian.Uint64(p[5:])
	var err error
	rest := p[13:]
	if h.epoch, rest, err = readShort(rest); err != nil {
		return h, err
	}
	if h.bootID, rest, err = readShort(rest); err != nil {
		return h, err
	}
	if len(rest) != 0 {
		return h, errMalformed
	}
	return h, nil
}

func decodeSnapshotHeader(p []byte) (snapshotHeader, error) {
	var h snapshotHeader
	if len(p) < 4+1+8 || [4]byte(p[:4]) != snapshotMagic || p[4] != formatVersion {
		return h, errMalformed
	}
	h.num = binary.LittleEndian.Uint64(p[5:])
	var err error
	rest := p[13:]
	if h.epoch, rest, err = readShort(rest); err != nil {
		return h, err
	}
	if len(rest) != 0 {
		return h, errMalformed
	}
	return h, nil
}

func decodeSnapshotEnd(p []byte) (snapshotEnd, error) {
	if len(p) != 16 {
		return snapshotEnd{}, errMalformed
	}
	return snapshotEnd{records: binary.LittleEndian.Uint64(p), maxSeq: binary.LittleEndian.Uint64(p[8:])}, nil
}

func decodeCursor(p []byte) (string, Cursor, error) {
	if len(p) < 8 {
		return "", Cursor{}, errMalformed
	}
	c := Cursor{Seq: binary.LittleEndian.Uint64(p)}
	epoch, rest, err := readShort(p[8:])
	if err != nil {
		return "", Cursor{}, err
	}
	c.Epoch = epoch
	return string(rest), c, nil
}

// decodeRecord decodes a record's payload. Its Line is p's memory.
func decodeRecord(p []byte) (Record, error) {
	var r Record
	if len(p) < 17 {
		return r, errMalformed
	}
	r.Seq = binary.LittleEndian.Uint64(p)
	r.Arrived = int64(binary.LittleEndian.Uint64(p[8:]))
	fromBytes := int(p[16])
	rest := p[17:]
	if len(rest) < fromBytes {
		return r, errMalformed
	}
	switch fromBytes {
	case 0:
	case 6:
		r.From = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[:4])), binary.LittleEndian.Uint16(rest[4:]))
	case 18:
		r.From = netip.AddrPortFrom(netip.AddrFrom16([16]byte(rest[:16])), binary.LittleEndian.Uint16(rest[16:]))
	default:
		return r, errMalformed
	}
	r.Line = rest[fromBytes:]
	return r, nil
}

// entryError is an entry that cannot be read: where it starts and what is
// wrong with it. Recovery cuts a segment there.
type entryError struct {
	offset  int64
	problem string
}

func (e *entryError) Error() string {
	return fmt.Sprintf("offset %d: %s", e.offset, e.problem)
}

// Problems an entry can have, as Damage reports them.
const (
	problemTorn     = "torn record at the end"
	problemZero     = "zero length (zero-filled or overwritten)"
	problemLength   = "length beyond the greatest an entry may have"
	problemChecksum = "checksum mismatch"
)

// entryReader reads the entries of one file in order. It never reads a
// length it has not bounded by what is left of the file and by
// maxEntryBytes, so a corrupt length cannot make it allocate.
type entryReader struct {
	r    *bufio.Reader
	size int64 // of the file
	off  int64 // where the next entry starts
	buf  []byte
}

// readBufferBytes is the read buffer of recovery: large enough that reading
// a segment costs few system calls, small next to the table being restored.
const readBufferBytes = 256 << 10

func newEntryReader(r io.Reader, size int64) *entryReader {
	return &entryReader{r: bufio.NewReaderSize(r, readBufferBytes), size: size}
}

// next returns the type and payload of the next entry, which stay valid until
// the next call. At the end of the file it returns io.EOF; for an entry that
// cannot be read, an *entryError; for a failure to read, that error.
func (er *entryReader) next() (byte, []byte, error) {
	left := er.size - er.off
	if left == 0 {
		return 0, nil, io.EOF
	}
	if left < entryHeaderBytes {
		return 0, nil, &entryError{er.off, problemTorn}
	}
	var hdr [entryHeaderBytes]byte
	if _, err := io.ReadFull(er.r, hdr[:]); err != nil {
		return 0, nil, er.readError(err)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[:]))
	sum := binary.LittleEndian.Uint32(hdr[4:])
	switch {
	case n == 0:
		return 0, nil, &entryError{er.off, problemZero}
	case n > maxEntryBytes:
		return 0, nil, &entryError{er.off, problemLength}
	case n > left-entryHeaderBytes:
		return 0, nil, &entryError{er.off, problemTorn}
	}
	if int64(cap(er.buf)) < n {
		er.buf = make([]byte, n)
	}
	body := er.buf[:n]
	if _, err := io.ReadFull(er.r, body); err != nil {
		return 0, nil, er.readError(err)
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, nil, &entryError{er.off, problemChecksum}
	}
	er.off += entryHeaderBytes + n
	return body[0], body[1:], nil
}

// readError reports a file that ended before the size it had when opened, or
// could not be read.
func (er *entryReader) readError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("reading at offset %d: file shrank while being read", er.off)
	}
	return fmt.Errorf("reading at offset %d: %w", er.off, err)
}
