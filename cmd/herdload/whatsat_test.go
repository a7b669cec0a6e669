package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
	"github.com/caddy-herd/caddy-herd/protocol"
)

// TestWhatsatReadsWholeReplies runs the WHATSAT load against a server whose
// replies span many lines, one longer than the read buffer, and which
// answers `?` for one client: every query must be answered and counted, the
// `?` ones as invalid, and every client of every connection's slice asked.
func TestWhatsatReadsWholeReplies(t *testing.T) {
	long := strings.Repeat("x", 70<<10)
	var (
		mu       sync.Mutex
		asked    = make(map[string]int)
		bad      []string
		received int64
	)
	addr := lineServer(t, func(line string) string {
		fields := protocol.Fields(nil, []byte(line))
		mu.Lock()
		defer mu.Unlock()
		received++
		if protocol.Classify(fields) != protocol.WHATSAT || string(fields[2]) != "10" || string(fields[3]) != "5" {
			bad = append(bad, line)
		}
		client := string(fields[1])
		asked[client]++
		if client == "w-3" {
			return "? " + strings.TrimSpace(line) + "\n"
		}
		return "AT S +0.000000000 " + client + " +1+1 1\n{\n   \"a\" : \"" + long + "\",\n   \"status\" : \"OK\"\n}\n\n"
	})
	const conns, pipeline, clients = 2, 4, 8
	perConn := clients / conns
	res, err := closedLoop(addr, conns, pipeline, 100*time.Millisecond, func(c int) exchange {
		return &whatsatExchange{prefix: "w", first: c * perConn, count: perConn, tail: " 10 5\n"}
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("the load sent %q", bad)
	}
	if res.total != received || res.invalid != int64(asked["w-3"]) || res.ops == 0 {
		t.Errorf("the load counted %d replies, %d invalid, %d measured; the server answered %d, %d of them `?`",
			res.total, res.invalid, res.ops, received, asked["w-3"])
	}
	if len(asked) != clients {
		t.Errorf("asked about %d clients, want %d: %v", len(asked), clients, asked)
	}
}

// TestPlacesHandlerAnswersGoogleJSON checks the fake provider answers a
// Nearby Search (legacy) as a herd server asks it, in Google's format, and
// counts the requests.
func TestPlacesHandlerAnswersGoogleJSON(t *testing.T) {
	srv := httptest.NewServer(placesHandler(fakeplaces.New()))
	defer srv.Close()
	url := srv.URL + "/maps/api/place/nearbysearch/json?location=34.06893,-118.445127&radius=10000&key=" + fakeplaces.APIKey
	for range 3 {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Results []struct {
				Name string `json:"name"`
			} `json:"results"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("the answer is not JSON: %v", err)
		}
		if resp.StatusCode != http.StatusOK || doc.Status != "OK" || len(doc.Results) < 5 || doc.Results[0].Name == "" {
			t.Fatalf("HTTP %d, status %q, %d results", resp.StatusCode, doc.Status, len(doc.Results))
		}
	}
	resp, err := http.Get(srv.URL + requestsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var count struct{ Requests int }
	if err := json.NewDecoder(resp.Body).Decode(&count); err != nil || count.Requests != 3 {
		t.Errorf("the provider counts %d requests (%v), want 3", count.Requests, err)
	}
}

// TestHTTPLoadCountsAnswers runs the HTTP load against a handler that fails
// every other request, and checks every answer is counted and the failures
// as invalid.
func TestHTTPLoadCountsAnswers(t *testing.T) {
	var (
		mu     sync.Mutex
		served int64
		failed int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		served++
		fail := served%2 == 0
		if fail {
			failed++
		}
		mu.Unlock()
		if fail {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, `{"status": "OK"}`)
	}))
	defer srv.Close()
	res, err := httpLoad(httpConfig{URL: srv.URL, Conns: 3, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.total != served || res.invalid != failed || res.ops == 0 {
		t.Errorf("the load counted %d answers, %d invalid; the server served %d, failed %d", res.total, res.invalid, served, failed)
	}
}
