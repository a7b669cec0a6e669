// Package module holds the herd's Caddy modules: the `herd` app, which owns
// the client table and the links to peers, and the `layer4.handlers.herd`
// connection handler, which speaks the line protocol to clients and peers.
package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/module/limits"
	"github.com/caddy-herd/caddy-herd/places"
	"github.com/caddy-herd/caddy-herd/protocol"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the herd server of this Caddy instance: its name, its peers and its
// places provider. The client table and the peer links it owns survive config
// reloads; a reload that changes the peers closes and dials only the links
// that changed.
type App struct {
	// Name is this server's name in the herd, sent in every AT reply to
	// IAMAT. Required; no whitespace.
	Name string `json:"name,omitempty"`

	// Peers are the servers this one floods its updates to, over one
	// outbound TCP link each. Links are bidirectional in effect: list each
	// pair on both sides.
	Peers []Peer `json:"peers,omitempty"`

	// Places is the provider that answers WHATSAT, chosen by its `provider`
	// key: `google_legacy`, `google` or `file`. Without one, WHATSAT is
	// answered `? <line>`.
	PlacesRaw json.RawMessage `json:"places,omitempty" caddy:"namespace=herd.places inline_key=provider"`

	// MaxRadiusKm caps the radius a WHATSAT may ask for, in kilometres,
	// within (0, 50]; a larger radius is answered `? <line>`. Default: 50.
	MaxRadiusKm float64 `json:"max_radius_km,omitempty"`

	// MaxBound caps the number of places a WHATSAT may ask for, within
	// [0, 20]; a larger bound is answered `? <line>`. Default: 20.
	MaxBound *int `json:"max_bound,omitempty"`

	// CacheTTL is how long a successful places answer is kept and served
	// again to WHATSATs with the same location, radius and bound, without
	// asking the provider. Zero, the default, keeps no answer; identical
	// WHATSATs in flight at the same time share one request either way.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// Limits bound what one client IP may take of this server and what
	// WHATSAT may cost the places provider. Every limit is off unless set.
	Limits *limits.Limits `json:"limits,omitempty"`

	// PeerAuth decides which connections may send AT lines, which overwrite
	// a client's location in the whole herd: `off` (the default, as the
	// classic protocol does: anyone who can connect), `addresses` (only
	// connections from a peer's resolved address or from TrustedNetworks) or
	// `tls` (only connections whose client certificate chains to TLS.CAFile
	// and names a peer). A refused AT is answered `? <line>` and changes
	// nothing.
	PeerAuth string `json:"peer_auth,omitempty"`

	// TrustedNetworks are CIDRs (or single addresses) whose connections may
	// send AT as peers' do, with peer_auth `addresses`: for peers that dial
	// from an address their host name does not resolve to.
	TrustedNetworks []string `json:"trusted_networks,omitempty"`

	// TLS is this server's certificate and the herd's CA. When set, links
	// to peers dial with mutual TLS; peer_auth `tls` requires it.
	TLS *PeerTLS `json:"tls,omitempty"`

	// Storage is where the table is kept on disk and how durably: by
	// default in `herd/<name>` under Caddy's data directory, synced about
	// once a second. A reload keeps the open directory; one that names
	// another moves the table into it.
	Storage *Storage `json:"storage,omitempty"`

	storage storagePlan
	auth    *peerAuth
	places  places.Provider
	node    *node
	logger  *zap.Logger
}

// Peer is another server of the herd.
type Peer struct {
	// Name is the peer's herd name.
	Name string `json:"name,omitempty"`

	// Address is the peer's host:port, where its herd handler listens.
	Address string `json:"address,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "herd",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision loads the places provider, behind this config's coalescing and
// cache, and takes a reference to the node that holds the table. It dials
// nothing, so `caddy validate` stays offline.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	var provider places.Provider
	if a.PlacesRaw != nil {
		mod, err := ctx.LoadModule(a, "PlacesRaw")
		if err != nil {
			return fmt.Errorf("loading places provider: %w", err)
		}
		provider = mod.(places.Provider)
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering herd metrics: %w", err)
	}
	n, err := loadNode()
	if err != nil {
		return fmt.Errorf("loading herd node: %w", err)
	}
	a.node = n
	// The directory is only looked at here, so that `caddy validate` writes
	// nothing; Start opens it.
	if a.storage, err = a.Storage.plan(a.Name); err != nil {
		return fmt.Errorf("herd storage: %w", err)
	}
	if err := a.storage.check(n); err != nil {
		return err
	}
	if provider != nil {
		a.places = newSharedPlaces(n.ctx, provider, time.Duration(a.CacheTTL), &n.stats.placesUpstream)
	}
	return nil
}

// Validate checks the name, the peers, the WHATSAT radius and bound, the
// cache TTL, the limits block and the peer authentication. It builds the peer authentication policy,
// reading the TLS files, so that every config error, those of the files
// included, comes from here; Start applies what it built.
func (a *App) Validate() error {
	if err := ValidateName(a.Name); err != nil {
		return fmt.Errorf("herd name: %w", err)
	}
	for i, p := range a.Peers {
		if err := ValidatePeer(a.Name, a.Peers[:i], p); err != nil {
			return fmt.Errorf("herd peer %q: %w", p.Name, err)
		}
	}
	if a.MaxRadiusKm < 0 || a.MaxRadiusKm > protocol.MaxRadiusKm {
		return fmt.Errorf("herd max_radius_km %v: must be within (0, %d]", a.MaxRadiusKm, protocol.MaxRadiusKm)
	}
	if a.MaxBound != nil && (*a.MaxBound < 0 || *a.MaxBound > protocol.MaxBound) {
		return fmt.Errorf("herd max_bound %d: must be within [0, %d]", *a.MaxBound, protocol.MaxBound)
	}
	if a.CacheTTL < 0 {
		return fmt.Errorf("herd cache_ttl %s: must not be negative", time.Duration(a.CacheTTL))
	}
	if a.Limits != nil {
		if err := a.Limits.Validate(); err != nil {
			return fmt.Errorf("herd limits: %w", err)
		}
	}
	auth, err := newPeerAuth(a.PeerAuth, a.Peers, a.TrustedNetworks, a.TLS)
	if err != nil {
		return err
	}
	a.auth = auth
	return nil
}

// limits returns the WHATSAT limits of this config, defaults applied.
func (a *App) limits() whatsatLimits {
	l := whatsatLimits{radiusKm: a.MaxRadiusKm, bound: protocol.MaxBound}
	if l.radiusKm == 0 {
		l.radiusKm = protocol.MaxRadiusKm
	}
	if a.MaxBound != nil {
		l.bound = *a.MaxBound
	}
	return l
}

// Start applies this config to the node: storage, name, provider, peer
// authentication and peer links. At the first start it restores the table
// from disk; in peer_auth addresses mode it resolves the peers' hosts first.
func (a *App) Start() error {
	if a.auth == nil {
		if err := a.Validate(); err != nil {
			return err
		}
	}
	if err := a.node.startStorage(a.storage, a.logger); err != nil {
		return err
	}
	a.auth.start(a.logger)
	a.node.limits.Store(new(a.limits()))
	a.node.configure(a.Name, a.Peers, a.places, a.auth, a.logger)
	a.node.applyLimits(a.Limits)
	a.node.markReady()
	a.logger.Info("herd server started", zap.String("name", a.Name), zap.Int("peers", len(a.Peers)), zap.Int("clients", a.node.store.Len()),
		zap.String("storage", a.storage.String()),
		zap.String("peer_auth", a.auth.mode), zap.Bool("peer_links_tls", a.auth.tls != nil))
	if a.auth.mode == PeerAuthOff {
		a.logger.Warn("peer_auth off: AT lines are accepted from anyone who can connect, and can overwrite any client's location herd-wide; set peer_auth addresses or tls")
	}
	return nil
}

// Stop ends this config's periodic peer address resolution. The node carries
// on: on a reload the next config has already taken over, and when Caddy
// stops the node closes in Cleanup.
func (a *App) Stop() error {
	if a.auth != nil {
		a.auth.stop()
	}
	return nil
}

// Cleanup drops this config's reference to the node; the last one closes it.
func (a *App) Cleanup() error {
	if a.node == nil {
		return nil
	}
	_, err := nodes.Delete(nodeKey)
	return err
}

// ValidateName checks a server name: required, without whitespace.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("a name is required")
	}
	if strings.ContainsAny(name, " \t\r\n\f\v") {
		return fmt.Errorf("%q contains whitespace", name)
	}
	return nil
}

// ValidatePeer checks a peer against this server's name and the peers listed
// before it.
func ValidatePeer(self string, earlier []Peer, p Peer) error {
	if err := ValidateName(p.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if p.Name == self {
		return errors.New("a peer cannot have this server's own name")
	}
	host, port, err := net.SplitHostPort(p.Address)
	if err != nil {
		return fmt.Errorf("address %q is not host:port: %w", p.Address, err)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", p.Address)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("address %q: port must be a number from 1 to 65535", p.Address)
	}
	for _, e := range earlier {
		if e.Name == p.Name {
			return errors.New("listed twice")
		}
		if e.Address == p.Address {
			return fmt.Errorf("address %s is already peer %s's", p.Address, e.Name)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
