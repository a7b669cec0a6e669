// Package places answers nearby-places queries for the herd's WHATSAT
// command.
//
// A Provider returns a JSON document in the shape of a Google Places Nearby
// Search (legacy) response, whichever source it asks. Three providers are
// Caddy modules in the herd.places namespace, chosen in JSON by the inline key
// "provider":
//
//   - google_legacy asks the Places API Nearby Search (legacy) and returns
//     Google's answer byte for byte;
//   - google asks the Places API (New) and wraps its answer in the legacy
//     shape;
//   - file answers offline from a JSON file of places.
//
// For example:
//
//	{"provider": "google_legacy", "api_key": "{env.GOOGLE_PLACES_API_KEY}"}
package places

import (
	"context"
	"fmt"
	"math"
)

// maxRadiusMeters is the largest search radius a Query may ask for, the
// limit of the Google Places APIs.
const maxRadiusMeters = 50000

// maxResults is the most results a provider answers with, and the largest
// Query.MaxResults.
const maxResults = 20

// Query is one nearby-places request.
type Query struct {
	Latitude, Longitude float64 // degrees
	RadiusMeters        float64 // > 0, <= 50000
	MaxResults          int     // 0..20: how many results the caller will keep
}

// Provider answers nearby-places queries with a JSON document in the shape of a
// Google Places Nearby Search (legacy) response: an object with
// "html_attributions", "results" and "status" (and whatever else the source returned).
type Provider interface {
	Nearby(ctx context.Context, q Query) ([]byte, error)
}

// validate reports whether q is a query a provider can answer.
func (q Query) validate() error {
	switch {
	case math.IsNaN(q.Latitude) || q.Latitude < -90 || q.Latitude > 90:
		return fmt.Errorf("invalid query: latitude %v is not within [-90, 90]", q.Latitude)
	case math.IsNaN(q.Longitude) || q.Longitude < -180 || q.Longitude > 180:
		return fmt.Errorf("invalid query: longitude %v is not within [-180, 180]", q.Longitude)
	case math.IsNaN(q.RadiusMeters) || q.RadiusMeters <= 0 || q.RadiusMeters > maxRadiusMeters:
		return fmt.Errorf("invalid query: radius %v m is not within (0, %d]", q.RadiusMeters, maxRadiusMeters)
	case q.MaxResults < 0 || q.MaxResults > maxResults:
		return fmt.Errorf("invalid query: max results %d is not within [0, %d]", q.MaxResults, maxResults)
	}
	return nil
}
