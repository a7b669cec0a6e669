package module

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/module/limits"
	"github.com/caddy-herd/caddy-herd/places"
)

// limitLogInterval is the least time between two log entries for the same
// limit, so that a flood does not flood the log; each entry says how many it
// stands for.
const limitLogInterval = 10 * time.Second

// clientLimits is the node's side of the limits: the running config's
// limits and the state they keep, which outlives configs.
type clientLimits struct {
	config  atomic.Pointer[limits.Config]
	ips     limits.IPTable
	whatsat limits.WhatsatBudget

	limited [limits.KindCount]atomic.Int64 // what each limit refused
	logs    [limits.KindCount]limits.LogThrottle

	// now is the limits' clock; nil for time.Now. Tests set it.
	now func() time.Time
}

func (cl *clientLimits) clock() time.Time {
	if cl.now != nil {
		return cl.now()
	}
	return time.Now()
}

// current returns the running config's limits; none before a config runs.
func (cl *clientLimits) current() *limits.Config {
	if cfg := cl.config.Load(); cfg != nil {
		return cfg
	}
	return &limits.Config{}
}

// applyLimits makes a started config's limits the node's. The per-IP state
// is kept: new rates apply to it from now on.
func (n *node) applyLimits(l *limits.Limits) {
	cfg := l.Config()
	n.clients.config.Store(&cfg)
}

// refuse counts a refusal by l and logs it with fields, at most once per
// limitLogInterval for each limit, saying how many refusals the entry
// stands for.
func (n *node) refuse(l limits.Kind, log *zap.Logger, msg string, fields ...zap.Field) {
	n.clients.limited[l].Add(1)
	if ok, held := n.clients.logs[l].Allow(n.clients.clock(), limitLogInterval); ok {
		log.Warn(msg, append(fields, zap.Stringer("limit", l), zap.Int64("refused_since_last_entry", held+1))...)
	}
}

// admitClient tracks the connection under its client IP and reports whether
// the IP may open it. Connections from a peer's address, or without an IP
// address, are not tracked and always admitted.
func (c *session) admitClient() bool {
	n := c.h.node
	addr := c.remote.Addr()
	if !addr.IsValid() || n.isPeerAddress(addr) {
		return true
	}
	cfg := n.clients.current()
	ip, ok := n.clients.ips.Open(limits.ClientKey(addr), cfg.ConnectionsPerIP, cfg, n.clients.clock())
	if !ok {
		n.refuse(limits.ConnectionsPerIP, c.log, "client IP has too many connections open; closing the new one",
			zap.Int("connections_per_ip", cfg.ConnectionsPerIP))
		return false
	}
	c.ip = ip
	return true
}

// releaseClient counts the end of a connection admitClient tracked.
func (c *session) releaseClient() {
	if c.ip != nil {
		cl := &c.h.node.clients
		cl.ips.Close(c.ip, cl.current(), cl.clock())
	}
}

// admitLine takes a token from the client IP's message bucket and reports
// whether there was one; without, the connection is to be closed.
func (c *session) admitLine() bool {
	if c.ip == nil {
		return true
	}
	n := c.h.node
	r := n.clients.current().MessagesPerIP
	if !r.Enabled() {
		return true
	}
	ok := c.ip.AllowMessage(r, n.clients.clock())
	if !ok {
		n.refuse(limits.MessagesPerIP, c.log, "client IP over its message rate; closing the connection")
	}
	return ok
}

// chargeWhatsat takes one places request from the client IP's WHATSAT
// budget and the global one (limits.WhatsatBudget.Charge).
func (c *session) chargeWhatsat() error {
	cl := &c.h.node.clients
	return cl.whatsat.Charge(c.ip, cl.current(), cl.clock())
}

// chargedProvider is a places provider that knows which queries cost a
// request upstream, and charges only those.
type chargedProvider interface {
	nearbyCharged(ctx context.Context, q places.Query, charge func() error) ([]byte, error)
}

// askPlaces asks p for places, charged to this client's WHATSAT budgets. A
// provider that cannot tell what costs a request has every query charged.
func (c *session) askPlaces(p places.Provider, q places.Query) ([]byte, error) {
	ctx := c.h.node.ctx
	if charged, ok := p.(chargedProvider); ok {
		return charged.nearbyCharged(ctx, q, c.chargeWhatsat)
	}
	if err := c.chargeWhatsat(); err != nil {
		return nil, err
	}
	return p.Nearby(ctx, q)
}
