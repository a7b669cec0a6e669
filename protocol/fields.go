// Package protocol parses and formats the herd's line protocol: IAMAT and
// WHATSAT from clients, AT between servers. Parsing works on byte slices and
// allocates nothing on the hot path; callers own every buffer.
package protocol

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
