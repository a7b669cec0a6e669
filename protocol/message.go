package protocol

import "bytes"

// Command is what a valid message asks for.
type Command int

// The commands of the protocol. Invalid is any line that is not exactly one of
// the others, with every field valid.
const (
	Invalid Command = iota
	IAMAT
	WHATSAT
	AT
	// HERD is a line of the catch-up exchange between peers (see ParseSync).
	HERD
)

// String returns the command's wire name.
func (c Command) String() string {
	switch c {
	case IAMAT:
		return "IAMAT"
	case WHATSAT:
		return "WHATSAT"
	case AT:
		return "AT"
	case HERD:
		return "HERD"
	}
	return "invalid"
}

// Field positions of each message.
const (
	IAMATClient   = 1
	IAMATLocation = 2
	IAMATTime     = 3

	WHATSATClient = 1
	WHATSATRadius = 2
	WHATSATBound  = 3

	ATServer   = 1
	ATSkew     = 2
	ATClient   = 3
	ATLocation = 4
	ATTime     = 5
)

var (
	wordIAMAT   = []byte("IAMAT")
	wordWHATSAT = []byte("WHATSAT")
	wordAT      = []byte("AT")
)

// Classify validates the fields of one message and says which command it is.
// A WHATSAT is valid here when its radius and bound are; whether its client is
// known is for the caller to decide.
func Classify(fields [][]byte) Command {
	if len(fields) == 0 {
		return Invalid
	}
	switch {
	case bytes.Equal(fields[0], wordIAMAT):
		if len(fields) == 4 && ValidLocation(fields[IAMATLocation]) && ValidTime(fields[IAMATTime]) {
			return IAMAT
		}
	case bytes.Equal(fields[0], wordWHATSAT):
		if len(fields) == 4 {
			_, radiusOK := ParseRadius(fields[WHATSATRadius])
			_, boundOK := ParseBound(fields[WHATSATBound])
			if radiusOK && boundOK {
				return WHATSAT
			}
		}
	case bytes.Equal(fields[0], wordAT):
		if len(fields) == 6 && validSkew(fields[ATSkew]) && ValidLocation(fields[ATLocation]) && ValidTime(fields[ATTime]) {
			return AT
		}
	case bytes.Equal(fields[0], wordHERD):
		if _, ok := ParseSync(fields); ok {
			return HERD
		}
	}
	return Invalid
}

// validSkew accepts any signed decimal, so that peers which print the skew
// with another precision still interoperate.
func validSkew(b []byte) bool {
	if len(b) < 2 || (b[0] != '+' && b[0] != '-') {
		return false
	}
	_, _, ok := splitDecimal(b[1:])
	return ok
}

// AppendIAMATReply appends the AT line (without a line terminator) that
// answers a valid IAMAT's fields, received at receivedUnixNano by server.
func AppendIAMATReply(dst []byte, server string, receivedUnixNano int64, fields [][]byte) []byte {
	dst = append(dst, "AT "...)
	dst = append(dst, server...)
	dst = append(dst, ' ')
	dst = AppendSkew(dst, receivedUnixNano, fields[IAMATTime])
	for _, f := range fields[IAMATClient:] {
		dst = append(dst, ' ')
		dst = append(dst, f...)
	}
	return dst
}

// AppendInvalidReply appends the `? <line>` reply (with its newline) for a
// message, line being the message with surrounding whitespace already trimmed.
func AppendInvalidReply(dst, line []byte) []byte {
	dst = append(dst, "? "...)
	dst = append(dst, line...)
	return append(dst, '\n')
}
