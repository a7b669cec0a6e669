package module

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/module/limits"
	"github.com/caddy-herd/caddy-herd/places"
)

// remoteConn is a connection that says it comes from remote.
type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }

// serveFrom runs the handler on a pipe whose server end says the client is
// at ip, like serveOne.
func serveFrom(t *testing.T, h *Handler, ip string) (net.Conn, <-chan struct{}) {
	t.Helper()
	server, client := net.Pipe()
	remote := net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 40000))
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		h.Handle(layer4.WrapConnection(remoteConn{server, remote}, nil, zap.NewNop()), nil)
	}()
	t.Cleanup(func() {
		client.Close()
		<-done
	})
	return client, done
}

// limitedNode returns a test node with limits, a peer at 192.0.2.100, and
// the limits on a clock the test moves.
func limitedNode(t *testing.T, provider places.Provider, l *limits.Limits) (*node, *testClock) {
	t.Helper()
	n := newTestNode(t, provider)
	clock := newTestClock()
	n.clients.now = clock.Now
	n.applyLimits(l)
	knowPeers(t, n, []Peer{{Name: "P", Address: "192.0.2.100:12000"}})
	return n, clock
}

// closedWithin reports whether done closes within a few seconds.
func closedWithin(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

// stillOpen reports whether the connection answers an IAMAT.
func stillOpen(t *testing.T, conn net.Conn, r *bufio.Reader) bool {
	t.Helper()
	go io.WriteString(conn, "IAMAT alive +1+1 1\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadString('\n')
	return err == nil && strings.HasPrefix(line, "AT Test ")
}

// TestConnectionsPerIP opens connections from one IP up to its limit and
// one more: the extra one is closed at once and counted, while the others,
// another IP and a peer's address are unaffected.
func TestConnectionsPerIP(t *testing.T) {
	n, _ := limitedNode(t, nil, &limits.Limits{ConnectionsPerIP: 2})
	h := testHandler(n)
	tests := []struct {
		ip     string
		closed bool
	}{
		{"192.0.2.1", false},
		{"192.0.2.1", false},
		{"192.0.2.1", true},
		{"::ffff:192.0.2.1", true}, // the same IP, mapped
		{"192.0.2.2", false},
		{"192.0.2.100", false}, // the peer
		{"192.0.2.100", false},
		{"192.0.2.100", false},
	}
	var kept []net.Conn
	for i, tt := range tests {
		conn, done := serveFrom(t, h, tt.ip)
		if !tt.closed {
			if !stillOpen(t, conn, bufio.NewReader(conn)) {
				t.Errorf("connection %d from %s was not served", i, tt.ip)
			}
			kept = append(kept, conn)
			continue
		}
		if !closedWithin(done) {
			t.Errorf("connection %d from %s over the limit stayed open", i, tt.ip)
		}
	}
	if got := n.clients.limited[limits.ConnectionsPerIP].Load(); got != 2 {
		t.Errorf("%d connections refused counted, want 2", got)
	}
	if got := n.statsView().Limited["connections_per_ip"]; got != 2 {
		t.Errorf("/herd/stats limited connections_per_ip = %d, want 2", got)
	}
	if got := n.clients.ips.Tracked(); got != 2 {
		t.Errorf("%d IPs tracked, want 2 (the peer is not)", got)
	}

	// One of the IP's connections ends: it may open another.
	kept[0].Close()
	waitUntil(t, "the closed connection is no longer counted", func() bool {
		return n.clients.ips.Connections(netip.MustParseAddr("192.0.2.1")) == 1
	})
	conn, _ := serveFrom(t, h, "192.0.2.1")
	if !stillOpen(t, conn, bufio.NewReader(conn)) {
		t.Error("a connection within the limit again was not served")
	}
}

// TestMessagesPerIP sends more lines than the IP's burst, over two
// connections, on a clock that stands still: the line that finds the bucket
// empty closes its connection after the replies already due, and the count
// shows it. A peer sends as much as it likes.
func TestMessagesPerIP(t *testing.T) {
	n, clock := limitedNode(t, nil, &limits.Limits{MessagesPerIP: &limits.Rate{Events: 10, Burst: 4}})
	h := testHandler(n)

	first, _ := serveFrom(t, h, "192.0.2.1")
	r1 := bufio.NewReader(first)
	for range 2 {
		if !stillOpen(t, first, r1) {
			t.Fatal("a line within the burst was not answered")
		}
	}
	second, done := serveFrom(t, h, "192.0.2.1")
	go io.WriteString(second, "IAMAT a +1+1 1\nIAMAT b +1+1 1\nIAMAT c +1+1 1\nIAMAT d +1+1 1\n")
	replies, _ := readUntilClosed(second)
	if got := strings.Count(replies, "AT Test "); got != 2 {
		t.Errorf("the second connection got %d replies before being closed, want 2 (the IP's last tokens): %q", got, replies)
	}
	if !closedWithin(done) {
		t.Fatal("the connection over the message rate stayed open")
	}
	if _, ok := n.store.Get([]byte("c")); ok {
		t.Error("the line over the rate was handled")
	}
	if got := n.clients.limited[limits.MessagesPerIP].Load(); got != 1 {
		t.Errorf("%d refusals counted, want 1", got)
	}

	// A tenth of a second later the IP has one token again.
	clock.advance(100 * time.Millisecond)
	if !stillOpen(t, first, r1) {
		t.Error("the first connection was not answered once a token came back")
	}

	peer, _ := serveFrom(t, h, "192.0.2.100")
	rp := bufio.NewReader(peer)
	for i := range 20 {
		if !stillOpen(t, peer, rp) {
			t.Fatalf("the peer was cut off at line %d", i)
		}
	}
}

// readUntilClosed reads conn until it ends and returns what it read.
func readUntilClosed(conn net.Conn) (string, error) {
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := io.ReadAll(conn)
	return string(data), err
}

// TestWhatsatBudgets asks for places beyond the budgets: every WHATSAT that
// needs a request upstream is charged, one over a budget is answered `?`
// without a request, and the connection stays open.
func TestWhatsatBudgets(t *testing.T) {
	tests := []struct {
		name      string
		limits    limits.Limits
		ips       []string // the IP of each WHATSAT, each a different query
		answered  []bool
		limit     limits.Kind
		refusedBy int64
	}{
		{"per IP", limits.Limits{WhatsatPerIP: &limits.Rate{Events: 2, Per: caddy.Duration(time.Minute)}},
			[]string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.2"},
			[]bool{true, true, false, true}, limits.WhatsatPerIP, 1},
		{"per IP, peer exempt", limits.Limits{WhatsatPerIP: &limits.Rate{Events: 1, Per: caddy.Duration(time.Minute)}},
			[]string{"192.0.2.100", "192.0.2.100", "192.0.2.100"},
			[]bool{true, true, true}, limits.WhatsatPerIP, 0},
		{"global", limits.Limits{WhatsatGlobal: &limits.Rate{Events: 3, Per: caddy.Duration(time.Minute)}},
			[]string{"192.0.2.1", "192.0.2.2", "192.0.2.100", "192.0.2.3", "192.0.2.100"},
			[]bool{true, true, true, false, false}, limits.WhatsatGlobal, 2},
		{"per IP within global", limits.Limits{WhatsatPerIP: &limits.Rate{Events: 1, Per: caddy.Duration(time.Minute)}, WhatsatGlobal: &limits.Rate{Events: 2, Per: caddy.Duration(time.Minute)}},
			[]string{"192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.3"},
			[]bool{true, false, true, false}, limits.WhatsatGlobal, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := &gatedPlaces{body: onePlace}
			n, _, _, _ := newSharedTestNode(t, upstream, 0)
			n.clients.now = newTestClock().Now
			n.applyLimits(&tt.limits)
			knowPeers(t, n, []Peer{{Name: "P", Address: "192.0.2.100:12000"}})
			n.store.Put(herdstore.NewRecord(kiwiRecord))
			h := testHandler(n)
			want := 0
			for i, ip := range tt.ips {
				conn, _ := serveFrom(t, h, ip)
				r := bufio.NewReader(conn)
				line := "WHATSAT kiwi " + string(rune('1'+i)) + " 1"
				go io.WriteString(conn, line+"\n")
				got := readAnswer(t, conn, r)
				if refused := got == "? "+line+"\n"; refused == tt.answered[i] {
					t.Errorf("WHATSAT %d from %s: %q, want answered %v", i, ip, got, tt.answered[i])
				}
				if tt.answered[i] {
					want++
				}
				if !stillOpen(t, conn, r) {
					t.Errorf("WHATSAT %d from %s: the connection was closed", i, ip)
				}
			}
			if got := upstream.calls.Load(); got != int64(want) {
				t.Errorf("%d requests upstream, want %d", got, want)
			}
			if got := n.clients.limited[tt.limit].Load(); got != tt.refusedBy {
				t.Errorf("%s refused %d, want %d", tt.limit, got, tt.refusedBy)
			}
			if got := n.stats.placesFailed.Load(); got != 0 {
				t.Errorf("%d refusals counted as failed places requests", got)
			}
		})
	}
}

// TestWhatsatBudgetChargesOnlyUpstream spends a one-request budget on a
// query and asks it again: answers from the cache and from the request in
// flight cost nothing, and a new query is refused without a request.
func TestWhatsatBudgetChargesOnlyUpstream(t *testing.T) {
	const clients = 4
	upstream := &gatedPlaces{body: onePlace, asked: make(chan places.Query, clients), gate: make(chan struct{})}
	n, _, clock, joined := newSharedTestNode(t, upstream, time.Minute)
	n.clients.now = clock.Now
	n.applyLimits(&limits.Limits{WhatsatPerIP: &limits.Rate{Events: 1, Per: caddy.Duration(time.Hour)}})
	n.store.Put(herdstore.NewRecord(kiwiRecord))
	h := testHandler(n)

	// Identical WHATSATs from one IP while the first is in flight.
	conns := make([]net.Conn, clients)
	readers := make([]*bufio.Reader, clients)
	for i := range conns {
		conns[i], _ = serveFrom(t, h, "192.0.2.1")
		readers[i] = bufio.NewReader(conns[i])
		go io.WriteString(conns[i], "WHATSAT kiwi 10 1\n")
		if i == 0 {
			waitFor(t, upstream.asked, "the request upstream")
		} else {
			waitFor(t, joined, "a WHATSAT to join the request in flight")
		}
	}
	t.Cleanup(n.cancel)
	close(upstream.gate)
	for i := range conns {
		if got := readAnswer(t, conns[i], readers[i]); !strings.HasPrefix(got, kiwiRecord) {
			t.Errorf("coalesced WHATSAT %d: %q", i, got)
		}
	}
	ask := func(line string) string {
		go io.WriteString(conns[0], line+"\n")
		return readAnswer(t, conns[0], readers[0])
	}
	if got := ask("WHATSAT kiwi 10 1"); !strings.HasPrefix(got, kiwiRecord) {
		t.Errorf("cached WHATSAT: %q", got)
	}
	if got := ask("WHATSAT kiwi 11 1"); got != "? WHATSAT kiwi 11 1\n" {
		t.Errorf("a new query over the budget: %q", got)
	}
	if got := upstream.calls.Load(); got != 1 {
		t.Errorf("%d requests upstream, want 1", got)
	}
	if got := n.clients.limited[limits.WhatsatPerIP].Load(); got != 1 {
		t.Errorf("%d refusals, want 1", got)
	}
}

// TestLimitLogIsThrottled floods the limits from many connections: one log
// entry per limit per interval, saying how many refusals it stands for.
func TestLimitLogIsThrottled(t *testing.T) {
	n, clock := limitedNode(t, nil, &limits.Limits{MessagesPerIP: &limits.Rate{Events: 1, Burst: 1}})
	core, logs := observer.New(zapcore.WarnLevel)
	h := testHandler(n)
	h.logger = zap.New(core)
	flood := func(conns int) {
		for range conns {
			conn, done := serveFrom(t, h, "192.0.2.1")
			go io.WriteString(conn, "IAMAT a +1+1 1\nIAMAT a +1+1 1\n")
			readUntilClosed(conn)
			if !closedWithin(done) {
				t.Fatal("a connection over the rate stayed open")
			}
		}
	}
	flood(10)
	if got := logs.Len(); got != 1 {
		t.Fatalf("%d log entries for 10 refusals within the interval, want 1", got)
	}
	clock.advance(limitLogInterval)
	flood(1)
	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("%d log entries after the interval, want 2", len(entries))
	}
	fields := entries[1].ContextMap()
	if fields["limit"] != "messages_per_ip" || fields["refused_since_last_entry"] != int64(10) {
		t.Errorf("second entry %v, want limit messages_per_ip standing for 10 refusals", fields)
	}
}

// TestReloadKeepsPerIPState applies new limits to a node: the IP's spent
// tokens stay spent, and a lower limit applies at once.
func TestReloadKeepsPerIPState(t *testing.T) {
	n, _ := limitedNode(t, nil, &limits.Limits{MessagesPerIP: &limits.Rate{Events: 1, Burst: 3}})
	h := testHandler(n)
	conn, done := serveFrom(t, h, "192.0.2.1")
	r := bufio.NewReader(conn)
	for range 2 {
		if !stillOpen(t, conn, r) {
			t.Fatal("a line within the burst was not answered")
		}
	}
	n.applyLimits(&limits.Limits{MessagesPerIP: &limits.Rate{Events: 1, Burst: 2}})
	go io.WriteString(conn, "IAMAT x +1+1 1\n")
	if !closedWithin(done) {
		t.Error("after lowering the burst to the tokens already spent, a line was allowed")
	}
}

// waitUntil polls cond until it holds, failing after a few seconds.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// whatsatBudgetConfig is placesConfig with a per-IP WHATSAT budget of perHour, and
// no cache, so that every new query goes upstream.
func whatsatBudgetConfig(t *testing.T, listen string, perHour int) []byte {
	t.Helper()
	config := strings.Replace(string(placesConfig(t, "A", listen)), `"cache_ttl": "1m"`,
		fmt.Sprintf(`"limits": {"whatsat_per_ip": {"events": %d, "per": "1h"}}`, perHour), 1)
	return []byte(config)
}

// TestLimitsAcrossReload loads a config with a WHATSAT budget through Caddy,
// spends it, and reloads with a larger one: the IP's spending carries over,
// so it gets only the difference, on the connection it kept open.
func TestLimitsAcrossReload(t *testing.T) {
	listen := freeAddress(t)
	conn, r := loadAndDial(t, whatsatBudgetConfig(t, listen, 2), listen)
	exchange(t, conn, r, "IAMAT kiwi +34.068930-118.445127 1\n")
	answered := func(radius int) bool {
		if _, err := fmt.Fprintf(conn, "WHATSAT kiwi %d 1\n", radius); err != nil {
			t.Fatal(err)
		}
		return !strings.HasPrefix(readAnswer(t, conn, r), "? ")
	}
	for i, want := range []bool{true, true, false} {
		if got := answered(i + 1); got != want {
			t.Errorf("before the reload, WHATSAT %d answered %v, want %v", i, got, want)
		}
	}
	if err := caddy.Load(whatsatBudgetConfig(t, listen, 3), true); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		if got := answered(10 + i); got != want {
			t.Errorf("after the reload, WHATSAT %d answered %v, want %v", i, got, want)
		}
	}
	if got := runningNode().statsView().Limited["whatsat_per_ip"]; got != 2 {
		t.Errorf("%d WHATSATs refused in all, want 2", got)
	}
}

// BenchmarkAdmitLine is the per-line cost of messages_per_ip for a client.
func BenchmarkAdmitLine(b *testing.B) {
	n := &node{}
	n.applyLimits(&limits.Limits{MessagesPerIP: &limits.Rate{Events: 1 << 30}})
	c := &session{h: &Handler{node: n}, log: zap.NewNop()}
	c.ip, _ = n.clients.ips.Open(netip.MustParseAddr("192.0.2.1"), 0, n.clients.current(), time.Now())
	for b.Loop() {
		if !c.admitLine() {
			b.Fatal("refused")
		}
	}
}

// knowPeers makes peers the node's peers, as a started config does.
func knowPeers(t *testing.T, n *node, peers []Peer) {
	t.Helper()
	p, err := newPeerAuth("", peers, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.resolve(zap.NewNop())
	n.auth.Store(p)
}
