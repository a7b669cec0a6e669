package places

import (
	"math"
	"testing"
)

func TestDistanceMeters(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lng1, lat2, lng2 float64
		want, tolerance        float64
	}{
		{"same point", 34.0689, -118.4452, 34.0689, -118.4452, 0, 0},
		{"one degree of latitude", 0, 0, 1, 0, 2 * math.Pi * earthRadiusMeters / 360, 1e-6},
		{"one degree of longitude at the equator", 0, 10, 0, 11, 2 * math.Pi * earthRadiusMeters / 360, 1e-6},
		{"antipodes", 0, 0, 0, 180, math.Pi * earthRadiusMeters, 1e-6},
		{"poles", 90, 0, -90, 0, math.Pi * earthRadiusMeters, 1e-6},
		{"across the antimeridian", 0, 179.5, 0, -179.5, 2 * math.Pi * earthRadiusMeters / 360, 1e-6},
		{"Royce Hall to Powell Library", 34.07278, -118.44194, 34.0717, -118.44218, 122, 2},
		{"UCLA to downtown Los Angeles", 34.068921, -118.4451811, 34.0549076, -118.242643, 18700, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := distanceMeters(tt.lat1, tt.lng1, tt.lat2, tt.lng2)
			if math.Abs(got-tt.want) > tt.tolerance {
				t.Errorf("distance = %.6f m, want %.6f ± %v", got, tt.want, tt.tolerance)
			}
			if back := distanceMeters(tt.lat2, tt.lng2, tt.lat1, tt.lng1); math.Abs(back-got) > 1e-6 {
				t.Errorf("distance is not symmetric: %v and %v", got, back)
			}
		})
	}
}
