package module

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// limit names one of the limits, in logs, metrics and /herd/stats.
type limit int

const (
	limitConnectionsPerIP limit = iota
	limitMessagesPerIP
	limitWhatsatPerIP
	limitWhatsatGlobal
	limitCount
)

func (l limit) String() string {
	return [...]string{"connections_per_ip", "messages_per_ip", "whatsat_per_ip", "whatsat_global"}[l]
}

// clientLimits is the node's side of the limits: the running config's
// limits and the state they keep, which outlives configs.
type clientLimits struct {
	config atomic.Pointer[limitsConfig]
	ips    ipLimiter

	whatsatMu     sync.Mutex // guards whatsatGlobal
	whatsatGlobal tokenBucket

	limited [limitCount]atomic.Int64 // what each limit refused
	logs    [limitCount]logLimiter

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
func (cl *clientLimits) current() *limitsConfig {
	if cfg := cl.config.Load(); cfg != nil {
		return cfg
	}
	return &limitsConfig{}
}

// applyLimits makes a started config's limits the node's. The per-IP state
// is kept: new rates apply to it from now on.
func (n *node) applyLimits(l *Limits) {
	cfg := l.config()
	n.clients.config.Store(&cfg)
}

// refuse counts a refusal by l and logs it with fields, at most once per
// limitLogInterval for each limit, saying how many refusals the entry
// stands for.
func (n *node) refuse(l limit, log *zap.Logger, msg string, fields ...zap.Field) {
	n.clients.limited[l].Add(1)
	if ok, held := n.clients.logs[l].allow(n.clients.clock(), limitLogInterval); ok {
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
	ip, ok := n.clients.ips.open(clientKey(addr), cfg.connectionsPerIP, cfg, n.clients.clock())
	if !ok {
		n.refuse(limitConnectionsPerIP, c.log, "client IP has too many connections open; closing the new one",
			zap.Int("connections_per_ip", cfg.connectionsPerIP))
		return false
	}
	c.ip = ip
	return true
}

// releaseClient counts the end of a connection admitClient tracked.
func (c *session) releaseClient() {
	if c.ip != nil {
		cl := &c.h.node.clients
		cl.ips.close(c.ip, cl.current(), cl.clock())
	}
}

// admitLine takes a token from the client IP's message bucket and reports
// whether there was one; without, the connection is to be closed.
func (c *session) admitLine() bool {
	if c.ip == nil {
		return true
	}
	n := c.h.node
	r := n.clients.current().messagesPerIP
	if !r.enabled() {
		return true
	}
	c.ip.mu.Lock()
	ok := c.ip.messages.allow(r, n.clients.clock())
	c.ip.mu.Unlock()
	if !ok {
		n.refuse(limitMessagesPerIP, c.log, "client IP over its message rate; closing the connection")
	}
	return ok
}
