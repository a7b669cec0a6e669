// Package herdstore is the herd's client table: the newest known AT record of
// every client, ordered last-writer-wins with a deterministic tie-break so
// that every server converges on the same record.
package herdstore

import (
	"strings"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// Record is one client's last known location: the AT line its origin server
// produced, fields joined by single spaces, without a line terminator.
// Client and Time are substrings of Line and cost no extra memory.
type Record struct {
	Line   string
	Client string
	Time   string

	// Arrived is when this server received the record, in Unix
	// nanoseconds, and From the remote address it came from; neither takes
	// part in ordering. From points to a string shared by every record of
	// one connection.
	Arrived int64
	From    *string
}

// NewRecord makes a record from a valid, normalized AT line
// (`AT <server> <skew> <client> <location> <time>`, single spaces).
func NewRecord(line string) Record {
	rest := line
	var fields [6]string
	for i := 0; i < 5; i++ {
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			break
		}
		fields[i], rest = rest[:j], rest[j+1:]
	}
	fields[5] = rest
	return Record{Line: line, Client: fields[protocol.ATClient], Time: fields[protocol.ATTime]}
}

// NewerThan reports whether r wins over old: a later client time, or on equal
// times the byte-wise greater line.
func (r Record) NewerThan(old Record) bool {
	switch protocol.CompareTime(r.Time, old.Time) {
	case 1:
		return true
	case -1:
		return false
	}
	return r.Line > old.Line
}
