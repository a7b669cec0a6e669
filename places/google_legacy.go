package places

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func init() {
	caddy.RegisterModule(GoogleLegacy{})
}

const (
	// defaultLegacyEndpoint is the base URL of the Places API (legacy).
	defaultLegacyEndpoint = "https://maps.googleapis.com"

	// legacyNearbyPath is the path of Nearby Search (legacy) with JSON output.
	legacyNearbyPath = "/maps/api/place/nearbysearch/json"
)

// GoogleLegacy answers nearby-places queries with the Google Places API
// Nearby Search (legacy). Google's response is returned byte for byte,
// including answers whose status is not OK, such as ZERO_RESULTS or
// OVER_QUERY_LIMIT.
type GoogleLegacy struct {
	// APIKey is the Google Maps Platform API key sent with each request.
	// It may be, or contain, placeholders such as
	// {env.GOOGLE_PLACES_API_KEY}, which are replaced when the module is
	// provisioned. Required: it must not be empty after replacement.
	APIKey string `json:"api_key,omitempty"`

	// Endpoint is the base URL that the request path
	// /maps/api/place/nearbysearch/json is appended to. Default:
	// https://maps.googleapis.com.
	Endpoint string `json:"endpoint,omitempty"`

	// Timeout bounds each whole request, from connecting to reading the last
	// byte of the response. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	googleAPI
}

// CaddyModule returns the Caddy module information.
func (GoogleLegacy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "herd.places.google_legacy",
		New: func() caddy.Module { return new(GoogleLegacy) },
	}
}

// Provision resolves the API key and endpoint and sets up the HTTP client.
func (g *GoogleLegacy) Provision(ctx caddy.Context) error {
	return g.provision(g.APIKey, g.Endpoint, defaultLegacyEndpoint, g.Timeout)
}

// Validate checks the provisioned configuration.
func (g *GoogleLegacy) Validate() error {
	return g.validate(g.Timeout)
}

// Nearby asks Nearby Search (legacy) for the places within q's radius.
// Google answers with at most 20 places whatever q.MaxResults is.
func (g *GoogleLegacy) Nearby(ctx context.Context, q Query) ([]byte, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	body, err := g.nearby(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("querying Google Places API (legacy): %w", err)
	}
	return body, nil
}

func (g *GoogleLegacy) nearby(ctx context.Context, q Query) ([]byte, error) {
	var u strings.Builder
	u.WriteString(g.baseURL)
	u.WriteString(legacyNearbyPath)
	u.WriteString("?location=")
	u.WriteString(formatFloat(q.Latitude))
	u.WriteString(",")
	u.WriteString(formatFloat(q.Longitude))
	u.WriteString("&radius=")
	u.WriteString(formatFloat(q.RadiusMeters))
	u.WriteString("&key=")
	u.WriteString(url.QueryEscape(g.key))

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, redact(fmt.Errorf("creating request: %w", err), g.key)
	}
	req.Header.Set("Accept", "application/json")
	return fetch(g.client, req, g.key)
}

// formatFloat formats x in decimal with as few digits as represent it
// exactly.
func formatFloat(x float64) string {
	return strconv.FormatFloat(x, 'f', -1, 64)
}

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	google_legacy {
//		api_key  <key>
//		endpoint <url>
//		timeout  <duration>
//	}
func (g *GoogleLegacy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalGoogleCaddyfile(d, &g.APIKey, &g.Endpoint, &g.Timeout, nil)
}

// Interface guards
var (
	_ caddy.Module          = (*GoogleLegacy)(nil)
	_ caddy.Provisioner     = (*GoogleLegacy)(nil)
	_ caddy.Validator       = (*GoogleLegacy)(nil)
	_ caddy.CleanerUpper    = (*GoogleLegacy)(nil)
	_ caddyfile.Unmarshaler = (*GoogleLegacy)(nil)
	_ Provider              = (*GoogleLegacy)(nil)
)
