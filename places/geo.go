package places

import "math"

// earthRadiusMeters is the mean radius of the Earth (IUGG).
const earthRadiusMeters = 6371008.8

// distanceMeters returns the great-circle distance between two points given
// in degrees, by the haversine formula.
func distanceMeters(lat1, lng1, lat2, lng2 float64) float64 {
	phi1 := lat1 * math.Pi / 180
	phi2 := lat2 * math.Pi / 180
	dPhi := (lat2 - lat1) * math.Pi / 180
	dLambda := (lng2 - lng1) * math.Pi / 180

	sinPhi := math.Sin(dPhi / 2)
	sinLambda := math.Sin(dLambda / 2)
	a := sinPhi*sinPhi + math.Cos(phi1)*math.Cos(phi2)*sinLambda*sinLambda
	return 2 * earthRadiusMeters * math.Asin(math.Min(1, math.Sqrt(a)))
}
