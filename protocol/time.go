package protocol

import (
	"math/big"
	"strconv"
)

// ValidTime reports whether b is a client time: POSIX seconds `D+(.D{1,9})?`.
// There is no upper bound: a time of any number of digits orders and computes
// exactly.
func ValidTime(b []byte) bool {
	_, frac, ok := splitDecimal(b)
	return ok && len(frac) <= 9
}

// CompareTime orders two valid client times by value: -1, 0 or +1.
func CompareTime[T text](a, b T) int {
	aw, af, _ := splitDecimal(a)
	bw, bf, _ := splitDecimal(b)
	if c := compareWhole(aw, bw); c != 0 {
		return c
	}
	return compareFraction(af, bf)
}

// maxKeySecondsDigits is the most whole-second digits a TimeKey holds:
// (10^10 - 1) * 10^9 + 999999999, plus one, fits a uint64.
const maxKeySecondsDigits = 10

// TimeKey returns a number that orders valid client times as CompareTime
// does, or 0 for an invalid time or one too large to have a key: a time's
// value in nanoseconds, plus one. Two times with keys compare as their keys
// do.
func TimeKey[T text](t T) uint64 {
	whole, frac, ok := splitDecimal(t)
	whole = trimLeadingZeros(whole)
	if !ok || len(whole) > maxKeySecondsDigits || len(frac) > 9 {
		return 0
	}
	return digitsValue(whole)*1e9 + uint64(fractionNanos(frac)) + 1
}

// fractionNanos returns the value of at most nine fraction digits in
// nanoseconds.
func fractionNanos[T text](frac T) int64 {
	var nsec int64
	for i := 0; i < 9; i++ {
		nsec *= 10
		if i < len(frac) {
			nsec += int64(frac[i] - '0')
		}
	}
	return nsec
}

// maxFastSecondsDigits bounds the client seconds that the skew computes in int64.
const maxFastSecondsDigits = 18

// AppendSkew appends the skew `received - clientTime` for a valid client
// time, with an explicit sign and exactly nine fraction digits
// (`+0.263873386`, `-0.000120000`), computed in integer nanoseconds.
func AppendSkew(dst []byte, receivedUnixNano int64, clientTime []byte) []byte {
	whole, frac, _ := splitDecimal(clientTime)
	whole = trimLeadingZeros(whole)
	nsec := fractionNanos(frac)
	if len(whole) > maxFastSecondsDigits {
		return appendBigSkew(dst, receivedUnixNano, whole, nsec)
	}
	ds := receivedUnixNano/1e9 - int64(digitsValue(whole))
	dn := receivedUnixNano%1e9 - nsec
	switch {
	case ds > 0 && dn < 0:
		ds--
		dn += 1e9
	case ds < 0 && dn > 0:
		ds++
		dn -= 1e9
	}
	negative := ds < 0 || (ds == 0 && dn < 0)
	if negative {
		ds, dn = -ds, -dn
	}
	var digits [20]byte
	return appendSignedSeconds(dst, negative, strconv.AppendUint(digits[:0], uint64(ds), 10), dn)
}

func appendBigSkew(dst []byte, receivedUnixNano int64, wholeDigits []byte, nsec int64) []byte {
	client, _ := new(big.Int).SetString(string(wholeDigits), 10)
	billion := big.NewInt(1e9)
	client.Mul(client, billion).Add(client, big.NewInt(nsec))
	diff := big.NewInt(receivedUnixNano)
	diff.Sub(diff, client)
	negative := diff.Sign() < 0
	diff.Abs(diff)
	sec, ns := new(big.Int).QuoRem(diff, billion, new(big.Int))
	return appendSignedSeconds(dst, negative, sec.Append(nil, 10), ns.Int64())
}

func appendSignedSeconds(dst []byte, negative bool, secDigits []byte, nsec int64) []byte {
	if negative {
		dst = append(dst, '-')
	} else {
		dst = append(dst, '+')
	}
	dst = append(dst, secDigits...)
	dst = append(dst, '.')
	var frac [9]byte
	for i := 8; i >= 0; i-- {
		frac[i] = byte('0' + nsec%10)
		nsec /= 10
	}
	return append(dst, frac[:]...)
}
