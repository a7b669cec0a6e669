package limits

import (
	"sync"
	"time"
)

// Kind names one of the limits, in logs, metrics and /herd/stats.
type Kind int

// The limits, by kind.
const (
	ConnectionsPerIP Kind = iota
	MessagesPerIP
	WhatsatPerIP
	WhatsatGlobal
	KindCount
)

func (k Kind) String() string {
	return [...]string{"connections_per_ip", "messages_per_ip", "whatsat_per_ip", "whatsat_global"}[k]
}

// OverBudget is the error of a WHATSAT refused by a budget.
type OverBudget struct{ Limit Kind }

func (e OverBudget) Error() string { return "over the " + e.Limit.String() + " budget" }

// WhatsatBudget is the server's global WHATSAT budget; the per-IP ones live
// with each IP.
type WhatsatBudget struct {
	mu     sync.Mutex
	global Bucket
}

// Charge takes one places request from the client IP's budget (ip nil for
// a peer, which has none) and the global one, or from neither if either is
// spent: a WHATSAT refused by its IP's budget costs the others nothing. The
// IP's lock is taken before the global one; nothing takes them the other way
// round.
func (w *WhatsatBudget) Charge(ip *IP, cfg *Config, now time.Time) error {
	perIP := ip != nil && cfg.WhatsatPerIP.Enabled()
	global := cfg.WhatsatGlobal.Enabled()
	if !perIP && !global {
		return nil
	}
	if perIP {
		ip.mu.Lock()
		defer ip.mu.Unlock()
		if !ip.whatsat.Available(cfg.WhatsatPerIP, now) {
			return OverBudget{WhatsatPerIP}
		}
	}
	if global {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.global.Allow(cfg.WhatsatGlobal, now) {
			return OverBudget{WhatsatGlobal}
		}
	}
	if perIP {
		ip.whatsat.Take()
	}
	return nil
}
