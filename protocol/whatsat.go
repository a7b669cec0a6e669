package protocol

import "strconv"

// WHATSAT limits.
const (
	MaxRadiusKm = 50
	MaxBound    = 20
)

// ParseRadius parses a WHATSAT radius in kilometres: a decimal `D+(.D+)?`
// with 0 < radius <= 50, judged on its digits.
func ParseRadius(b []byte) (km float64, ok bool) {
	whole, frac, ok := splitDecimal(b)
	if !ok {
		return 0, false
	}
	if allZeros(whole) && allZeros(frac) {
		return 0, false
	}
	if !atMost(whole, frac, MaxRadiusKm) {
		return 0, false
	}
	km, err := strconv.ParseFloat(string(b), 64)
	return km, err == nil
}

// ParseBound parses a WHATSAT bound: an integer `D+` with 0 <= bound <= 20.
func ParseBound(b []byte) (int, bool) {
	if !isDigits(b) || !atMost(b, nil, MaxBound) {
		return 0, false
	}
	return int(digitsValue(trimLeadingZeros(b))), true
}
