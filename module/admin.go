package module

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/peering"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves the herd's state on Caddy's admin endpoint:
//
//	GET /herd/clients       every stored record, one JSON object per line
//	GET /herd/clients/<id>  one client's record
//	GET /herd/peers         the state of every peer link
//	GET /herd/stats         table size, messages by command and result, uptime
//	GET /herd/storage       where and how the table is kept on disk
//	POST /herd/storage/snapshot  writes a snapshot of the table now
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.herd",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes of the herd.
func (a AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/herd/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// clientRecord is a stored record as the admin API shows it.
type clientRecord struct {
	Client     string    `json:"client"`
	Origin     string    `json:"origin"`
	Time       string    `json:"time"`
	AT         string    `json:"at"`
	ReceivedAt time.Time `json:"received_at"`
	From       string    `json:"received_from,omitempty"`
}

func newClientRecord(r herdstore.Record) clientRecord {
	line := r.Line()
	origin, _, _ := strings.Cut(strings.TrimPrefix(line, "AT "), " ")
	got := r.Origin()
	rec := clientRecord{Client: r.Client(), Origin: origin, Time: r.Time(), AT: line, ReceivedAt: time.Unix(0, got.Arrived).UTC()}
	if got.From.IsValid() {
		rec.From = got.From.String()
	}
	return rec
}

func (AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	want := http.MethodGet
	if r.URL.Path == "/herd/storage/snapshot" {
		want = http.MethodPost
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed: use " + want)}
	}
	n := runningNode()
	if n == nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("no herd app is running")}
	}
	// Until the first config has started, the table may be half restored
	// from disk: a reader would take it for what the server holds.
	if !n.started() {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the herd app is starting: its table is being restored")}
	}
	switch path := r.URL.Path; {
	case path == "/herd/storage":
		return writeJSON(w, n.storageView())
	case path == "/herd/storage/snapshot":
		l := n.log.Load()
		if l == nil {
			return caddy.APIError{HTTPStatus: http.StatusConflict, Err: errors.New("storage is off: the table is in memory only")}
		}
		if err := l.Snapshot(); err != nil {
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
		}
		return writeJSON(w, n.storageView())
	case path == "/herd/clients":
		return streamClients(w, n)
	case strings.HasPrefix(path, "/herd/clients/"):
		id := strings.TrimPrefix(path, "/herd/clients/")
		rec, ok := n.store.Get([]byte(id))
		if !ok {
			return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("unknown client: " + id)}
		}
		return writeJSON(w, newClientRecord(rec))
	case path == "/herd/stats":
		return writeJSON(w, n.statsView())
	case path == "/herd/peers":
		links := *n.links.Load()
		statuses := make([]peering.Status, 0, len(links))
		for _, l := range links {
			statuses = append(statuses, l.Status())
		}
		return writeJSON(w, statuses)
	}
	return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("no such herd endpoint: " + r.URL.Path)}
}

// streamClients writes the table as JSON lines without holding it all in
// memory: records go out shard by shard through a buffered writer.
func streamClients(w http.ResponseWriter, n *node) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	var err error
	n.store.Range(func(r herdstore.Record) bool {
		err = enc.Encode(newClientRecord(r))
		return err == nil
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// runningNode returns the node of the running config, if any.
func runningNode() *node {
	var found *node
	nodes.Range(func(_, v any) bool {
		found = v.(*node)
		return false
	})
	return found
}

var _ caddy.AdminRouter = AdminAPI{}
