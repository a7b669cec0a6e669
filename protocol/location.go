package protocol

import "strconv"

// Location limits, in whole degrees.
const (
	maxLatitude  = 90
	maxLongitude = 180
)

// splitLocation splits an ISO 6709 `[+-]D+(.D+)?[+-]D+(.D+)?` into its signed
// latitude and longitude.
func splitLocation(b []byte) (lat, lng []byte, ok bool) {
	if len(b) < 4 || (b[0] != '+' && b[0] != '-') {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		if b[i] == '+' || b[i] == '-' {
			return b[:i], b[i:], true
		}
	}
	return nil, nil, false
}

// validCoordinate checks one signed coordinate against its limit in degrees.
func validCoordinate(c []byte, limit uint64) bool {
	whole, frac, ok := splitDecimal(c[1:])
	if !ok {
		return false
	}
	return atMost(whole, frac, limit)
}

// ValidLocation reports whether b is a valid location: latitude within
// [-90, 90] and longitude within [-180, 180], each with an explicit sign.
func ValidLocation(b []byte) bool {
	lat, lng, ok := splitLocation(b)
	return ok && validCoordinate(lat, maxLatitude) && validCoordinate(lng, maxLongitude)
}

// ParseLocation returns the degrees of a location, or ok false when it is not
// valid.
func ParseLocation(b []byte) (lat, lng float64, ok bool) {
	latText, lngText, ok := splitLocation(b)
	if !ok || !validCoordinate(latText, maxLatitude) || !validCoordinate(lngText, maxLongitude) {
		return 0, 0, false
	}
	lat, errLat := strconv.ParseFloat(string(latText), 64)
	lng, errLng := strconv.ParseFloat(string(lngText), 64)
	return lat, lng, errLat == nil && errLng == nil
}
