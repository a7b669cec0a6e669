package peering

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// TLS is what a link presents and trusts when it dials its peer over mutual
// TLS: this server's certificate, and the authority that signs the herd's.
type TLS struct {
	// Certificate is this server's certificate and key, presented to peers.
	Certificate tls.Certificate
	// Roots is the authority a peer's certificate must chain to.
	Roots *x509.CertPool
	// fingerprint identifies the certificate and authority, so that a reload
	// which changes them can tell which links to redial.
	fingerprint string
}

// LoadTLS reads a PEM certificate (chain), its key and the herd's CA
// certificates. The errors name the file that failed.
func LoadTLS(certFile, keyFile, caFile string) (*TLS, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading cert: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading ca: %w", err)
	}
	return NewTLS(certPEM, keyPEM, caPEM)
}

// NewTLS parses a PEM certificate (chain), its key and the herd's CA
// certificates.
func NewTLS(certPEM, keyPEM, caPEM []byte) (*TLS, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading cert and key: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("ca: no PEM certificate found")
	}
	// The certificate holds the public key, so it and the CA identify the
	// material; the private key itself is not hashed.
	sum := sha256.New()
	sum.Write(certPEM)
	sum.Write([]byte{0})
	sum.Write(caPEM)
	return &TLS{Certificate: cert, Roots: roots, fingerprint: hex.EncodeToString(sum.Sum(nil))}, nil
}

// Fingerprint identifies the certificate and the authority: two TLS values
// with the same fingerprint dial the same way. Plain TCP (nil) is "".
func (t *TLS) Fingerprint() string {
	if t == nil {
		return ""
	}
	return t.fingerprint
}

// clientConfig is the configuration of a link's TLS handshake with the peer
// name: it presents this server's certificate and accepts the peer only if
// its certificate chains to Roots and names the peer.
func (t *TLS) clientConfig(name string) *tls.Config {
	return &tls.Config{
		// ServerName is sent as SNI, so that the peer's Caddy picks the
		// certificate for its herd name.
		ServerName:   name,
		Certificates: []tls.Certificate{t.Certificate},
		MinVersion:   tls.VersionTLS12,
		// Go's own check applies the web's host name rules (wildcards, no
		// CN). The herd names peers by its own rule, the same in both
		// directions, so the whole check is in VerifyConnection.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return VerifyPeer(cs.PeerCertificates, t.Roots, x509.ExtKeyUsageServerAuth, name)
		},
	}
}

// VerifyPeer checks that the certificate chain a peer presented (leaf
// first) chains to roots now, allows usage, and names the peer name (see
// CertificateNames).
func VerifyPeer(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, name string) error {
	if err := VerifyChain(chain, roots, usage); err != nil {
		return err
	}
	if !CertificateNames(chain[0], name) {
		return fmt.Errorf("certificate of %s does not name %q", describe(chain[0]), name)
	}
	return nil
}

// VerifyChain checks that the certificate chain a peer presented (leaf
// first) chains to roots at the current time and allows usage.
func VerifyChain(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(chain) == 0 {
		return errors.New("no certificate presented")
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("verifying certificate of %s: %w", describe(chain[0]), err)
	}
	return nil
}

// CertificateNames reports whether cert names the herd server name: one of
// its DNS SANs equals name, ignoring ASCII case as DNS does, or one of its
// URI SANs equals name exactly; its subject's common name counts only when
// it has no SAN at all. Wildcards are not expanded: a certificate for
// `*.herd.example` names no server, so that one peer's certificate cannot
// speak for another.
func CertificateNames(cert *x509.Certificate, name string) bool {
	if name == "" {
		return false
	}
	for _, dns := range cert.DNSNames {
		if strings.EqualFold(dns, name) {
			return true
		}
	}
	for _, uri := range cert.URIs {
		if uri.String() == name {
			return true
		}
	}
	noSANs := len(cert.DNSNames) == 0 && len(cert.URIs) == 0 && len(cert.IPAddresses) == 0 && len(cert.EmailAddresses) == 0
	return noSANs && cert.Subject.CommonName == name
}

// describe names a certificate in errors and logs: its SANs, or its subject.
func describe(cert *x509.Certificate) string {
	var names []string
	names = append(names, cert.DNSNames...)
	for _, u := range cert.URIs {
		names = append(names, u.String())
	}
	if len(names) == 0 {
		return fmt.Sprintf("%q", cert.Subject.String())
	}
	return fmt.Sprintf("%q", strings.Join(names, ","))
}
