// Package protocol parses and formats the herd's line protocol: IAMAT and
// WHATSAT from clients, AT between servers. Parsing works on byte slices and
// allocates nothing on the hot path; callers own every buffer.
package protocol

import "bytes"

// isSpace reports whether c is protocol whitespace. The set is exactly the six
// ASCII characters of the contract: Unicode spaces such as U+00A0 are part of a
// field, so two servers always agree on where fields start and end.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\f', '\v':
		return true
	}
	return false
}

// TrimSpace returns line without leading and trailing protocol whitespace.
func TrimSpace(line []byte) []byte {
	start, end := 0, len(line)
	for start < end && isSpace(line[start]) {
		start++
	}
	for end > start && isSpace(line[end-1]) {
		end--
	}
	return line[start:end]
}

// Fields splits line on runs of protocol whitespace, appending the fields to
// dst[:0] so that a caller reusing dst allocates nothing.
func Fields(dst [][]byte, line []byte) [][]byte {
	dst = dst[:0]
	i := 0
	for i < len(line) {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		start := i
		for i < len(line) && !isSpace(line[i]) {
			i++
		}
		if i > start {
			dst = append(dst, line[start:i])
		}
	}
	return dst
}

// nextField returns the first field of line, empty if there is none, and
// what follows it.
func nextField(line []byte) (field, rest []byte) {
	i := 0
	for i < len(line) && isSpace(line[i]) {
		i++
	}
	start := i
	for i < len(line) && !isSpace(line[i]) {
		i++
	}
	return line[start:i], line[i:]
}

// UpdatedClient returns the client field of a line that may update the
// client table, an IAMAT or an AT, or nil for any other line. It does not
// validate the line: it names what to look up ahead of handling the line.
func UpdatedClient(line []byte) []byte {
	word, rest := nextField(line)
	var skip int
	switch {
	case bytes.Equal(word, wordIAMAT):
		skip = IAMATClient - 1
	case bytes.Equal(word, wordAT):
		skip = ATClient - 1
	default:
		return nil
	}
	for ; skip > 0; skip-- {
		_, rest = nextField(rest)
	}
	if client, _ := nextField(rest); len(client) > 0 {
		return client
	}
	return nil
}
