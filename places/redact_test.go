package places

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	const key = "AIza key+/="
	raw := "https://maps.googleapis.com/maps/api/place/nearbysearch/json?radius=1&key="
	tests := []struct {
		name string
		err  error
	}{
		{"raw key", errors.New("failed with key " + key)},
		{"query-escaped key in a url.Error", &url.Error{Op: "Get", URL: raw + url.QueryEscape(key), Err: errors.New("connection refused")}},
		{"path-escaped key", fmt.Errorf("wrapped: %w", errors.New("/"+url.PathEscape(key)))},
		{"wrapped url.Error", fmt.Errorf("requesting: %w", &url.Error{Op: "Get", URL: raw + key, Err: errors.New("timeout")})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := redact(tt.err, key)
			checkNoSecret(t, err, key)
			if !strings.Contains(err.Error(), "REDACTED") {
				t.Errorf("error %q does not mark the redaction", err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("redacted error does not wrap the original")
			}
		})
	}
	if redact(nil, key) != nil {
		t.Error("redact(nil) is not nil")
	}
	plain := errors.New("plain")
	if redact(plain, "") != plain {
		t.Error("redact without a secret changed the error")
	}
}
