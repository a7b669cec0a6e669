// Package fakeplaces is a fake Google Places HTTP server for tests. It answers
// Nearby Search (legacy) and Places API (New) Nearby Search requests with
// canned places around UCLA, in Google's own formats, and validates requests
// the way Google does: API key, required parameters and field mask.
package fakeplaces

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// APIKey is the only API key the fake accepts. Requests without it, or with
// another key, get Google's REQUEST_DENIED answer (legacy) or its HTTP 400
// INVALID_ARGUMENT error with reason API_KEY_INVALID (New).
const APIKey = "test-key-3c9d71f0-fakeplaces"

// Request paths the fake serves.
const (
	legacyNearbyPath = "/maps/api/place/nearbysearch/json"
	searchNearbyPath = "/v1/places:searchNearby"
)

// maxRequestBody bounds how much of a request body the fake reads.
const maxRequestBody = 1 << 20

// Request is a request the fake received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Server is a running fake Google Places server.
type Server struct {
	// URL is the base URL of the server, such as http://127.0.0.1:41234,
	// to use as a provider's endpoint.
	URL string

	srv      *httptest.Server
	requests atomic.Int64
	failure  atomic.Int64

	mu           sync.Mutex
	last         Request
	legacyStatus string
}

// Start serves the fake on 127.0.0.1 and returns it; tb's cleanup closes it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := New()
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// New returns the fake as a handler to mount on a server of one's own, such
// as a load generator's stand-in provider; its URL is left empty.
func New() *Server {
	return &Server{}
}

// ServeHTTP answers one request as Google would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serveHTTP(w, r)
}

// Requests returns how many requests the fake has received so far,
// including failed ones.
func (s *Server) Requests() int {
	return int(s.requests.Load())
}

// LastRequest returns a copy of the last request the fake received, or the
// zero Request if there was none.
func (s *Server) LastRequest() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.last
	r.Query = cloneValues(r.Query)
	r.Header = r.Header.Clone()
	r.Body = append([]byte(nil), r.Body...)
	return r
}

// SetFailure makes the fake answer every request with the given HTTP
// status and a Google error body; 0 restores normal answers.
func (s *Server) SetFailure(status int) {
	s.failure.Store(int64(status))
}

// SetLegacyStatus makes Nearby Search (legacy) answer with HTTP 200, no
// results and the given status, such as "ZERO_RESULTS" or
// "OVER_QUERY_LIMIT" (with Google's error_message where Google gives one);
// "" restores normal answers. Requests are still checked for a valid key
// first.
func (s *Server) SetLegacyStatus(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.legacyStatus = status
}

func (s *Server) currentLegacyStatus() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.legacyStatus
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		writeGoogleError(w, http.StatusBadRequest, "Failed to read the request body.")
		return
	}
	s.record(r, body)

	if status := int(s.failure.Load()); status != 0 {
		writeGoogleError(w, status, failureMessage(status))
		return
	}
	switch r.URL.Path {
	case legacyNearbyPath:
		s.serveLegacyNearby(w, r)
	case searchNearbyPath:
		s.serveSearchNearby(w, r, body)
	default:
		writeGoogleError(w, http.StatusNotFound, "The requested URL "+r.URL.Path+" was not found on this server.")
	}
}

func (s *Server) record(r *http.Request, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.Query(),
		Header: r.Header.Clone(),
		Body:   body,
	}
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}
