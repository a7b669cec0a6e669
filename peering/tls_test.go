package peering

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/internal/testcerts"
)

func TestCertificateNames(t *testing.T) {
	ca := testcerts.NewCA(t, "herd CA")
	tests := []struct {
		name string
		opts testcerts.Options
		peer string
		want bool
	}{
		{"DNS SAN", testcerts.Options{DNSNames: []string{"Meeks"}}, "Meeks", true},
		{"DNS SAN in another case", testcerts.Options{DNSNames: []string{"meeks"}}, "Meeks", true},
		{"one of several DNS SANs", testcerts.Options{DNSNames: []string{"x.example", "Meeks"}}, "Meeks", true},
		{"another name", testcerts.Options{DNSNames: []string{"Hill"}}, "Meeks", false},
		{"wildcard is not expanded", testcerts.Options{DNSNames: []string{"*.herd.example"}}, "meeks.herd.example", false},
		{"URI SAN", testcerts.Options{URIs: []string{"spiffe://herd/Meeks"}}, "spiffe://herd/Meeks", true},
		{"URI SAN is exact", testcerts.Options{URIs: []string{"spiffe://herd/meeks"}}, "spiffe://herd/Meeks", false},
		{"CN without SANs", testcerts.Options{CommonName: "Meeks"}, "Meeks", true},
		{"CN ignored when SANs exist", testcerts.Options{CommonName: "Meeks", DNSNames: []string{"Hill"}}, "Meeks", false},
		{"empty name", testcerts.Options{CommonName: ""}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := ca.Leaf(t, tt.opts).Cert
			if got := CertificateNames(cert, tt.peer); got != tt.want {
				t.Errorf("CertificateNames(%v %v CN=%q, %q) = %v, want %v", cert.DNSNames, cert.URIs, cert.Subject.CommonName, tt.peer, got, tt.want)
			}
		})
	}
}

// tlsPeer is a TLS listener that serves cert, requires a client certificate
// signed by clientCA, and hands over each connection with its verified state.
func tlsPeer(t *testing.T, cert tls.Certificate, clientCA *x509.CertPool) (net.Listener, chan *tls.Conn) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCA,
	})
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *tls.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.Handshake() != nil {
				tc.Close()
				continue
			}
			tc.SetDeadline(time.Time{})
			conns <- tc
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln, conns
}

func loadTLS(t *testing.T, leaf *testcerts.Leaf, ca *testcerts.CA) *TLS {
	t.Helper()
	c, err := NewTLS(leaf.CertPEM, leaf.KeyPEM, ca.PEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLinkOverMutualTLS dials a peer over TLS: the peer sees this server's
// certificate, and the records arrive encrypted, all written by the link's
// goroutine, even on a quiet link: a sender's direct write would bypass TLS.
func TestLinkOverMutualTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "herd CA")
	self := ca.Leaf(t, testcerts.Options{DNSNames: []string{"Self"}})
	peerCert := ca.Leaf(t, testcerts.Options{DNSNames: []string{"P"}})
	ln, conns := tlsPeer(t, peerCert.TLS(t), ca.Pool())
	store := newServer()
	store.Put(record("a", "1"))
	l := NewLink("P", ln.Addr().String(), loadTLS(t, self, ca), store, zap.NewNop())
	l.quietAfter = 0
	l.Start()
	defer l.Close()
	var conn *tls.Conn
	select {
	case conn = <-conns:
	case <-time.After(10 * time.Second):
		t.Fatal("the link did not complete a TLS handshake")
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if len(st.PeerCertificates) == 0 || !CertificateNames(st.PeerCertificates[0], "Self") {
		t.Fatalf("the link presented %v, want this server's certificate", st.PeerCertificates)
	}
	if st.ServerName != "P" {
		t.Errorf("SNI %q, want the peer's name P", st.ServerName)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	hello, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(hello, "HERD 1 HELLO S ") {
		t.Fatalf("first line over TLS: %q, %v", hello, err)
	}
	conn.Write([]byte("? " + hello))
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSuffix(line, "\n") != record("a", "1").Line() {
		t.Fatalf("catch-up over TLS: %q, %v", line, err)
	}
	waitIdle(t, l)
	if l.writeQueued() {
		t.Error("a TLS link wrote from the sender's goroutine")
	}
	send(l, record("b", "1"))
	line, err = r.ReadString('\n')
	if err != nil || strings.TrimSuffix(line, "\n") != record("b", "1").Line() {
		t.Fatalf("update over TLS: %q, %v", line, err)
	}
}

// TestLinkRefusesWrongServerCertificate points a link at peers whose
// certificates the herd must not trust: each handshake fails, so the link
// never comes up and sends nothing.
func TestLinkRefusesWrongServerCertificate(t *testing.T) {
	ca := testcerts.NewCA(t, "herd CA")
	other := testcerts.NewCA(t, "other CA")
	self := loadTLS(t, ca.Leaf(t, testcerts.Options{DNSNames: []string{"Self"}}), ca)
	for _, tt := range []struct {
		name string
		cert *testcerts.Leaf
		want string
	}{
		{"another CA", other.Leaf(t, testcerts.Options{DNSNames: []string{"P"}}), "unknown authority"},
		{"expired", ca.Leaf(t, testcerts.Options{DNSNames: []string{"P"}, Expired: true}), "expired"},
		{"wrong name", ca.Leaf(t, testcerts.Options{DNSNames: []string{"Mallory"}}), `does not name "P"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, conns := tlsPeer(t, tt.cert.TLS(t), ca.Pool())
			store := newServer()
			store.Put(record("a", "1"))
			l := NewLink("P", ln.Addr().String(), self, store, zap.NewNop())
			l.Start()
			defer l.Close()
			deadline := time.Now().Add(10 * time.Second)
			for l.Status().LastError == "" {
				if time.Now().After(deadline) {
					t.Fatal("no dial failure reported")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if st := l.Status(); st.Up || st.Connects != 0 || !strings.Contains(st.LastError, tt.want) {
				t.Errorf("status %+v, want down, never connected, error containing %q", st, tt.want)
			}
			select {
			case <-conns:
				t.Error("the peer completed a handshake with the link")
			default:
			}
		})
	}
}

func TestNewTLSErrors(t *testing.T) {
	ca := testcerts.NewCA(t, "herd CA")
	leaf := ca.Leaf(t, testcerts.Options{DNSNames: []string{"Self"}})
	other := ca.Leaf(t, testcerts.Options{DNSNames: []string{"Other"}})
	if _, err := NewTLS(leaf.CertPEM, other.KeyPEM, ca.PEM); err == nil || !strings.Contains(err.Error(), "cert and key") {
		t.Errorf("mismatched key: %v", err)
	}
	if _, err := NewTLS(leaf.CertPEM, leaf.KeyPEM, []byte("not PEM")); err == nil || !strings.Contains(err.Error(), "ca:") {
		t.Errorf("bad CA: %v", err)
	}
	a, _ := NewTLS(leaf.CertPEM, leaf.KeyPEM, ca.PEM)
	b, _ := NewTLS(other.CertPEM, other.KeyPEM, ca.PEM)
	if a.Fingerprint() == "" || a.Fingerprint() == b.Fingerprint() || (*TLS)(nil).Fingerprint() != "" {
		t.Errorf("fingerprints %q, %q: want distinct and non-empty", a.Fingerprint(), b.Fingerprint())
	}
}
