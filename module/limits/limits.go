// Package limits holds the limits a herd server puts on its clients: the
// config types (per-IP connections and message rate, WHATSAT budgets), the
// token bucket they are enforced with, the bounded table of per-IP state,
// the WHATSAT budget and a throttle for the log entries that refusals make.
// It knows nothing of connections or of Caddy beyond the config's types: the
// herd's handler asks it, and counts and logs what it refuses.
package limits

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Limits bound what one client IP may take of this server, and what WHATSAT
// may cost the places provider. They are the app's, not a handler's: the
// state they keep per IP lives on the node, shared by every listener and
// kept across reloads, and a reload applies new limits to it at once.
//
// Every limit is off unless set. One IP is often many legitimate clients
// (phones behind a carrier's NAT, clients behind a TCP proxy), so no number
// is right for every deployment, and the right WHATSAT budget depends on
// what the provider's account may spend; the handler's defaults already
// bound what any client can hold (connections, line length, timeouts).
//
// Connections from a configured peer's address are exempt from the per-IP
// limits; the global WHATSAT budget applies to everyone. An IPv6 client is
// limited by its /64, which one host usually holds whole.
type Limits struct {
	// ConnectionsPerIP is the most connections one client IP may hold open
	// at once, on every listener of the herd; a connection beyond it is
	// closed at once. Zero, the default, sets no limit.
	ConnectionsPerIP int `json:"connections_per_ip,omitempty"`

	// MessagesPerIP is the rate of lines one client IP may send, over all
	// its connections, blank lines included; the connection whose line finds
	// the IP's bucket empty is closed, after the replies already due. Unset,
	// the default, sets no limit.
	MessagesPerIP *Rate `json:"messages_per_ip,omitempty"`

	// WhatsatPerIP is the rate of places requests one client IP may cause
	// the provider. Only a WHATSAT that needs a request of its own is
	// charged: answers from the cache or shared with an identical request
	// in flight cost nothing. Beyond it WHATSAT is answered `? <line>` and
	// the connection stays open. Unset, the default, sets no limit.
	WhatsatPerIP *Rate `json:"whatsat_per_ip,omitempty"`

	// WhatsatGlobal is the rate of places requests this server may send to
	// the provider, for all clients and peers together, charged as
	// WhatsatPerIP is. Beyond it WHATSAT is answered `? <line>`. Unset, the
	// default, sets no limit.
	WhatsatGlobal *Rate `json:"whatsat_global,omitempty"`
}

// Rate is a token bucket: Events tokens come back evenly over each Per, and
// at most Burst are saved up. Each limited action takes one token.
type Rate struct {
	// Events is how many actions are allowed per Per. Required, at least 1.
	Events int `json:"events,omitempty"`

	// Per is the time over which Events are allowed. Default: 1s.
	Per caddy.Duration `json:"per,omitempty"`

	// Burst is the most actions allowed at once, after a quiet spell.
	// Default: Events.
	Burst int `json:"burst,omitempty"`
}

// Named defaults and bounds of the limits.
const (
	// defaultRatePer is a Rate's Per when none is given: events per second.
	defaultRatePer = time.Second

	// maxIdleIPs bounds the IPs remembered without an open connection,
	// whose buckets are still refilling. IPs with an open connection are
	// always tracked; the handler's max_connections bounds those. When more
	// go idle, the ones whose buckets are nearest full are forgotten first,
	// so the least is forgiven. At about 200 bytes an IP, 64 Ki IPs are
	// some 13 MB at most.
	maxIdleIPs = 1 << 16

	// ipv6ClientPrefixBits is how much of an IPv6 address names one client:
	// a host usually holds a whole /64 and can pick any address in it.
	ipv6ClientPrefixBits = 64
)

// Validate checks every limit, naming the field at fault.
func (l *Limits) Validate() error {
	if l.ConnectionsPerIP < 0 {
		return fmt.Errorf("connections_per_ip %d: must not be negative", l.ConnectionsPerIP)
	}
	for _, r := range []struct {
		name string
		rate *Rate
	}{
		{"messages_per_ip", l.MessagesPerIP},
		{"whatsat_per_ip", l.WhatsatPerIP},
		{"whatsat_global", l.WhatsatGlobal},
	} {
		if r.rate == nil {
			continue
		}
		if err := r.rate.Validate(); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	return nil
}

// Validate checks a rate's fields.
func (r *Rate) Validate() error {
	if r.Events < 1 {
		return fmt.Errorf("events %d: must be at least 1", r.Events)
	}
	if r.Per < 0 {
		return fmt.Errorf("per %s: must not be negative", time.Duration(r.Per))
	}
	if r.Burst < 0 {
		return fmt.Errorf("burst %d: must not be negative", r.Burst)
	}
	return nil
}

// Allowance returns r as token bucket parameters, defaults applied; a nil
// rate limits nothing.
func (r *Rate) Allowance() Allowance {
	if r == nil || r.Events < 1 {
		return Allowance{}
	}
	per := time.Duration(r.Per)
	if per <= 0 {
		per = defaultRatePer
	}
	burst := r.Burst
	if burst == 0 {
		burst = r.Events
	}
	return Allowance{PerSecond: float64(r.Events) / per.Seconds(), Burst: float64(burst)}
}

// Config is a running config's limits, defaults applied.
type Config struct {
	ConnectionsPerIP int
	MessagesPerIP    Allowance
	WhatsatPerIP     Allowance
	WhatsatGlobal    Allowance
}

// Config returns l with defaults applied; a nil Limits limits nothing.
func (l *Limits) Config() Config {
	if l == nil {
		return Config{}
	}
	return Config{
		ConnectionsPerIP: l.ConnectionsPerIP,
		MessagesPerIP:    l.MessagesPerIP.Allowance(),
		WhatsatPerIP:     l.WhatsatPerIP.Allowance(),
		WhatsatGlobal:    l.WhatsatGlobal.Allowance(),
	}
}

// Interface guards
var (
	_ caddy.Validator = (*Limits)(nil)
	_ caddy.Validator = (*Rate)(nil)
)
