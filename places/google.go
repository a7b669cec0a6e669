package places

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func init() {
	caddy.RegisterModule(Google{})
}

const (
	// defaultGoogleEndpoint is the base URL of the Places API (New).
	defaultGoogleEndpoint = "https://places.googleapis.com"

	// searchNearbyPath is the path of Nearby Search (New).
	searchNearbyPath = "/v1/places:searchNearby"

	// defaultFieldMask asks for every field of each place.
	defaultFieldMask = "*"
)

// Google answers nearby-places queries with the Google Places API (New)
// Nearby Search. Its answer is wrapped in the shape of a Nearby Search
// (legacy) response: the place objects, as Google returned them, become the
// "results", with status OK, or ZERO_RESULTS if there are none.
type Google struct {
	// APIKey is the Google Maps Platform API key sent with each request in
	// the X-Goog-Api-Key header. It may be, or contain, placeholders such
	// as {env.GOOGLE_PLACES_API_KEY}, which are replaced when the module is
	// provisioned. Required: it must not be empty after replacement.
	APIKey string `json:"api_key,omitempty"`

	// Endpoint is the base URL that the request path
	// /v1/places:searchNearby is appended to. Default:
	// https://places.googleapis.com.
	Endpoint string `json:"endpoint,omitempty"`

	// FieldMask lists the fields Google returns for each place, sent in the
	// X-Goog-FieldMask header; for example
	// "places.displayName,places.location". Fewer fields cost less.
	// Default: "*", every field.
	FieldMask string `json:"field_mask,omitempty"`

	// Timeout bounds each whole request, from connecting to reading the last
	// byte of the response. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	googleAPI
}

// searchNearbyRequest is the body of a Nearby Search (New) request.
type searchNearbyRequest struct {
	MaxResultCount      int                 `json:"maxResultCount"`
	LocationRestriction locationRestriction `json:"locationRestriction"`
}

type locationRestriction struct {
	Circle circle `json:"circle"`
}

type circle struct {
	Center latLng  `json:"center"`
	Radius float64 `json:"radius"`
}

type latLng struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// CaddyModule returns the Caddy module information.
func (Google) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "herd.places.google",
		New: func() caddy.Module { return new(Google) },
	}
}

// Provision resolves the API key and endpoint, applies defaults and sets up
// the HTTP client.
func (g *Google) Provision(ctx caddy.Context) error {
	if err := g.provision(g.APIKey, g.Endpoint, defaultGoogleEndpoint, g.Timeout); err != nil {
		return err
	}
	if g.FieldMask == "" {
		g.FieldMask = defaultFieldMask
	}
	return nil
}

// Validate checks the provisioned configuration.
func (g *Google) Validate() error {
	return g.validate(g.Timeout)
}

// Nearby asks Nearby Search (New) for at most q.MaxResults places (1 if it
// is 0) within q's radius.
func (g *Google) Nearby(ctx context.Context, q Query) ([]byte, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	body, err := g.nearby(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("querying Google Places API (New): %w", err)
	}
	return body, nil
}

func (g *Google) nearby(ctx context.Context, q Query) ([]byte, error) {
	reqBody, err := json.Marshal(searchNearbyRequest{
		MaxResultCount: min(max(q.MaxResults, 1), maxResults),
		LocationRestriction: locationRestriction{Circle: circle{
			Center: latLng{Latitude: q.Latitude, Longitude: q.Longitude},
			Radius: q.RadiusMeters,
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.baseURL+searchNearbyPath, bytes.NewReader(reqBody))
	if err != nil {
		return nil, redact(fmt.Errorf("creating request: %w", err), g.key)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Goog-Api-Key", g.key)
	req.Header.Set("X-Goog-FieldMask", g.FieldMask)

	body, err := fetch(g.client, req, g.key)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Places []json.RawMessage `json:"places"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("decoding response: %w", err)
	}
	return legacyDocument(resp.Places)
}

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	google {
//		api_key    <key>
//		endpoint   <url>
//		field_mask <fields>
//		timeout    <duration>
//	}
func (g *Google) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalGoogleCaddyfile(d, &g.APIKey, &g.Endpoint, &g.Timeout, map[string]subdirective{
		"field_mask": stringArg(&g.FieldMask),
	})
}

// Interface guards
var (
	_ caddy.Module          = (*Google)(nil)
	_ caddy.Provisioner     = (*Google)(nil)
	_ caddy.Validator       = (*Google)(nil)
	_ caddy.CleanerUpper    = (*Google)(nil)
	_ caddyfile.Unmarshaler = (*Google)(nil)
	_ Provider              = (*Google)(nil)
)
