//go:build linux

package examples

// Peer authentication end to end: who may send AT under peer_auth off,
// addresses and tls. Connections come from 127.0.0.x addresses other than
// 127.0.0.1 (Linux routes all of 127/8 to the loopback) to play clients on
// other hosts.

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/internal/testcerts"
)

// authServer describes one server of a peer authentication test herd.
type authServer struct {
	name string
	// herd holds the lines of the herd block after name and peers.
	herd string
	// tlsHandler, when set, is the layer4 tls handler before the herd
	// handler; certFile and keyFile are then loaded into Caddy's tls app
	// through a site block, on sitePort.
	tlsHandler        string
	certFile, keyFile string
}

// startAuthHerd starts one Caddy process per server, each listing all the
// others as peers, with its herd log at <h.dir>/<name>.log. Each server
// listens for plain TCP on its port; a server with a tls handler also
// listens for TLS, on the address tlsAddrs holds for it, where its peers
// dial it.
func startAuthHerd(t *testing.T, specs ...authServer) (h *herd, tlsAddrs map[*server]string) {
	t.Helper()
	h = &herd{t: t, dir: t.TempDir()}
	tlsAddrs = make(map[*server]string)
	ports := freePorts(t, 4*len(specs))
	for i, spec := range specs {
		s := &server{
			name: spec.name, port: ports[4*i], adminPort: ports[4*i+1], adapter: "caddyfile",
			config: filepath.Join(h.dir, spec.name+".caddyfile"), output: filepath.Join(h.dir, spec.name+".out"),
		}
		h.servers = append(h.servers, s)
		if spec.tlsHandler != "" {
			tlsAddrs[s] = fmt.Sprintf("127.0.0.1:%d", ports[4*i+2])
		}
	}
	for i, spec := range specs {
		config := authConfig(h, i, spec, tlsAddrs, ports[4*i+3])
		if err := os.WriteFile(h.servers[i].config, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(h.stop)
	for _, s := range h.servers {
		h.start(s)
	}
	return h, tlsAddrs
}

// authConfig is server i's Caddyfile.
func authConfig(h *herd, i int, spec authServer, tlsAddrs map[*server]string, sitePort int) string {
	self := h.servers[i]
	var peers strings.Builder
	for _, other := range h.servers {
		if other == self {
			continue
		}
		addr := other.addr()
		if tlsAddr, ok := tlsAddrs[other]; ok {
			addr = tlsAddr
		}
		fmt.Fprintf(&peers, "\t\tpeer %s %s\n", other.name, addr)
	}
	var tlsListener string
	if spec.tlsHandler != "" {
		tlsListener = fmt.Sprintf("\t\t%s {\n\t\t\troute {\n\t\t\t\t%s\n\t\t\t\therd\n\t\t\t}\n\t\t}\n", tlsAddrs[self], spec.tlsHandler)
	}
	config := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https disable_redirects
	log herd {
		output file %s.log {
			roll_disabled
		}
		level INFO
		include herd layer4.handlers.herd
	}
	herd {
		name %s
		places file %s
%s		%s
	}
	layer4 {
%s		127.0.0.1:%d {
			route {
				herd
			}
		}
	}
}
`, self.adminPort, spec.name, spec.name, mustAbs(h.t, "places.json"), peers.String(), strings.ReplaceAll(spec.herd, "\n", "\n\t\t"), tlsListener, self.port)
	if spec.certFile != "" {
		config += fmt.Sprintf("\nhttps://%s:%d {\n\tbind 127.0.0.1\n\ttls %s %s\n\tabort\n}\n", spec.name, sitePort, spec.certFile, spec.keyFile)
	}
	return config
}

// dialFrom connects to s from the local address ip.
func dialFrom(t *testing.T, s *server, ip string) *client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := d.Dial("tcp", s.addr())
	if err != nil {
		t.Fatalf("dialing %s from %s: %v", s.name, ip, err)
	}
	return &client{t: t, conn: conn.(*net.TCPConn), stream: conn, r: bufio.NewReader(conn)}
}

// rejected returns the rejected counts of GET /herd/stats.
func (h *herd) rejected(s *server) map[string]int64 {
	h.t.Helper()
	var stats struct {
		Rejected map[string]int64 `json:"rejected"`
	}
	if err := json.Unmarshal([]byte(h.adminText(s, "/herd/stats")), &stats); err != nil {
		h.t.Fatal(err)
	}
	return stats.Rejected
}

// metric returns the value of one sample of /metrics, -1 if absent.
func (h *herd) metric(s *server, sample string) float64 {
	h.t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(h.adminText(s, "/metrics"))
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// proveNothingFlooded sends a marker through from and waits for it at every
// server: whatever a refused line could have flooded would have arrived
// before it. Then it checks that clientID is still want everywhere.
func proveNothingFlooded(h *herd, from *server, clientID, want string) {
	h.t.Helper()
	marker := dial(h.t, from).iamat(fmt.Sprintf("marker-%d", time.Now().UnixNano()), kiwiLocation, now())
	h.waitStored(strings.Fields(marker)[3], marker, h.servers...)
	for _, s := range h.servers {
		if got := h.stored(s, clientID); got != want {
			h.t.Errorf("%s holds %q for %s, want %q", s.name, got, clientID, want)
		}
	}
}

const rejectedMsg = "rejected AT from a connection that is not a peer's"

// TestPeerAuthOffAcceptsAnyone documents the classic protocol's exposure:
// without peer_auth, a client's AT overwrites a location, and the server
// says so at start.
func TestPeerAuthOffAcceptsAnyone(t *testing.T) {
	h, _ := startAuthHerd(t, authServer{name: "Solo"})
	s := h.servers[0]
	log := hostileWatchLog(t, h, s)
	if n := log.countAt("warn", "herd", "peer_auth off: AT lines are accepted from anyone who can connect, and can overwrite any client's location herd-wide; set peer_auth addresses or tls"); n != 1 {
		t.Errorf("%d start warnings about peer_auth off, want 1", n)
	}
	c := dialFrom(t, s, "127.0.0.3")
	defer c.close()
	c.iamat("kiwi", kiwiLocation, "1")
	spoof := "AT Solo +0.000000001 kiwi +0+0 2"
	c.send(spoof + "\n")
	h.waitStored("kiwi", spoof, s)
}

func TestPeerAuthAddresses(t *testing.T) {
	// The peers' addresses are 127.0.0.1, where their links come from;
	// 127.0.0.4/31 is trusted; 127.0.0.3 is nobody's.
	conf := "peer_auth addresses\ntrusted_networks 127.0.0.4/31"
	h, _ := startAuthHerd(t, authServer{name: "Alpha", herd: conf}, authServer{name: "Beta", herd: conf})
	alpha, beta := h.servers[0], h.servers[1]
	log := hostileWatchLog(t, h, beta)

	// Plain links from the peers' addresses carry floods both ways.
	kiwi := dial(t, alpha).iamat("kiwi", kiwiLocation, now())
	h.waitStored("kiwi", kiwi, beta)
	fromBeta := dial(t, beta).iamat("from-beta", kiwiLocation, now())
	h.waitStored("from-beta", fromBeta, alpha)

	// A client from a non-peer address: every AT refused, nothing changes.
	spoofer := dialFrom(t, beta, "127.0.0.3")
	defer spoofer.close()
	const spoofs = 200
	later := fmt.Sprintf("%d.5", time.Now().Unix()+3600)
	var burst strings.Builder
	for i := range spoofs {
		fmt.Fprintf(&burst, "AT Alpha +0.000000001 kiwi +0+0 %s\nAT Alpha +0.000000001 victim-%d +0+0 %s\n", later, i, later)
	}
	spoofer.send(burst.String())
	for i := range spoofs {
		if got, want := spoofer.line(), "? AT Alpha +0.000000001 kiwi +0+0 "+later; got != want {
			t.Fatalf("spoof %d: %q, want %q", i, got, want)
		}
		if got := spoofer.line(); !strings.HasPrefix(got, "? AT Alpha") {
			t.Fatalf("spoof %d for a new client: %q", i, got)
		}
	}
	if got := spoofer.iamat("spoofer", kiwiLocation, now()); !strings.HasPrefix(got, "AT Beta ") {
		t.Errorf("the refused client's own IAMAT: %q", got)
	}
	proveNothingFlooded(h, alpha, "kiwi", kiwi)
	if got := h.stored(alpha, "victim-0"); got != "" {
		t.Errorf("Alpha learned a refused record: %q", got)
	}
	if got := h.rejected(beta)["address"]; got != 2*spoofs {
		t.Errorf("/herd/stats rejected.address = %d, want %d", got, 2*spoofs)
	}
	if got := h.metric(beta, `caddy_herd_rejected_total{reason="address"}`); got != 2*spoofs {
		t.Errorf(`caddy_herd_rejected_total{reason="address"} = %v, want %d`, got, 2*spoofs)
	}
	if n := log.countAt("warn", "layer4.handlers.herd", rejectedMsg); n < 1 || n > 3 {
		t.Errorf("%d log entries for %d refused AT lines sent in a burst, want 1 to 3", n, 2*spoofs)
	}

	// A client inside trusted_networks relays like a peer: stored, flooded.
	relay := dialFrom(t, beta, "127.0.0.5")
	defer relay.close()
	relayed := fmt.Sprintf("AT Gamma +0.000000001 relayed +1+1 %s", now())
	relay.send(relayed + "\n")
	h.waitStored("relayed", relayed, beta, alpha)

	// A reload that trusts 127.0.0.3 applies to the open connection too.
	config, err := os.ReadFile(beta.config)
	if err != nil {
		t.Fatal(err)
	}
	h.reload(beta, strings.Replace(string(config), "trusted_networks 127.0.0.4/31", "trusted_networks 127.0.0.4/31 127.0.0.3/32", 1))
	// Made by a third server: Beta floods it to Alpha. (Beta would not send a
	// record back to the server that made it.)
	trusted := "AT Gamma +0.000000001 kiwi +0+0 " + later
	spoofer.send(trusted + "\n")
	h.waitStored("kiwi", trusted, beta, alpha)
}

// authCerts is the herd's CA, each server's certificate, and the wrong ones.
type authCerts struct {
	dir, ca                           string
	alpha, beta                       [2]string // cert, key files
	good, otherCA, expired, wrongName tls.Certificate
	roots                             *testcerts.CA
}

func makeAuthCerts(t *testing.T) *authCerts {
	t.Helper()
	ca := testcerts.NewCA(t, "herd CA")
	other := testcerts.NewCA(t, "other CA")
	c := &authCerts{dir: t.TempDir(), roots: ca}
	c.ca = ca.Write(t, c.dir, "ca")
	c.alpha[0], c.alpha[1] = ca.Leaf(t, testcerts.Options{DNSNames: []string{"alpha"}}).Write(t, c.dir, "alpha")
	c.beta[0], c.beta[1] = ca.Leaf(t, testcerts.Options{DNSNames: []string{"beta"}}).Write(t, c.dir, "beta")
	c.good = ca.Leaf(t, testcerts.Options{DNSNames: []string{"alpha"}}).TLS(t)
	c.otherCA = other.Leaf(t, testcerts.Options{DNSNames: []string{"alpha"}}).TLS(t)
	c.expired = ca.Leaf(t, testcerts.Options{DNSNames: []string{"alpha"}, Expired: true}).TLS(t)
	c.wrongName = ca.Leaf(t, testcerts.Options{DNSNames: []string{"mallory"}}).TLS(t)
	return c
}

// tlsServer is a server of the tls herd: its certificate in Caddy's tls app,
// its listener asking for client certificates and verifying those given.
func (c *authCerts) tlsServer(name string, files [2]string) authServer {
	return authServer{
		name:     name,
		herd:     fmt.Sprintf("peer_auth tls\ntls {\n\tcert %s\n\tkey %s\n\tca %s\n}", files[0], files[1], c.ca),
		certFile: files[0], keyFile: files[1],
		tlsHandler: fmt.Sprintf(`tls {
					connection_policy {
						client_auth {
							mode verify_if_given
							trust_pool file %s
						}
					}
				}`, c.ca),
	}
}

// dialTLS connects to s over TLS, verifying it as name, presenting cert
// unless it is nil. The handshake error, if any, is returned, not fatal.
func (c *authCerts) dialTLS(t *testing.T, addr, name string, cert *tls.Certificate) (*client, error) {
	t.Helper()
	cfg := &tls.Config{ServerName: name, RootCAs: c.roots.Pool()}
	if cert != nil {
		// Present cert whatever CAs the server names as acceptable: Go's
		// client would otherwise send no certificate from another CA.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, cfg)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := conn.Handshake(); err != nil {
		raw.Close()
		return nil, err
	}
	return &client{t: t, conn: raw.(*net.TCPConn), stream: conn, r: bufio.NewReader(conn)}, nil
}

func TestPeerAuthTLS(t *testing.T) {
	certs := makeAuthCerts(t)
	h, tlsAddrs := startAuthHerd(t, certs.tlsServer("alpha", certs.alpha), certs.tlsServer("beta", certs.beta))
	alpha, beta := h.servers[0], h.servers[1]
	log := hostileWatchLog(t, h, beta)

	// mTLS links carry floods both ways; clients may come over TLS or not.
	kiwi := certs.dialTLSClient(t, tlsAddrs[alpha], "alpha").iamat("kiwi", kiwiLocation, now())
	h.waitStored("kiwi", kiwi, beta)
	fromBeta := dial(t, beta).iamat("from-beta", kiwiLocation, now())
	h.waitStored("from-beta", fromBeta, alpha)
	if n := log.count("accepting AT from a peer connection", ""); n != 1 {
		t.Errorf("beta logged %d peer connections, want alpha's link once", n)
	}

	later := fmt.Sprintf("%d.5", time.Now().Unix()+3600)
	spoof := "AT alpha +0.000000001 kiwi +0+0 " + later

	// A client over TLS without a certificate is a client: answered, but
	// its AT refused. So is a client on the plain listener.
	anon := certs.dialTLSClient(t, tlsAddrs[beta], "beta")
	defer anon.close()
	plain := dial(t, beta)
	defer plain.close()
	for _, c := range []*client{anon, plain} {
		if got := c.iamat("anon", kiwiLocation, now()); !strings.HasPrefix(got, "AT beta ") {
			t.Errorf("IAMAT without a client certificate: %q", got)
		}
		c.send(spoof + "\n")
		if got := c.line(); got != "? "+spoof {
			t.Errorf("AT without a client certificate: %q, want %q", got, "? "+spoof)
		}
	}

	// Certificates a peer must not get through with.
	for _, tt := range []struct {
		name    string
		cert    tls.Certificate
		refused bool // by the listener, in the handshake; else the AT is
	}{
		{"another CA", certs.otherCA, true},
		{"expired", certs.expired, true},
		{"wrong name", certs.wrongName, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := certs.dialTLS(t, tlsAddrs[beta], "beta", &tt.cert)
			if err == nil {
				defer c.close()
				c.send(spoof + "\n")
				// With TLS 1.3 the server checks the client's certificate
				// after the client's side of the handshake is done: a
				// refusal shows on the first read.
				var line string
				line, err = c.r.ReadString('\n')
				if err == nil && line != "? "+spoof+"\n" {
					t.Errorf("reply %q, want %q or a failed handshake", line, "? "+spoof)
				}
			}
			if tt.refused && err == nil {
				t.Error("the listener accepted the certificate")
			}
			if !tt.refused && err != nil {
				t.Errorf("the handshake failed (%v); want it to succeed and the AT refused", err)
			}
		})
	}
	proveNothingFlooded(h, alpha, "kiwi", kiwi)
	rejected := h.rejected(beta)
	if rejected["no_certificate"] != 2 || rejected["unknown_name"] != 1 || rejected["untrusted_certificate"] != 0 {
		t.Errorf("/herd/stats rejected = %v, want no_certificate 2, unknown_name 1", rejected)
	}
	if got := h.metric(beta, `caddy_herd_rejected_total{reason="unknown_name"}`); got != 1 {
		t.Errorf(`caddy_herd_rejected_total{reason="unknown_name"} = %v`, got)
	}
	if n := log.countAt("warn", "layer4.handlers.herd", rejectedMsg); n < 1 {
		t.Error("no refused AT was logged")
	}

	// A peer's certificate gets through, whichever connection it comes on.
	peer, err := certs.dialTLS(t, tlsAddrs[beta], "beta", &certs.good)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.close()
	// A record made by a third server and relayed by alpha: the certificate
	// names alpha as the sender, so beta stores it but does not send it
	// back. A later flood from beta follows on the same link to alpha, so
	// once that arrives the record would have too.
	relayed := "AT gamma +0.000000001 kiwi +0+0 " + later
	peer.send(relayed + "\n")
	h.waitStored("kiwi", relayed, beta)
	marker := dial(t, beta).iamat("after-relay", kiwiLocation, now())
	h.waitStored("after-relay", marker, alpha)
	if got := h.stored(alpha, "kiwi"); got != kiwi {
		t.Errorf("alpha holds %q for kiwi, want %q: beta sent alpha's record back to it", got, kiwi)
	}

	// A reload that renews alpha's certificate redials its link to beta,
	// which then carries floods again.
	alphaLog := hostileWatchLog(t, h, alpha)
	upBefore := alphaLog.countAt("info", "herd.peer", "peer link up")
	newCert, newKey := certs.roots.Leaf(t, testcerts.Options{DNSNames: []string{"alpha"}}).Write(t, certs.dir, "alpha-renewed")
	config, err := os.ReadFile(alpha.config)
	if err != nil {
		t.Fatal(err)
	}
	renewed := strings.NewReplacer("cert "+certs.alpha[0], "cert "+newCert, "key "+certs.alpha[1], "key "+newKey).Replace(string(config))
	h.reload(alpha, renewed)
	h.waitUntil("alpha's link to beta is redialled", func() bool {
		return alphaLog.countAt("info", "herd.peer", "peer link up") > upBefore && h.peer(alpha, "beta").Up
	})
	after := dial(t, alpha).iamat("after-renewal", kiwiLocation, now())
	h.waitStored("after-renewal", after, beta)
}

// dialTLSClient connects over TLS without a client certificate.
func (c *authCerts) dialTLSClient(t *testing.T, addr, name string) *client {
	t.Helper()
	cl, err := c.dialTLS(t, addr, name, nil)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", name, err)
	}
	return cl
}
