package places

import (
	"errors"
	"net/url"
	"strings"
)

// redacted replaces a secret in error messages.
const redacted = "REDACTED"

// redactedError hides a secret, such as an API key, from the message of the
// error it wraps. Go's HTTP client reports the full request URL in its
// errors, query string and all.
type redactedError struct {
	err    error
	secret string
}

// redact returns err with every occurrence of secret, raw or query-escaped,
// hidden from its message. The URL of a *url.Error in err's chain is
// redacted in place, so that unwrapping the error does not reveal the secret
// either.
func redact(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		uerr.URL = hideSecret(uerr.URL, secret)
	}
	return &redactedError{err: err, secret: secret}
}

func (e *redactedError) Error() string {
	return hideSecret(e.err.Error(), e.secret)
}

func (e *redactedError) Unwrap() error {
	return e.err
}

// hideSecret replaces secret in s, in its raw and its query-escaped forms.
func hideSecret(s, secret string) string {
	s = strings.ReplaceAll(s, secret, redacted)
	if escaped := url.QueryEscape(secret); escaped != secret {
		s = strings.ReplaceAll(s, escaped, redacted)
	}
	if escaped := url.PathEscape(secret); escaped != secret {
		s = strings.ReplaceAll(s, escaped, redacted)
	}
	return s
}
