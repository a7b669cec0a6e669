package examples

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// adminClient opens a connection per request, so that the tests' own admin
// calls leave no connection behind in the servers' counts.
var adminClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}

// tableRecord is one line of GET /herd/clients.
type tableRecord struct {
	Client string `json:"client"`
	Origin string `json:"origin"`
	Time   string `json:"time"`
	AT     string `json:"at"`
}

// table reads a server's whole client table through the admin API, as client
// ID to AT line; nil if the server does not answer.
func (h *herd) table(s *server) map[string]string {
	h.t.Helper()
	resp, err := adminClient.Get(s.adminURL("/herd/clients"))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET /herd/clients on %s: %s", s.name, resp.Status)
	}
	table := make(map[string]string)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r tableRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			h.t.Fatalf("GET /herd/clients on %s: line %q: %v", s.name, sc.Text(), err)
		}
		if _, dup := table[r.Client]; dup {
			h.t.Fatalf("GET /herd/clients on %s lists %s twice", s.name, r.Client)
		}
		table[r.Client] = r.AT
	}
	if sc.Err() != nil {
		return nil
	}
	return table
}

// peerStatus is one entry of GET /herd/peers.
type peerStatus struct {
	Name        string `json:"name"`
	Up          bool   `json:"up"`
	Pending     int    `json:"pending"`
	Connects    int64  `json:"connects"`
	Sent        int64  `json:"records_sent"`
	BytesSent   int64  `json:"bytes_sent"`
	Exchange    bool   `json:"exchange"`
	Through     uint64 `json:"through"`
	LastCatchUp *struct {
		After   uint64 `json:"after"`
		Records int64  `json:"records"`
		Bytes   int64  `json:"bytes"`
	} `json:"last_catch_up"`
}

// storageStatus is GET /herd/storage.
type storageStatus struct {
	On        bool   `json:"on"`
	Epoch     string `json:"epoch"`
	Seq       uint64 `json:"seq"`
	Dir       string `json:"dir"`
	Fsync     string `json:"fsync"`
	DiskBytes int64  `json:"disk_bytes"`
	Records   int64  `json:"records"`
	Snapshots int64  `json:"snapshots"`
	Cursors   map[string]struct {
		Epoch string `json:"epoch"`
		Seq   uint64 `json:"seq"`
	} `json:"peer_cursors"`
}

func (h *herd) storage(s *server) storageStatus {
	h.t.Helper()
	var st storageStatus
	h.adminJSON(s, "/herd/storage", &st)
	return st
}

// adminJSON decodes what GET path answers on s's admin endpoint into v. A
// reload restarts the endpoint: a connection it refuses or resets meanwhile
// is tried again.
func (h *herd) adminJSON(s *server, path string, v any) {
	h.t.Helper()
	var resp *http.Response
	var err error
	h.waitUntil(fmt.Sprintf("%s answers GET %s", s.name, path), func() bool {
		resp, err = adminClient.Get(s.adminURL(path))
		return err == nil
	})
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET %s on %s: %s", path, s.name, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		h.t.Fatalf("GET %s on %s: %v", path, s.name, err)
	}
}

func (h *herd) peers(s *server) []peerStatus {
	h.t.Helper()
	var peers []peerStatus
	h.adminJSON(s, "/herd/peers", &peers)
	return peers
}

// waitConverged waits until every listed server holds the same table, with
// at least min clients, and returns how long that took.
func (h *herd) waitConverged(min int, servers ...*server) time.Duration {
	h.t.Helper()
	var last []string
	start := time.Now()
	for {
		tables := make([]map[string]string, len(servers))
		same := true
		last = last[:0]
		for i, s := range servers {
			tables[i] = h.table(s)
			last = append(last, fmt.Sprintf("%s:%d", s.name, len(tables[i])))
			if tables[i] == nil || len(tables[i]) < min || (i > 0 && !equalTables(tables[0], tables[i])) {
				same = false
			}
		}
		if same {
			return time.Since(start)
		}
		if time.Since(start) > waitTimeout {
			h.t.Fatalf("no convergence after %v: table sizes %s", waitTimeout, strings.Join(last, " "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func equalTables(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestAdminAPI(t *testing.T) {
	h := startHerd(t)
	s := h.servers[farmar]
	at := dial(t, s).iamat("kiwi", kiwiLocation, now())
	if got := h.table(s); len(got) != 1 || got["kiwi"] != at {
		t.Errorf("GET /herd/clients = %v, want kiwi: %q", got, at)
	}
	resp, err := adminClient.Get(s.adminURL("/herd/clients/kiwi"))
	if err != nil {
		t.Fatal(err)
	}
	var one tableRecord
	json.NewDecoder(resp.Body).Decode(&one)
	resp.Body.Close()
	if one.AT != at || one.Origin != "Farmar" || one.Client != "kiwi" {
		t.Errorf("GET /herd/clients/kiwi = %+v", one)
	}
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/herd/clients/nobody", http.StatusNotFound},
		{http.MethodPost, "/herd/clients", http.StatusMethodNotAllowed},
		{http.MethodGet, "/herd/nothing", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tt.method, s.adminURL(tt.path), nil)
		resp, err := adminClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || body.Error == "" {
			t.Errorf("%s %s: %d %q, want %d with a JSON error", tt.method, tt.path, resp.StatusCode, body.Error, tt.status)
		}
	}
	h.waitUntil("Farmar's links are up", func() bool {
		peers := h.peers(s)
		return len(peers) == 2 && peers[0].Up && peers[1].Up
	})
}
