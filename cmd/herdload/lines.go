package main

import (
	"strconv"
	"time"
)

// fixedLocation is where the throughput loads put every client: the
// location does not change the cost of an IAMAT.
const fixedLocation = "+34.068930-118.445127"

// appendClientID appends the client ID prefix-i.
func appendClientID(dst []byte, prefix string, i int) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, int64(i), 10)
}

// appendIndexLocation appends a location of its own for client i, distinct
// for every i below 10^12, so that no two clients share a places query:
// latitude 34 plus i's low six digits in millionths of a degree, longitude
// -118 minus the next six.
func appendIndexLocation(dst []byte, i int) []byte {
	dst = append(dst, "+34."...)
	dst = appendSixDigits(dst, i%1e6)
	dst = append(dst, "-118."...)
	return appendSixDigits(dst, (i/1e6)%1e6)
}

func appendSixDigits(dst []byte, n int) []byte {
	// 1e6+n has seven digits: drop the leading 1 for six, zero-padded.
	dst = strconv.AppendInt(dst, int64(1e6+n), 10)
	copy(dst[len(dst)-7:], dst[len(dst)-6:])
	return dst[:len(dst)-1]
}

// appendTime appends t as POSIX seconds with nine decimals.
func appendTime(dst []byte, t time.Time) []byte {
	dst = strconv.AppendInt(dst, t.Unix(), 10)
	// 1e9+ns has ten digits: drop the leading 1 for nine, zero-padded.
	dst = strconv.AppendInt(dst, int64(1e9+t.Nanosecond()), 10)
	dst[len(dst)-10] = '.'
	return dst
}

// appendIAMAT appends the line "IAMAT <prefix-i> <location> <now>\n".
func appendIAMAT(dst []byte, prefix string, i int, location []byte, now time.Time) []byte {
	dst = append(dst, "IAMAT "...)
	dst = appendClientID(dst, prefix, i)
	dst = append(dst, ' ')
	dst = append(dst, location...)
	dst = append(dst, ' ')
	dst = appendTime(dst, now)
	return append(dst, '\n')
}
