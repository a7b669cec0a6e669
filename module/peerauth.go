package module

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/peering"
)

// The peer authentication modes: who may send AT lines, which overwrite a
// client's location in the whole herd.
const (
	// PeerAuthOff accepts AT from any connection, as the classic protocol
	// does.
	PeerAuthOff = "off"
	// PeerAuthAddresses accepts AT from a peer's resolved address or from a
	// trusted network.
	PeerAuthAddresses = "addresses"
	// PeerAuthTLS accepts AT from a connection whose client certificate,
	// verified against the herd's CA, names a peer.
	PeerAuthTLS = "tls"
)

// Peer address resolution.
const (
	// resolveEvery is how often peer host names are looked up again, so
	// that a peer whose DNS record changes is still recognised, as its links
	// already follow the record at every dial.
	resolveEvery = time.Minute
	// resolveTimeout bounds one round of lookups.
	resolveTimeout = 5 * time.Second
)

// rejectLogEvery is the least time between two log entries about rejected
// AT lines: a flood of them is summarised, not logged line by line.
const rejectLogEvery = time.Second

// PeerTLS is the certificate material of a herd that uses mutual TLS
// between peers. Links dial with it whenever it is set; with peer_auth tls,
// incoming peer certificates are verified against CAFile too.
type PeerTLS struct {
	// CertFile is this server's PEM certificate (chain), presented to the
	// peers it dials. It must name this server (docs/security.md, "Peer
	// authentication") and allow both server and client authentication.
	CertFile string `json:"cert_file,omitempty"`

	// KeyFile is the PEM private key of CertFile.
	KeyFile string `json:"key_file,omitempty"`

	// CAFile holds the PEM certificates of the authority that signs the
	// herd's certificates. A peer's certificate must chain to it, whether
	// this server dials the peer or the peer dials this server.
	CAFile string `json:"ca_file,omitempty"`
}

// rejection is why an AT line was refused, or admitted if it was not.
type rejection uint8

const (
	admitted rejection = iota
	rejectedAddress
	rejectedNoCertificate
	rejectedUntrustedCertificate
	rejectedUnknownName
	rejectionCount
)

// String is the reason's name in metrics, stats and logs.
func (r rejection) String() string {
	return [rejectionCount]string{"admitted", "address", "no_certificate", "untrusted_certificate", "unknown_name"}[r]
}

// peerAuth is one config's decision of which connections may send AT.
// Nothing in it changes after it is built except the resolved addresses.
type peerAuth struct {
	mode    string
	peers   []Peer
	trusted []netip.Prefix
	tls     *peering.TLS // links dial with it; with mode tls, it verifies peers too

	// addresses maps every resolved address of a peer to its name.
	addresses atomic.Pointer[map[netip.Addr]string]

	stopResolving context.CancelFunc
	resolving     sync.WaitGroup
}

// offPolicy is the policy of a node no config has started yet.
var offPolicy = &peerAuth{mode: PeerAuthOff}

// newPeerAuth builds and checks a policy. Errors name the config field.
func newPeerAuth(mode string, peers []Peer, trustedNetworks []string, tlsFiles *PeerTLS) (*peerAuth, error) {
	p := &peerAuth{mode: mode, peers: peers}
	switch mode {
	case "":
		p.mode = PeerAuthOff
	case PeerAuthOff, PeerAuthAddresses, PeerAuthTLS:
	default:
		return nil, fmt.Errorf("herd peer_auth %q: must be %s, %s or %s", mode, PeerAuthOff, PeerAuthAddresses, PeerAuthTLS)
	}
	if len(trustedNetworks) > 0 && p.mode != PeerAuthAddresses {
		return nil, fmt.Errorf("herd trusted_networks: only used with peer_auth %s, not %s", PeerAuthAddresses, p.mode)
	}
	for _, n := range trustedNetworks {
		prefix, err := parseNetwork(n)
		if err != nil {
			return nil, fmt.Errorf("herd trusted_networks %q: %w", n, err)
		}
		p.trusted = append(p.trusted, prefix)
	}
	if tlsFiles != nil {
		if tlsFiles.CertFile == "" || tlsFiles.KeyFile == "" || tlsFiles.CAFile == "" {
			return nil, errors.New("herd tls: cert_file, key_file and ca_file are all required")
		}
		loaded, err := peering.LoadTLS(tlsFiles.CertFile, tlsFiles.KeyFile, tlsFiles.CAFile)
		if err != nil {
			return nil, fmt.Errorf("herd tls: %w", err)
		}
		p.tls = loaded
	}
	if p.mode == PeerAuthTLS && p.tls == nil {
		return nil, errors.New("herd peer_auth tls: needs the tls block (cert_file, key_file, ca_file)")
	}
	p.addresses.Store(new(map[netip.Addr]string))
	return p, nil
}

// parseNetwork reads a CIDR, or a single address as the network of it alone.
func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if prefix != prefix.Masked() {
			return netip.Prefix{}, fmt.Errorf("has host bits set; the network is %s", prefix.Masked())
		}
		return prefix, nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR or an IP address: %w", err)
	}
	return netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()), nil
}

// start resolves the peers' hosts before the policy is used, so that no
// flood from a peer is refused or limited while a config starts; then
// resolves them again every resolveEvery until stop. Every mode needs the
// addresses: peers are exempt from the per-IP limits.
func (p *peerAuth) start(logger *zap.Logger) {
	p.resolve(logger)
	ctx, cancel := context.WithCancel(context.Background())
	p.stopResolving = cancel
	p.resolving.Go(func() {
		t := time.NewTicker(resolveEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.resolve(logger)
			case <-ctx.Done():
				return
			}
		}
	})
}

// stop ends the periodic resolution.
func (p *peerAuth) stop() {
	if p.stopResolving != nil {
		p.stopResolving()
		p.resolving.Wait()
	}
}

// resolve looks every peer's host up and replaces the address map. A host
// whose lookup fails keeps the addresses it had, so that a DNS outage does
// not turn a peer away.
func (p *peerAuth) resolve(logger *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	previous := *p.addresses.Load()
	found := make([][]netip.Addr, len(p.peers))
	var wg sync.WaitGroup
	for i, peer := range p.peers {
		host, _, _ := net.SplitHostPort(peer.Address)
		if addr, err := netip.ParseAddr(host); err == nil {
			found[i] = []netip.Addr{addr.Unmap()}
			continue
		}
		wg.Go(func() {
			addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			if err != nil {
				logger.Warn("resolving peer address; keeping its previous addresses",
					zap.String("peer", peer.Name), zap.String("host", host), zap.Error(err))
				for a, name := range previous {
					if name == peer.Name {
						found[i] = append(found[i], a)
					}
				}
				return
			}
			for _, a := range addrs {
				found[i] = append(found[i], a.Unmap())
			}
		})
	}
	wg.Wait()
	next := make(map[netip.Addr]string)
	for i, addrs := range found {
		for _, a := range addrs {
			if other, ok := next[a]; ok && other != p.peers[i].Name {
				logger.Warn("two peers resolve to the same address; AT from it is credited to the first",
					zap.String("address", a.String()), zap.String("peer", other), zap.String("also", p.peers[i].Name))
				continue
			}
			next[a] = p.peers[i].Name
		}
	}
	p.addresses.Store(&next)
}

// knowsAddress reports whether addr is a peer's resolved address or in a
// trusted network.
func (p *peerAuth) knowsAddress(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	if m := p.addresses.Load(); m != nil {
		if _, ok := (*m)[addr]; ok {
			return true
		}
	}
	for _, n := range p.trusted {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// admit decides whether a connection from remote, with the TLS states of the
// layers terminated on it, may send AT, and names the peer when it is known:
// by address, or by certificate. A trusted network names no peer.
func (p *peerAuth) admit(remote netip.Addr, states []*tls.ConnectionState) (string, rejection) {
	switch p.mode {
	case PeerAuthAddresses:
		// Resolved addresses carry no zone, and a v4 peer may reach a
		// dual-stack listener as ::ffff:a.b.c.d.
		remote = remote.Unmap().WithZone("")
		if name, ok := (*p.addresses.Load())[remote]; ok {
			return name, admitted
		}
		for _, n := range p.trusted {
			if n.Contains(remote) {
				return "", admitted
			}
		}
		return "", rejectedAddress
	case PeerAuthTLS:
		return p.admitCertificate(states)
	}
	return "", admitted
}

// admitCertificate finds a client certificate that chains to the herd's CA
// and names a peer. The listener's TLS handler has usually verified it
// already; checking again here keeps the decision the herd's own, whatever
// that handler's client_auth mode and trust pool.
func (p *peerAuth) admitCertificate(states []*tls.ConnectionState) (string, rejection) {
	verdict := rejectedNoCertificate
	for _, st := range states {
		if st == nil || len(st.PeerCertificates) == 0 {
			continue
		}
		if peering.VerifyChain(st.PeerCertificates, p.tls.Roots, x509.ExtKeyUsageClientAuth) != nil {
			verdict = max(verdict, rejectedUntrustedCertificate)
			continue
		}
		for _, peer := range p.peers {
			if peering.CertificateNames(st.PeerCertificates[0], peer.Name) {
				return peer.Name, admitted
			}
		}
		verdict = rejectedUnknownName
	}
	return "", verdict
}

// isPeerAddress reports whether a connection from addr comes from a peer of
// this server, by address: one of the configured peers' resolved addresses,
// or a trusted network. Such connections are exempt from the per-IP limits.
func (n *node) isPeerAddress(addr netip.Addr) bool {
	return n.auth.Load().knowsAddress(addr)
}
