package places

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// defaultTimeout bounds a whole request to a remote provider when the
// configuration does not say otherwise.
const defaultTimeout = 5 * time.Second

// errAPIKeyRequired is returned when a provider that needs an API key has
// none, or its placeholders resolved to an empty string.
var errAPIKeyRequired = errors.New("api_key is required")

// resolveAPIKey replaces the placeholders in an api_key value, such as
// {env.GOOGLE_PLACES_API_KEY}. Unknown placeholders resolve to nothing.
func resolveAPIKey(raw string) (string, error) {
	key := strings.TrimSpace(caddy.NewReplacer().ReplaceAll(raw, ""))
	if key == "" {
		return "", errAPIKeyRequired
	}
	return key, nil
}

// resolveEndpoint replaces the known placeholders in an endpoint value, or
// takes def if it is empty, and checks that the result is a base URL that
// request paths can be appended to. The result has no trailing slash.
func resolveEndpoint(raw, def string) (string, error) {
	if raw == "" {
		raw = def
	}
	s := caddy.NewReplacer().ReplaceKnown(raw, "")
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("parsing endpoint: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("endpoint %q: scheme must be http or https", u.Redacted())
	case u.Host == "":
		return "", fmt.Errorf("endpoint %q: host is missing", u.Redacted())
	case u.User != nil:
		return "", fmt.Errorf("endpoint %q: user information is not supported", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("endpoint %q: must not have a query or fragment", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// timeoutOrDefault returns d, or defaultTimeout if d is zero.
func timeoutOrDefault(d caddy.Duration) time.Duration {
	if d == 0 {
		return defaultTimeout
	}
	return time.Duration(d)
}

// validateTimeout checks a configured timeout; zero means the default.
func validateTimeout(d caddy.Duration) error {
	if d < 0 {
		return fmt.Errorf("timeout must not be negative, got %s", time.Duration(d))
	}
	return nil
}
