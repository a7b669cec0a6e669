package module

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-herd/caddy-herd/module/limits"
)

func TestAppValidate(t *testing.T) {
	tests := []struct {
		name string
		app  App
		want string // "" for valid
	}{
		{"valid", App{Name: "A", Peers: []Peer{{"B", "127.0.0.1:1"}, {"C", "peer.example:12000"}}}, ""},
		{"no peers", App{Name: "A"}, ""},
		{"missing name", App{}, "herd name: a name is required"},
		{"name with space", App{Name: "A B"}, "contains whitespace"},
		{"peer without name", App{Name: "A", Peers: []Peer{{"", "127.0.0.1:1"}}}, "name: a name is required"},
		{"peer like self", App{Name: "A", Peers: []Peer{{"A", "127.0.0.1:1"}}}, "own name"},
		{"duplicate name", App{Name: "A", Peers: []Peer{{"B", "127.0.0.1:1"}, {"B", "127.0.0.1:2"}}}, "listed twice"},
		{"duplicate address", App{Name: "A", Peers: []Peer{{"B", "127.0.0.1:1"}, {"C", "127.0.0.1:1"}}}, "already peer B's"},
		{"no port", App{Name: "A", Peers: []Peer{{"B", "127.0.0.1"}}}, "not host:port"},
		{"no host", App{Name: "A", Peers: []Peer{{"B", ":12000"}}}, "has no host"},
		{"port zero", App{Name: "A", Peers: []Peer{{"B", "h:0"}}}, "port must be"},
		{"radius limit", App{Name: "A", MaxRadiusKm: 51}, "max_radius_km 51"},
		{"bound limit", App{Name: "A", MaxBound: new(21)}, "max_bound 21"},
		{"limits within range", App{Name: "A", MaxRadiusKm: 10, MaxBound: new(0)}, ""},
		{"cache ttl", App{Name: "A", CacheTTL: caddy.Duration(time.Minute)}, ""},
		{"negative cache ttl", App{Name: "A", CacheTTL: caddy.Duration(-time.Second)}, "herd cache_ttl -1s: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.app.Validate()
			checkError(t, "Validate()", err, tt.want)
		})
	}
}

func TestHandlerValidate(t *testing.T) {
	if err := (&Handler{MaxLineBytes: 10}).Validate(); err == nil || !strings.Contains(err.Error(), "max_line_bytes") {
		t.Errorf("a tiny max_line_bytes: %v", err)
	}
	if err := (&Handler{MaxLineBytes: 4096}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// checkError fails t unless err is nil when want is empty, or else an error
// whose message contains want.
func checkError(t *testing.T, call string, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%s = %v, want nil", call, err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s = %v, want an error containing %q", call, err, want)
	}
}

func TestAppValidatesLimits(t *testing.T) {
	app := App{Name: "A", Limits: &limits.Limits{MessagesPerIP: &limits.Rate{}}}
	if err := app.Validate(); err == nil || !strings.Contains(err.Error(), "herd limits: messages_per_ip: events 0") {
		t.Errorf("App.Validate() = %v, want the limits' error with its field", err)
	}
}
