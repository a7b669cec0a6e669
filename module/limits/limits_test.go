package limits

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		want   string // "" for valid
	}{
		{"none", Limits{}, ""},
		{"all", Limits{ConnectionsPerIP: 8, MessagesPerIP: &Rate{Events: 50}, WhatsatPerIP: &Rate{Events: 10, Per: caddy.Duration(time.Minute), Burst: 2}, WhatsatGlobal: &Rate{Events: 600, Per: caddy.Duration(time.Minute)}}, ""},
		{"negative connections", Limits{ConnectionsPerIP: -1}, "connections_per_ip -1: must not be negative"},
		{"no events", Limits{MessagesPerIP: &Rate{}}, "messages_per_ip: events 0: must be at least 1"},
		{"negative per", Limits{WhatsatPerIP: &Rate{Events: 1, Per: caddy.Duration(-time.Second)}}, "whatsat_per_ip: per -1s: must not be negative"},
		{"negative burst", Limits{WhatsatGlobal: &Rate{Events: 1, Burst: -1}}, "whatsat_global: burst -1: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.limits.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRateDefaults(t *testing.T) {
	tests := []struct {
		rate *Rate
		want Allowance
	}{
		{nil, Allowance{}},
		{&Rate{Events: 50}, Allowance{PerSecond: 50, Burst: 50}},
		{&Rate{Events: 600, Per: caddy.Duration(time.Minute)}, Allowance{PerSecond: 10, Burst: 600}},
		{&Rate{Events: 10, Per: caddy.Duration(time.Minute), Burst: 2}, Allowance{PerSecond: 10.0 / 60, Burst: 2}},
	}
	for _, tt := range tests {
		if got := tt.rate.Allowance(); got != tt.want {
			t.Errorf("%+v: %+v, want %+v", tt.rate, got, tt.want)
		}
	}
	if got := (*Limits)(nil).Config(); got != (Config{}) {
		t.Errorf("no limits: %+v", got)
	}
}
