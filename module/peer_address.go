package module

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// peerResolveTimeout bounds the lookup of a peer's host name.
const peerResolveTimeout = 5 * time.Second

// peerAddresses is what the node knows of its peers' IP addresses, to tell
// a peer's connection from a client's.
type peerAddresses struct {
	set atomic.Pointer[map[netip.Addr]struct{}]

	mu         sync.Mutex // serializes updates of set
	generation uint64     // of the latest update; guarded by mu

	// lookup resolves a host name; nil for the system resolver. Tests set it.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)

	// onLookupsDone, if set, is called when the host names of an update are
	// resolved and the result stored or dropped. Tests use it to know.
	onLookupsDone func()
}

// isPeerAddress reports whether a connection from addr comes from a peer of
// this server: such connections are exempt from the per-IP limits. For now
// a peer is known by address only: one of the configured peers' addresses,
// resolved when the config starts. This is the one place that decides it.
func (n *node) isPeerAddress(addr netip.Addr) bool {
	set := n.peerAddrs.set.Load()
	if set == nil {
		return false
	}
	_, ok := (*set)[addr.Unmap()]
	return ok
}

// resolvePeerAddresses replaces the peer addresses with those of peers: IP
// literals at once, host names in the background, so that a slow resolver
// delays neither a reload nor anything else. A lookup that fails is logged
// and leaves that peer unknown until the next config load; a later call
// supersedes the lookups of an earlier one still running.
func (n *node) resolvePeerAddresses(peers []Peer, logger *zap.Logger) {
	p := &n.peerAddrs
	known := make(map[netip.Addr]struct{})
	var hosts []string
	for _, peer := range peers {
		host, _, err := net.SplitHostPort(peer.Address)
		if err != nil {
			continue // Validate has refused it already
		}
		if addr, err := netip.ParseAddr(host); err == nil {
			known[addr.Unmap()] = struct{}{}
		} else {
			hosts = append(hosts, host)
		}
	}
	p.mu.Lock()
	p.generation++
	generation := p.generation
	p.set.Store(&known)
	p.mu.Unlock()
	if len(hosts) == 0 {
		return
	}
	lookup := p.lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	go func() {
		ctx, cancel := context.WithTimeout(n.ctx, peerResolveTimeout)
		defer cancel()
		resolved := make(map[netip.Addr]struct{}, len(known)+len(hosts))
		for addr := range known {
			resolved[addr] = struct{}{}
		}
		for _, host := range hosts {
			addrs, err := lookup(ctx, host)
			if err != nil {
				logger.Warn("resolving a peer's address; its connections count as a client's", zap.String("host", host), zap.Error(err))
				continue
			}
			for _, addr := range addrs {
				resolved[addr.Unmap()] = struct{}{}
			}
		}
		p.mu.Lock()
		if p.generation == generation {
			p.set.Store(&resolved)
		}
		p.mu.Unlock()
		if p.onLookupsDone != nil {
			p.onLookupsDone()
		}
	}()
}
