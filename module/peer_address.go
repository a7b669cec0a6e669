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

// Peer host names are looked up when a config starts and again every
// peerRefreshInterval, as links redial by name, so that a peer whose
// address changes is known again within the interval; each lookup may take
// up to peerResolveTimeout.
const (
	peerRefreshInterval = time.Minute
	peerResolveTimeout  = 5 * time.Second
)

// peerAddresses is what the node knows of its peers' IP addresses, to tell
// a peer's connection from a client's.
type peerAddresses struct {
	set atomic.Pointer[map[netip.Addr]struct{}]

	mu         sync.Mutex
	generation uint64                  // of the current peers
	literals   []netip.Addr            // the current peers given by address
	hosts      map[string][]netip.Addr // the current peers given by name, and their last known addresses
	stop       context.CancelFunc      // ends the current peers' lookups

	// Tests set these: lookup resolves a host name (nil for the system
	// resolver), refreshEvery replaces peerRefreshInterval, and
	// onLookupsDone is called after each round of lookups.
	lookup        func(ctx context.Context, host string) ([]netip.Addr, error)
	refreshEvery  time.Duration
	onLookupsDone func(generation uint64)
}

// isPeerAddress reports whether a connection from addr comes from a peer of
// this server: such connections are exempt from the per-IP limits. For now
// a peer is known by address only: one of the configured peers' addresses,
// host names resolved. This is the one place that decides it.
func (n *node) isPeerAddress(addr netip.Addr) bool {
	set := n.peerAddrs.set.Load()
	if set == nil {
		return false
	}
	_, ok := (*set)[addr.Unmap()]
	return ok
}

// resolvePeerAddresses makes peers the node's peers for isPeerAddress: IP
// literals at once, host names in the background, so that a slow resolver
// delays nothing; a host name still configured keeps its last known
// addresses meanwhile. The lookups of the previous peers end.
func (n *node) resolvePeerAddresses(peers []Peer, logger *zap.Logger) {
	p := &n.peerAddrs
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		p.stop()
		p.stop = nil
	}
	p.generation++
	p.literals = p.literals[:0:0]
	previous := p.hosts
	p.hosts = make(map[string][]netip.Addr)
	var names []string
	for _, peer := range peers {
		host, _, err := net.SplitHostPort(peer.Address)
		if err != nil {
			continue // Validate has refused it already
		}
		if addr, err := netip.ParseAddr(host); err == nil {
			p.literals = append(p.literals, addr.Unmap())
		} else if _, dup := p.hosts[host]; !dup {
			p.hosts[host] = previous[host]
			names = append(names, host)
		}
	}
	p.publish()
	if len(names) == 0 {
		return
	}
	ctx, stop := context.WithCancel(n.ctx)
	p.stop = stop
	go p.refresh(ctx, p.generation, names, logger)
}

// publish makes the current peers' addresses the set; p.mu is held.
func (p *peerAddresses) publish() {
	set := make(map[netip.Addr]struct{}, len(p.literals)+len(p.hosts))
	for _, addr := range p.literals {
		set[addr] = struct{}{}
	}
	for _, addrs := range p.hosts {
		for _, addr := range addrs {
			set[addr.Unmap()] = struct{}{}
		}
	}
	p.set.Store(&set)
}

// refresh looks up the host names of one generation of peers now and every
// refresh interval, until ctx ends. A failed lookup keeps the host's last
// known addresses.
func (p *peerAddresses) refresh(ctx context.Context, generation uint64, hosts []string, logger *zap.Logger) {
	lookup := p.lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	every := p.refreshEvery
	if every == 0 {
		every = peerRefreshInterval
	}
	for {
		for _, host := range hosts {
			lookupCtx, cancel := context.WithTimeout(ctx, peerResolveTimeout)
			addrs, err := lookup(lookupCtx, host)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					logger.Warn("resolving a peer's address; connections from a new address count as a client's",
						zap.String("host", host), zap.Error(err))
				}
				continue
			}
			p.mu.Lock()
			if p.generation == generation {
				p.hosts[host] = addrs
				p.publish()
			}
			p.mu.Unlock()
		}
		if p.onLookupsDone != nil {
			p.onLookupsDone(generation)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
