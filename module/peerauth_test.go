package module

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-herd/caddy-herd/internal/testcerts"
	"github.com/caddy-herd/caddy-herd/peering"
	"github.com/caddy-herd/caddy-herd/protocol"
)

// herdCerts is a herd's CA with certificates for its peers and for the
// ways a peer's certificate can be wrong.
type herdCerts struct {
	ca                                           *testcerts.CA
	self, meeks, hill, cnOnly                    *testcerts.Leaf
	otherCA, expired, wrongName, wildcard, noSAN *testcerts.Leaf
}

func makeHerdCerts(t *testing.T) *herdCerts {
	t.Helper()
	ca := testcerts.NewCA(t, "herd CA")
	other := testcerts.NewCA(t, "other CA")
	return &herdCerts{
		ca:        ca,
		self:      ca.Leaf(t, testcerts.Options{DNSNames: []string{"Self"}}),
		meeks:     ca.Leaf(t, testcerts.Options{DNSNames: []string{"Meeks"}}),
		hill:      ca.Leaf(t, testcerts.Options{URIs: []string{"Hill"}}),
		cnOnly:    ca.Leaf(t, testcerts.Options{CommonName: "Meeks"}),
		otherCA:   other.Leaf(t, testcerts.Options{DNSNames: []string{"Meeks"}}),
		expired:   ca.Leaf(t, testcerts.Options{DNSNames: []string{"Meeks"}, Expired: true}),
		wrongName: ca.Leaf(t, testcerts.Options{DNSNames: []string{"Mallory"}}),
		wildcard:  ca.Leaf(t, testcerts.Options{DNSNames: []string{"*"}}),
		noSAN:     ca.Leaf(t, testcerts.Options{CommonName: "Mallory"}),
	}
}

// policy builds a started policy for peers Meeks (127.0.0.2) and Hill
// (localhost, resolved).
func policy(t *testing.T, certs *herdCerts, mode string, trusted ...string) *peerAuth {
	t.Helper()
	var files *PeerTLS
	if mode == PeerAuthTLS {
		dir := t.TempDir()
		cert, key := certs.self.Write(t, dir, "self")
		files = &PeerTLS{CertFile: cert, KeyFile: key, CAFile: certs.ca.Write(t, dir, "ca")}
	}
	peers := []Peer{{Name: "Meeks", Address: "127.0.0.2:12003"}, {Name: "Hill", Address: "localhost:12002"}}
	p, err := newPeerAuth(mode, peers, trusted, files)
	if err != nil {
		t.Fatal(err)
	}
	p.start(zap.NewNop())
	t.Cleanup(p.stop)
	return p
}

func states(leafs ...*testcerts.Leaf) []*tls.ConnectionState {
	var out []*tls.ConnectionState
	for _, l := range leafs {
		st := &tls.ConnectionState{}
		if l != nil {
			st.PeerCertificates = []*x509.Certificate{l.Cert}
		}
		out = append(out, st)
	}
	return out
}

func TestPeerAuthAdmit(t *testing.T) {
	certs := makeHerdCerts(t)
	off := policy(t, certs, PeerAuthOff)
	byAddress := policy(t, certs, PeerAuthAddresses, "10.1.0.0/16", "192.0.2.7")
	byCert := policy(t, certs, PeerAuthTLS)
	meeks, local, stranger := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.3")
	tests := []struct {
		name     string
		policy   *peerAuth
		remote   netip.Addr
		states   []*tls.ConnectionState
		wantPeer string
		want     rejection
	}{
		{"off: anyone", off, stranger, nil, "", admitted},
		{"off: certificate ignored", off, stranger, states(certs.otherCA), "", admitted},

		{"addresses: a peer's literal address", byAddress, meeks, nil, "Meeks", admitted},
		{"addresses: a peer's address as IPv4-in-IPv6", byAddress, netip.MustParseAddr("::ffff:127.0.0.2"), nil, "Meeks", admitted},
		{"addresses: a peer's resolved host name", byAddress, local, nil, "Hill", admitted},
		{"addresses: inside a trusted network", byAddress, netip.MustParseAddr("10.1.200.3"), nil, "", admitted},
		{"addresses: a trusted single address", byAddress, netip.MustParseAddr("192.0.2.7"), nil, "", admitted},
		{"addresses: next to a trusted address", byAddress, netip.MustParseAddr("192.0.2.8"), nil, "", rejectedAddress},
		{"addresses: a stranger", byAddress, stranger, nil, "", rejectedAddress},
		{"addresses: a stranger with a peer's certificate", byAddress, stranger, states(certs.meeks), "", rejectedAddress},
		{"addresses: no address", byAddress, netip.Addr{}, nil, "", rejectedAddress},

		{"tls: DNS SAN names a peer", byCert, stranger, states(certs.meeks), "Meeks", admitted},
		{"tls: URI SAN names a peer", byCert, stranger, states(certs.hill), "Hill", admitted},
		{"tls: CN names a peer when there is no SAN", byCert, stranger, states(certs.cnOnly), "Meeks", admitted},
		{"tls: the inner layer names a peer", byCert, stranger, states(nil, certs.meeks), "Meeks", admitted},
		{"tls: plain TCP from a peer's address", byCert, meeks, nil, "", rejectedNoCertificate},
		{"tls: TLS without a client certificate", byCert, meeks, states(nil), "", rejectedNoCertificate},
		{"tls: another CA", byCert, meeks, states(certs.otherCA), "", rejectedUntrustedCertificate},
		{"tls: expired", byCert, meeks, states(certs.expired), "", rejectedUntrustedCertificate},
		{"tls: names no peer", byCert, meeks, states(certs.wrongName), "", rejectedUnknownName},
		{"tls: a wildcard names no peer", byCert, meeks, states(certs.wildcard), "", rejectedUnknownName},
		{"tls: a CN that is no peer's", byCert, meeks, states(certs.noSAN), "", rejectedUnknownName},
		{"tls: this server's own certificate", byCert, meeks, states(certs.self), "", rejectedUnknownName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer, got := tt.policy.admit(tt.remote, tt.states)
			if peer != tt.wantPeer || got != tt.want {
				t.Errorf("admit(%v) = %q, %v; want %q, %v", tt.remote, peer, got, tt.wantPeer, tt.want)
			}
		})
	}
}

func TestPeerAuthConfigErrors(t *testing.T) {
	certs := makeHerdCerts(t)
	dir := t.TempDir()
	cert, key := certs.self.Write(t, dir, "self")
	ca := certs.ca.Write(t, dir, "ca")
	_, otherKey := certs.meeks.Write(t, dir, "meeks")
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	peers := []Peer{{Name: "B", Address: "127.0.0.1:1"}}
	tests := []struct {
		name string
		app  App
		want string // "" for valid
	}{
		{"default is off", App{Name: "A", Peers: peers}, ""},
		{"addresses with networks", App{Name: "A", Peers: peers, PeerAuth: "addresses", TrustedNetworks: []string{"10.0.0.0/8", "fd00::/8", "192.0.2.1"}}, ""},
		{"tls", App{Name: "A", Peers: peers, PeerAuth: "tls", TLS: &PeerTLS{cert, key, ca}}, ""},
		{"tls links with addresses", App{Name: "A", Peers: peers, PeerAuth: "addresses", TLS: &PeerTLS{cert, key, ca}}, ""},
		{"unknown mode", App{Name: "A", PeerAuth: "password"}, `herd peer_auth "password": must be off, addresses or tls`},
		{"mode in capitals", App{Name: "A", PeerAuth: "TLS"}, `herd peer_auth "TLS"`},
		{"bad CIDR", App{Name: "A", PeerAuth: "addresses", TrustedNetworks: []string{"10.0.0.0/33"}}, `herd trusted_networks "10.0.0.0/33"`},
		{"not an address", App{Name: "A", PeerAuth: "addresses", TrustedNetworks: []string{"lan"}}, `herd trusted_networks "lan": not a CIDR or an IP address`},
		{"host bits", App{Name: "A", PeerAuth: "addresses", TrustedNetworks: []string{"10.0.0.1/8"}}, "host bits set; the network is 10.0.0.0/8"},
		{"networks without addresses mode", App{Name: "A", PeerAuth: "tls", TrustedNetworks: []string{"10.0.0.0/8"}, TLS: &PeerTLS{cert, key, ca}}, "herd trusted_networks: only used with peer_auth addresses, not tls"},
		{"networks with off", App{Name: "A", TrustedNetworks: []string{"10.0.0.0/8"}}, "only used with peer_auth addresses, not off"},
		{"tls without files", App{Name: "A", PeerAuth: "tls"}, "herd peer_auth tls: needs the tls block"},
		{"tls without ca", App{Name: "A", PeerAuth: "tls", TLS: &PeerTLS{CertFile: cert, KeyFile: key}}, "herd tls: cert_file, key_file and ca_file are all required"},
		{"unreadable cert", App{Name: "A", PeerAuth: "tls", TLS: &PeerTLS{missing, key, ca}}, "herd tls: reading cert: open " + missing},
		{"unreadable ca", App{Name: "A", PeerAuth: "tls", TLS: &PeerTLS{cert, key, missing}}, "herd tls: reading ca:"},
		{"invalid cert", App{Name: "A", PeerAuth: "tls", TLS: &PeerTLS{garbage, key, ca}}, "herd tls: loading cert and key"},
		{"key of another cert", App{Name: "A", PeerAuth: "tls", TLS: &PeerTLS{cert, otherKey, ca}}, "herd tls: loading cert and key"},
		{"invalid ca", App{Name: "A", PeerAuth: "tls", TLS: &PeerTLS{cert, key, garbage}}, "herd tls: ca: no PEM certificate found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.app.Validate()
			checkError(t, "Validate()", err, tt.want)
		})
	}
}

// tcpPair connects a client bound to clientIP to a server socket on
// 127.0.0.1 and returns both ends.
func tcpPair(t *testing.T, clientIP string) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}
	client, err = d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dialing from %s: %v", clientIP, err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

// serveWith runs the handler on server, with the TLS states a layer4 tls
// handler would have recorded.
func serveWith(t *testing.T, h *Handler, server, client net.Conn, tlsStates []*tls.ConnectionState) *bufio.Reader {
	t.Helper()
	done := make(chan struct{})
	cx := layer4.WrapConnection(server, nil, zap.NewNop())
	if tlsStates != nil {
		cx.SetVar(layer4.TLSConnectionStatesVarName, tlsStates)
	}
	go func() {
		defer close(done)
		defer server.Close()
		h.Handle(cx, nil)
	}()
	t.Cleanup(func() {
		client.Close()
		<-done
	})
	return bufio.NewReader(client)
}

// TestHandlerRejectsATFromNonPeers sends the same AT lines from a peer and
// from a stranger, under each mode: the stranger's get `? <line>`, change
// nothing and are counted and logged, once for the burst.
func TestHandlerRejectsATFromNonPeers(t *testing.T) {
	certs := makeHerdCerts(t)
	for _, tt := range []struct {
		mode           string
		peerIP         string
		peerStates     []*tls.ConnectionState
		strangerIP     string
		strangerStates []*tls.ConnectionState
		reason         rejection
	}{
		{PeerAuthAddresses, "127.0.0.2", nil, "127.0.0.3", nil, rejectedAddress},
		{PeerAuthTLS, "127.0.0.3", states(certs.meeks), "127.0.0.2", states(certs.wrongName), rejectedUnknownName},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			n := newTestNode(t, nil)
			n.configure("Test", nil, nil, policy(t, certs, tt.mode), zap.NewNop())
			h := testHandler(n)
			h.logger = zap.New(core)

			server, client := tcpPair(t, tt.strangerIP)
			r := serveWith(t, h, server, client, tt.strangerStates)
			const spoofs = 50
			var burst strings.Builder
			for range spoofs {
				burst.WriteString("AT Evil +0.000000001 kiwi +1+1 9\n")
			}
			burst.WriteString("IAMAT probe +1+1 1\n")
			go io.WriteString(client, burst.String())
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			for i := range spoofs {
				if got, err := r.ReadString('\n'); got != "? AT Evil +0.000000001 kiwi +1+1 9\n" {
					t.Fatalf("reply %d to a stranger's AT: %q, %v", i, got, err)
				}
			}
			if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "AT Test ") {
				t.Fatalf("the stranger's IAMAT after its refused ATs: %q", got)
			}
			if _, ok := n.store.Get([]byte("kiwi")); ok {
				t.Error("a refused AT was stored")
			}
			if got := n.stats.rejected[tt.reason].Load(); got != spoofs {
				t.Errorf("rejected[%v] = %d, want %d", tt.reason, got, spoofs)
			}
			if got := n.statsView().Rejected[tt.reason.String()]; got != spoofs {
				t.Errorf("/herd/stats rejected %s = %d", tt.reason, got)
			}
			if got := n.stats.messages[protocol.Invalid][resultInvalid].Load() + n.stats.messages[protocol.AT][resultInvalid].Load(); got != 0 {
				t.Errorf("refused ATs counted as invalid messages: %d", got)
			}
			if entries := logs.FilterMessage("rejected AT from a connection that is not a peer's").Len(); entries != 1 {
				t.Errorf("%d log entries for a burst of %d refused ATs within a second, want 1", entries, spoofs)
			}

			// The peer's AT is stored, with no reply.
			server, client = tcpPair(t, tt.peerIP)
			r = serveWith(t, h, server, client, tt.peerStates)
			io.WriteString(client, "AT Meeks +0.000000001 kiwi +1+1 9\nIAMAT probe +1+1 2\n")
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "AT Test ") {
				t.Fatalf("the first reply on the peer's connection is %q, want the IAMAT's", got)
			}
			if rec, ok := n.store.Get([]byte("kiwi")); !ok || rec.Line() != "AT Meeks +0.000000001 kiwi +1+1 9" {
				t.Errorf("the peer's AT was not stored: %v", ok)
			}
			if logs.FilterMessage("accepting AT from a peer connection").FilterField(zap.String("peer", "Meeks")).Len() != 1 {
				t.Errorf("the peer connection was not logged as Meeks'")
			}
		})
	}
}

// TestReloadRedialsLinksWhoseTLSChanged configures the same peer three
// times: with the same TLS material the link is kept, with another
// certificate it is replaced.
func TestReloadRedialsLinksWhoseTLSChanged(t *testing.T) {
	certs := makeHerdCerts(t)
	n := newTestNode(t, nil)
	peers := []Peer{{Name: "Meeks", Address: "127.0.0.1:1"}}
	withCert := func(leaf *testcerts.Leaf) *peerAuth {
		c, err := peering.NewTLS(leaf.CertPEM, leaf.KeyPEM, certs.ca.PEM)
		if err != nil {
			t.Fatal(err)
		}
		return &peerAuth{mode: PeerAuthTLS, peers: peers, tls: c}
	}
	n.configure("Test", peers, nil, withCert(certs.self), zap.NewNop())
	first := (*n.links.Load())[0]
	n.configure("Test", peers, nil, withCert(certs.self), zap.NewNop())
	if (*n.links.Load())[0] != first {
		t.Error("the link was replaced although its TLS material did not change")
	}
	n.configure("Test", peers, nil, withCert(certs.cnOnly), zap.NewNop())
	if (*n.links.Load())[0] == first {
		t.Error("the link was kept although its certificate changed")
	}
	n.configure("Test", peers, nil, nil, zap.NewNop())
	if l := (*n.links.Load())[0]; l.TLSFingerprint() != "" {
		t.Error("the link still dials TLS after the tls block was removed")
	}
}

// TestResolveKeepsAddressesOfAFailedLookup resolves a peer, then fails to
// resolve it: the address it had is kept.
func TestResolveKeepsAddressesOfAFailedLookup(t *testing.T) {
	p, err := newPeerAuth(PeerAuthAddresses, []Peer{{Name: "Hill", Address: "localhost:1"}, {Name: "Gone", Address: "no-such-host.invalid:1"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.resolve(zap.NewNop())
	if name, _ := p.admit(netip.MustParseAddr("127.0.0.1"), nil); name != "Hill" {
		t.Fatalf("localhost not resolved to Hill: %v", *p.addresses.Load())
	}
	p.peers[0].Address = "no-such-host.invalid:1"
	p.resolve(zap.NewNop())
	if name, r := p.admit(netip.MustParseAddr("127.0.0.1"), nil); name != "Hill" || r != admitted {
		t.Errorf("after a failed lookup 127.0.0.1 is %q, %v; want Hill's still", name, r)
	}
}
