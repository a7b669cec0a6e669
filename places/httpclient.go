package places

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxBodyBytes bounds the size of a provider's response. Google answers a
// nearby search with at most 20 places, a few tens of kilobytes.
const maxBodyBytes = 4 << 20

// newHTTPClient returns a client whose transport keeps connections to the
// provider alive between queries. The timeout bounds each whole request,
// from dialing to reading the last byte of the response.
func newHTTPClient(timeout time.Duration) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = 64
	transport.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: transport, Timeout: timeout}
}

// fetch sends req and returns the body of its response, which must have a
// 2xx status and be a JSON object. Errors never contain secret.
func fetch(client *http.Client, req *http.Request, secret string) ([]byte, error) {
	if client == nil {
		return nil, errors.New("provider is not provisioned")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, redact(err, secret)
	}
	defer resp.Body.Close()

	// The body is read to its end whatever the status, so that the
	// connection goes back to the pool for the next query; only a body over
	// the bound is abandoned, and its connection closed with it.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, redact(fmt.Errorf("reading response: %w", err), secret)
	}
	if len(body) > maxBodyBytes {
		return nil, fmt.Errorf("reading response: body is larger than %d bytes", maxBodyBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := "HTTP " + resp.Status
		if detail := errorDetail(body); detail != "" {
			msg += ": " + detail
		}
		return nil, redact(errors.New(msg), secret)
	}
	if !isJSONObject(body) {
		return nil, redact(fmt.Errorf("HTTP %s: body is not a JSON object (Content-Type %q, body begins %s)",
			resp.Status, resp.Header.Get("Content-Type"), excerpt(body)), secret)
	}
	return body, nil
}

// isJSONObject reports whether body is one valid JSON object.
func isJSONObject(body []byte) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed)
}

// errorDetail extracts the message of an error response in one of Google's
// formats, or returns "" if body is in neither.
func errorDetail(body []byte) string {
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"error"`
		Status       string `json:"status"`
		ErrorMessage string `json:"error_message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	var parts []string
	for _, s := range []string{e.Error.Status, e.Error.Message, e.Status, e.ErrorMessage} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return truncate(strings.Join(parts, ": "), 300)
}

// excerpt quotes the beginning of body for an error message.
func excerpt(body []byte) string {
	return strconv.Quote(truncate(string(body), 64))
}

// truncate shortens s to at most n bytes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
