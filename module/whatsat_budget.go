package module

import (
	"context"

	"github.com/caddy-herd/caddy-herd/places"
)

// overBudget is the error of a WHATSAT refused by a budget.
type overBudget struct{ limit limit }

func (e overBudget) Error() string { return "over the " + e.limit.String() + " budget" }

// chargeWhatsat takes one places request from the client IP's budget and
// the global one, or from neither if either is spent: a WHATSAT refused by
// its IP's budget costs the others nothing. The IP's lock is taken before
// the global one; nothing takes them the other way round.
func (c *session) chargeWhatsat() error {
	n := c.h.node
	cfg := n.clients.current()
	perIP := c.ip != nil && cfg.whatsatPerIP.enabled()
	global := cfg.whatsatGlobal.enabled()
	if !perIP && !global {
		return nil
	}
	now := n.clients.clock()
	if perIP {
		c.ip.mu.Lock()
		defer c.ip.mu.Unlock()
		if !c.ip.whatsat.available(cfg.whatsatPerIP, now) {
			return overBudget{limitWhatsatPerIP}
		}
	}
	if global {
		n.clients.whatsatMu.Lock()
		defer n.clients.whatsatMu.Unlock()
		if !n.clients.whatsatGlobal.allow(cfg.whatsatGlobal, now) {
			return overBudget{limitWhatsatGlobal}
		}
	}
	if perIP {
		c.ip.whatsat.take()
	}
	return nil
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
