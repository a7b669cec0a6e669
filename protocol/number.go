package protocol

// The contract's numbers are decimal text, and every range check and ordering
// here works on the digits themselves rather than on floats, so that values at
// the edges (90.0000000000000001, 50.0000001) are judged exactly.

// text is the protocol's field type: bytes on the wire, strings in the table.
type text interface{ ~string | ~[]byte }

func isDigits[T text](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if c := b[i]; c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// splitDecimal splits `D+(.D+)?` into its integer and fraction digits.
func splitDecimal[T text](b T) (whole, frac T, ok bool) {
	for i := 0; i < len(b); i++ {
		if b[i] == '.' {
			whole, frac = b[:i], b[i+1:]
			return whole, frac, isDigits(whole) && isDigits(frac)
		}
	}
	return b, frac, isDigits(b)
}

func trimLeadingZeros[T text](digits T) T {
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
	}
	return digits
}

func allZeros[T text](digits T) bool {
	for i := 0; i < len(digits); i++ {
		if digits[i] != '0' {
			return false
		}
	}
	return true
}

// compareWhole compares two runs of integer digits by value.
func compareWhole[T text](a, b T) int {
	a, b = trimLeadingZeros(a), trimLeadingZeros(b)
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// compareFraction compares two runs of fraction digits by value, as if the
// shorter were padded with zeros.
func compareFraction[T text](a, b T) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		ca, cb := byte('0'), byte('0')
		if i < len(a) {
			ca = a[i]
		}
		if i < len(b) {
			cb = b[i]
		}
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
	}
	return 0
}

// atMost reports whether the decimal whole.frac is no greater than limit.
func atMost[T text](whole, frac T, limit uint64) bool {
	whole = trimLeadingZeros(whole)
	if len(whole) > 19 {
		return false
	}
	v := digitsValue(whole)
	return v < limit || (v == limit && allZeros(frac))
}

// digitsValue is the value of at most 19 digits.
func digitsValue[T text](digits T) uint64 {
	var v uint64
	for i := 0; i < len(digits); i++ {
		v = v*10 + uint64(digits[i]-'0')
	}
	return v
}
