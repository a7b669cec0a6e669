package module

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/module/limits"
	"github.com/caddy-herd/caddy-herd/peering"
	"github.com/caddy-herd/caddy-herd/places"
)

// nodes holds the one node of this process across config reloads: each
// loaded config's herd app takes a reference in Provision and drops it in
// Cleanup, so a reload keeps the table, the links and the open connections,
// and the node ends only when no config has a herd app any more.
var nodes = caddy.NewUsagePool()

// nodeKey is the node's key in nodes: a process runs one herd server.
const nodeKey = "herd"

// node is the state that outlives a config: the client table, the links to
// peers, and what the current config says about this server.
type node struct {
	store *herdstore.Store
	// log keeps the table on disk; nil while it is in memory only.
	log atomic.Pointer[herdwal.Log]
	// epoch names the node's numbering of records, for its peers.
	epoch atomic.Pointer[string]
	// resendOwn is set when this server may have lost records it made:
	// peers that catch it up send it those too.
	resendOwn atomic.Bool
	storage   storage
	// sessions knows the open connections and how far their records are
	// stored.
	sessions sessions

	name   atomic.Pointer[string]
	places atomic.Pointer[placesProvider]
	limits atomic.Pointer[whatsatLimits]
	logger atomic.Pointer[zap.Logger]
	// auth decides which connections may send AT.
	auth atomic.Pointer[peerAuth]
	// rejectLog spaces out the log entries about refused AT lines.
	rejectLog limits.LogThrottle

	mu    sync.Mutex // serializes configure and Destruct
	links atomic.Pointer[[]*peering.Link]

	// ctx ends when the node is destructed; open connections close then.
	ctx    context.Context
	cancel context.CancelFunc

	// ready is closed once the first config's herd app has started: Caddy
	// may start the layer4 app first, and until then the node has no name
	// and no peer authentication to answer with.
	ready     chan struct{}
	readyOnce sync.Once

	stats stats

	// clients holds the per-IP limits' state.
	clients clientLimits

	// connections counts open connections across reloads.
	connections     atomic.Int64
	connectionsFull atomic.Bool
}

// openConnection counts a new connection unless max are already open.
func (n *node) openConnection(max int) bool {
	if c := n.connections.Add(1); max > 0 && c > int64(max) {
		n.connections.Add(-1)
		return false
	}
	return true
}

func (n *node) closeConnection() { n.connections.Add(-1) }

// whatsatLimits are the largest radius and bound a WHATSAT may ask for.
type whatsatLimits struct {
	radiusKm float64
	bound    int
}

type placesProvider struct {
	places.Provider
	name string // the provider's module name, for metrics and logs
}

func loadNode() (*node, error) {
	v, _, err := nodes.LoadOrNew(nodeKey, func() (caddy.Destructor, error) {
		return newNode(), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*node), nil
}

// newNode returns a node with an empty table, not ready until markReady.
func newNode() *node {
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{store: herdstore.New(), ctx: ctx, cancel: cancel, ready: make(chan struct{})}
	n.stats.started = time.Now()
	// Until a config keeps the table on disk, it is numbered in an epoch of
	// this process's, after the numbers any earlier process gave.
	epoch := newEpoch()
	n.epoch.Store(&epoch)
	n.resendOwn.Store(true)
	n.store.AdvanceSeq(uint64(time.Now().UnixNano()))
	n.links.Store(new([]*peering.Link))
	n.logger.Store(zap.NewNop())
	n.auth.Store(offPolicy)
	return n
}

// markReady lets connections be served: a config has configured the node.
func (n *node) markReady() { n.readyOnce.Do(func() { close(n.ready) }) }

// started reports whether a config has started the node.
func (n *node) started() bool {
	select {
	case <-n.ready:
		return true
	default:
		return false
	}
}

// awaitReady waits until the node is ready and reports whether it is, false
// if it ended first.
func (n *node) awaitReady() bool {
	select {
	case <-n.ready:
		return true
	case <-n.ctx.Done():
		return false
	}
}

// linkKey is what makes a link unchanged across a reload: the peer's name
// and address, and the TLS material it dials with.
type linkKey struct {
	name, address, tls string
}

// configure applies a started config: its name and provider, its peer
// authentication (nil for off), and its peers. A peer whose name, address
// and link TLS material are unchanged keeps its link; a removed or changed
// one is closed; a new one is dialled.
func (n *node) configure(name string, peers []Peer, provider places.Provider, auth *peerAuth, logger *zap.Logger) {
	if auth == nil {
		auth = offPolicy
	}
	providerName := ""
	if m, ok := provider.(caddy.Module); ok {
		providerName = m.CaddyModule().ID.Name()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.name.Store(&name)
	if provider != nil {
		n.places.Store(&placesProvider{Provider: provider, name: providerName})
	} else {
		n.places.Store(nil)
	}
	n.logger.Store(logger)
	n.auth.Store(auth)
	peerLogger := logger.Named("peer")

	current := make(map[linkKey]*peering.Link)
	for _, l := range *n.links.Load() {
		current[linkKey{l.Name(), l.Address(), l.TLSFingerprint()}] = l
	}
	next := make([]*peering.Link, 0, len(peers))
	for _, p := range peers {
		key := linkKey{p.Name, p.Address, auth.tls.Fingerprint()}
		if l, ok := current[key]; ok {
			delete(current, key)
			l.SetLogger(peerLogger)
			next = append(next, l)
			continue
		}
		l := peering.NewLink(p.Name, p.Address, auth.tls, linkServer{n}, peerLogger)
		l.Start()
		next = append(next, l)
	}
	n.links.Store(&next)
	for _, l := range current {
		l.Close()
	}
}

// provider returns the configured places provider, or nil.
func (n *node) provider() *placesProvider {
	return n.places.Load()
}

// Stopping limits.
const (
	// drainTimeout bounds how long a stopping server waits for its up links
	// to deliver the updates it has already acknowledged.
	drainTimeout = 2 * time.Second
	// closeTimeout bounds how long a stopping server waits for its
	// connections to store what they read and end.
	closeTimeout = 2 * time.Second
)

// Destruct closes every open connection, lets the links deliver what is
// queued, closes them and closes the storage. It runs when the last config
// using the node is cleaned up. Connections close first: every reply a client
// got was stored and queued before, so the drain covers everything
// acknowledged, and the storage closes with nothing more to write.
func (n *node) Destruct() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cancel()
	logger := n.logger.Load()
	if !n.sessions.waitClosed(closeTimeout) {
		logger.Warn("connections still open after the stop", zap.Int("connections", n.sessions.count()))
	}
	links := *n.links.Load()
	var wg sync.WaitGroup
	for _, l := range links {
		wg.Go(func() {
			if !l.Drain(drainTimeout) {
				logger.Warn("peer link not drained before stopping", zap.String("peer", l.Name()), zap.Int("pending", l.Pending()))
			}
		})
	}
	wg.Wait()
	for _, l := range links {
		l.Close()
	}
	n.links.Store(new([]*peering.Link))
	if l := n.log.Swap(nil); l != nil {
		n.closeLog(l, logger)
	}
	return nil
}

var _ caddy.Destructor = (*node)(nil)
