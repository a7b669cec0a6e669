package module

import (
	"bufio"
	"crypto/tls"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/protocol"
)

// deadPeers are configured peers whose links never come up.
var deadPeers = []Peer{{Name: "Meeks", Address: "127.0.0.1:1"}, {Name: "Hill", Address: "127.0.0.1:2"}}

// talk sends lines on one connection to the handler and returns the first
// reply lines, up to n.
func talk(t *testing.T, h *Handler, lines string, n int) []string {
	t.Helper()
	conn, _ := serveOne(t, h)
	go io.WriteString(conn, lines)
	r := bufio.NewReader(conn)
	var got []string
	for range n {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, strings.TrimSuffix(l, "\n"))
	}
	return got
}

func TestHelloIsAnsweredWithWhatThisServerKnows(t *testing.T) {
	tests := []struct {
		name      string
		hello     string
		resendOwn bool
		want      string
	}{
		{"a peer whose numbering is known", "HERD 1 HELLO Meeks e1", false, "HERD 1 SINCE e1 42 others"},
		{"one that may have lost records of its own", "HERD 1 HELLO Meeks e1", true, "HERD 1 SINCE e1 42 all"},
		{"a peer with a new numbering", "HERD 1 HELLO Meeks e2", false, "HERD 1 SINCE - 0 others"},
		{"a peer never heard of", "HERD 1 HELLO Hill e1", false, "HERD 1 SINCE - 0 others"},
		{"a server that is not a peer", "HERD 1 HELLO Stranger e1", false, "HERD 1 SINCE - 0 others"},
		{"an answer sent to a server", "HERD 1 SINCE e1 1 all", false, "? HERD 1 SINCE e1 1 all"},
		{"another version", "HERD 2 HELLO Meeks e1", false, "? HERD 2 HELLO Meeks e1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, nil)
			n.configure("Test", deadPeers, nil, nil, zap.NewNop())
			n.setCursor("Meeks", herdwal.Cursor{Epoch: "e1", Seq: 42})
			n.resendOwn.Store(tt.resendOwn)
			got := talk(t, testHandler(n), tt.hello+"\nIAMAT probe +1+1 1\n", 2)
			if got[0] != tt.want || !strings.HasPrefix(got[1], "AT Test ") {
				t.Errorf("replies %q, want %q then the IAMAT's", got, tt.want)
			}
		})
	}
}

// A THROUGH moves the cursor of the peer that said HELLO on the connection,
// only forward, and only once the records sent before it are stored.
func TestThroughMovesThePeersCursor(t *testing.T) {
	n := newTestNode(t, nil)
	n.configure("Test", deadPeers, nil, nil, zap.NewNop())
	lines := "HERD 1 THROUGH 7\n" + // before HELLO: nobody's
		"HERD 1 HELLO Meeks e1\n" +
		"AT Meeks +0.5 kiwi +1+1 1\n" +
		"HERD 1 THROUGH 100\n" +
		"HERD 1 THROUGH 90\n" +
		"IAMAT probe +1+1 1\n"
	got := talk(t, testHandler(n), lines, 2)
	if got[0] != "HERD 1 SINCE - 0 all" || !strings.HasPrefix(got[1], "AT Test ") {
		t.Fatalf("replies %q", got)
	}
	if c, ok := n.cursor("Meeks"); !ok || c != (herdwal.Cursor{Epoch: "e1", Seq: 100}) {
		t.Errorf("Meeks's cursor = %+v, %v; want e1 100", c, ok)
	}
	if _, ok := n.store.Get([]byte("kiwi")); !ok {
		t.Error("the record sent before the mark was not stored")
	}
	if got := n.stats.messages[protocol.HERD][resultOK].Load(); got != 4 {
		t.Errorf("%d lines of the exchange counted, want 4", got)
	}
}

// Under peer_auth a HELLO is a peer's line, as an AT is: a stranger's is
// refused, and over TLS it must name the certificate's peer.
func TestHelloNeedsAPeersConnection(t *testing.T) {
	certs := makeHerdCerts(t)
	for _, tt := range []struct {
		name   string
		mode   string
		ip     string
		states []*tls.ConnectionState
		hello  string
		want   string
	}{
		{"a stranger's address", PeerAuthAddresses, "127.0.0.3", nil, "HERD 1 HELLO Meeks e1", "? HERD 1 HELLO Meeks e1"},
		{"the peer's address", PeerAuthAddresses, "127.0.0.2", nil, "HERD 1 HELLO Meeks e1", "HERD 1 SINCE - 0 all"},
		{"a certificate naming another peer", PeerAuthTLS, "127.0.0.2", states(certs.meeks), "HERD 1 HELLO Hill e1", "? HERD 1 HELLO Hill e1"},
		{"the certificate's peer", PeerAuthTLS, "127.0.0.2", states(certs.meeks), "HERD 1 HELLO Meeks e1", "HERD 1 SINCE - 0 all"},
		{"a stranger's mark", PeerAuthAddresses, "127.0.0.3", nil, "HERD 1 THROUGH 9", "? HERD 1 THROUGH 9"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			auth := policy(t, certs, tt.mode)
			n := newTestNode(t, nil)
			n.configure("Test", []Peer{{Name: "Meeks", Address: "127.0.0.2:1"}, {Name: "Hill", Address: "127.0.0.2:2"}}, nil, auth, zap.NewNop())
			server, client := tcpPair(t, tt.ip)
			r := serveWith(t, testHandler(n), server, client, tt.states)
			go io.WriteString(client, tt.hello+"\n")
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			if got, err := r.ReadString('\n'); strings.TrimSuffix(got, "\n") != tt.want {
				t.Errorf("reply %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestWatermarkStaysBelowRecordsOnTheirWay(t *testing.T) {
	var s sessions
	var a, b atomic.Uint64
	s.join(&a)
	s.join(&b)
	if got := s.watermark(20); got != 20 {
		t.Errorf("no records on their way: watermark %d, want 20", got)
	}
	a.Store(11) // a's records are numbered 11 or later
	b.Store(15)
	if got := s.watermark(20); got != 10 {
		t.Errorf("watermark %d, want 10", got)
	}
	a.Store(0)
	if got := s.watermark(20); got != 14 {
		t.Errorf("after a handed its records over: watermark %d, want 14", got)
	}
	s.leave(&b)
	if got := s.watermark(20); got != 20 || s.count() != 1 {
		t.Errorf("after b left: watermark %d, %d connections", got, s.count())
	}
}

// A connection's floor covers the records of a read until they are stored
// and handed to the links, and only then.
func TestFloorCoversARead(t *testing.T) {
	n := newTestNode(t, nil)
	var f floods
	n.sessions.join(&f.floor)
	defer n.sessions.leave(&f.floor)
	before := n.store.Seq()
	n.apply(herdstore.NewRecord("AT Test +0.1 kiwi +1+1 1"), "", &f)
	n.apply(herdstore.NewRecord("AT Test +0.1 lime +1+1 1"), "", &f)
	if got := (linkServer{n}).Watermark(); got != before {
		t.Errorf("watermark %d with two records on their way, want %d", got, before)
	}
	n.flood(&f)
	if got := (linkServer{n}).Watermark(); got != before+2 {
		t.Errorf("watermark %d after the flood, want %d", got, before+2)
	}
}
