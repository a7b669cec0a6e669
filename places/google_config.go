package places

import (
	"maps"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// googleAPI is the state the Google providers share once provisioned: the
// resolved API key, the base URL that request paths are appended to and the
// HTTP client that sends the requests. Google and GoogleLegacy embed it; their
// configuration fields, api_key, endpoint and timeout, stay their own, with
// documentation that names each provider's endpoint and how it sends the key.
type googleAPI struct {
	key     string
	baseURL string
	client  *http.Client
}

// provision resolves the placeholders in apiKey and endpoint, the latter
// defaulting to defaultEndpoint, and sets up an HTTP client that bounds each
// request by timeout, or defaultTimeout if it is zero. Nothing is set unless
// both the key and the endpoint are valid.
func (a *googleAPI) provision(apiKey, endpoint, defaultEndpoint string, timeout caddy.Duration) error {
	key, err := resolveAPIKey(apiKey)
	if err != nil {
		return err
	}
	baseURL, err := resolveEndpoint(endpoint, defaultEndpoint)
	if err != nil {
		return err
	}
	a.key = key
	a.baseURL = baseURL
	a.client = newHTTPClient(timeoutOrDefault(timeout))
	return nil
}

// validate checks that provisioning resolved an API key and that the
// configured timeout is not negative.
func (a *googleAPI) validate(timeout caddy.Duration) error {
	if a.key == "" {
		return errAPIKeyRequired
	}
	return validateTimeout(timeout)
}

// Cleanup closes the idle connections to the endpoint.
func (a *googleAPI) Cleanup() error {
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// unmarshalGoogleCaddyfile sets up a Google provider from Caddyfile tokens:
// the provider name, with no arguments, then a block of subdirectives.
// api_key, endpoint and timeout set *apiKey, *endpoint and *timeout; extra
// holds the provider's own subdirectives, such as field_mask for google, and
// may be nil. Any other subdirective is an error, and so is a block without
// an api_key.
func unmarshalGoogleCaddyfile(d *caddyfile.Dispenser, apiKey, endpoint *string, timeout *caddy.Duration, extra map[string]subdirective) error {
	d.Next() // consume the provider name
	name := d.Val()
	if d.NextArg() {
		return d.Errf("%s: unexpected argument %q; options go in a block", name, d.Val())
	}
	subdirectives := map[string]subdirective{
		"api_key":  stringArg(apiKey),
		"endpoint": stringArg(endpoint),
		"timeout":  timeoutArg(timeout),
	}
	maps.Copy(subdirectives, extra)
	for d.NextBlock(0) {
		parse, ok := subdirectives[d.Val()]
		if !ok {
			return d.Errf("%s: unrecognized subdirective %q", name, d.Val())
		}
		if err := parse(d); err != nil {
			return err
		}
	}
	if *apiKey == "" {
		return d.Errf("%s: %w", name, errAPIKeyRequired)
	}
	return nil
}
