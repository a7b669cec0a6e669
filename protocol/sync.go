package protocol

import (
	"bytes"
	"strconv"
)

// The catch-up exchange, spoken on a peer link only after both sides agreed
// to (every line starts with `HERD`, which a classic server answers `? <line>`):
//
//	HERD 1 HELLO <name> <epoch>              the link's first line: who sends, and its numbering
//	HERD 1 SINCE <epoch> <seq> others|all    the peer's answer: send what you numbered after seq
//	HERD 1 THROUGH <seq>                     the link: every record up to seq you need was sent
//
// A server numbers the records it stores (seq) within an epoch, which changes
// when its data directory is created afresh. SINCE names the epoch the peer
// knows the sender's numbering in, `-` and 0 when it knows none; `others`
// asks for the records the peer did not make itself, `all` for its own too
// (it may have lost some).

// SyncVersion is the version of the catch-up exchange this server speaks.
const SyncVersion = "1"

// NoEpoch is the epoch of a SINCE that knows no numbering of the sender.
const NoEpoch = "-"

// maxEpochBytes bounds an epoch: a server stores its peers' epochs.
const maxEpochBytes = 64

// SyncKind is which line of the catch-up exchange a message is.
type SyncKind int

// The lines of the catch-up exchange.
const (
	SyncHello SyncKind = iota + 1
	SyncSince
	SyncThrough
)

// Sync is a parsed line of the catch-up exchange. Each kind sets only its own
// fields.
type Sync struct {
	Kind  SyncKind
	Name  []byte // HELLO: the sending server's herd name
	Epoch []byte // HELLO: the sender's epoch; SINCE: the epoch the peer knows, or NoEpoch
	Seq   uint64 // SINCE, THROUGH
	All   bool   // SINCE: the peer wants the records it made, too
}

var (
	wordHERD    = []byte("HERD")
	wordHELLO   = []byte("HELLO")
	wordSINCE   = []byte("SINCE")
	wordTHROUGH = []byte("THROUGH")
	wordOthers  = []byte("others")
	wordAll     = []byte("all")
)

// ParseSync parses the fields of a line of the catch-up exchange, of this
// version, and reports whether it is one.
func ParseSync(fields [][]byte) (Sync, bool) {
	if len(fields) < 3 || !bytes.Equal(fields[0], wordHERD) || string(fields[1]) != SyncVersion {
		return Sync{}, false
	}
	switch {
	case bytes.Equal(fields[2], wordHELLO) && len(fields) == 5 && validEpoch(fields[4]) && string(fields[4]) != NoEpoch:
		return Sync{Kind: SyncHello, Name: fields[3], Epoch: fields[4]}, true
	case bytes.Equal(fields[2], wordSINCE) && len(fields) == 6 && validEpoch(fields[3]):
		seq, ok := parseSeq(fields[4])
		all := bytes.Equal(fields[5], wordAll)
		if !ok || (!all && !bytes.Equal(fields[5], wordOthers)) {
			return Sync{}, false
		}
		return Sync{Kind: SyncSince, Epoch: fields[3], Seq: seq, All: all}, true
	case bytes.Equal(fields[2], wordTHROUGH) && len(fields) == 4:
		seq, ok := parseSeq(fields[3])
		if !ok {
			return Sync{}, false
		}
		return Sync{Kind: SyncThrough, Seq: seq}, true
	}
	return Sync{}, false
}

// validEpoch accepts NoEpoch and up to maxEpochBytes letters, digits, `-`
// and `_`: what a data directory's epoch is made of, and nothing a log or a
// file could misread.
func validEpoch(b []byte) bool {
	if len(b) == 0 || len(b) > maxEpochBytes {
		return false
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidEpoch reports whether epoch can be sent in the catch-up exchange.
func ValidEpoch(epoch string) bool {
	return validEpoch([]byte(epoch)) && epoch != NoEpoch
}

// parseSeq parses a record number: decimal digits that fit in 64 bits.
func parseSeq(b []byte) (uint64, bool) {
	if !isDigits(b) || len(b) > 20 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	return n, err == nil
}

// AppendHello appends the HELLO line, with its newline, of a server named
// name numbering its records in epoch.
func AppendHello(dst []byte, name, epoch string) []byte {
	dst = append(dst, "HERD "+SyncVersion+" HELLO "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, epoch...)
	return append(dst, '\n')
}

// AppendSince appends the SINCE line, with its newline: epoch and seq are
// where the peer's knowledge of the sender's numbering ends (NoEpoch and 0
// for none), all whether it wants its own records too.
func AppendSince(dst []byte, epoch string, seq uint64, all bool) []byte {
	dst = append(dst, "HERD "+SyncVersion+" SINCE "...)
	dst = append(dst, epoch...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, seq, 10)
	if all {
		dst = append(dst, " all"...)
	} else {
		dst = append(dst, " others"...)
	}
	return append(dst, '\n')
}

// AppendThrough appends the THROUGH line, with its newline.
func AppendThrough(dst []byte, seq uint64) []byte {
	dst = append(dst, "HERD "+SyncVersion+" THROUGH "...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '\n')
}
