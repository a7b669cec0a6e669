package limits

import (
	"net/netip"
	"testing"
	"time"
)

func TestClientKey(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::"},
		{"2001:db8:1:3::1", "2001:db8:1:3::"},
	}
	for _, tt := range tests {
		if got := ClientKey(netip.MustParseAddr(tt.addr)); got != netip.MustParseAddr(tt.want) {
			t.Errorf("ClientKey(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

func TestIPTableConnectionsPerIP(t *testing.T) {
	var l IPTable
	cfg := &Config{ConnectionsPerIP: 2}
	now := time.Unix(1_700_000_000, 0)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	a1, ok1 := l.Open(a, 2, cfg, now)
	a2, ok2 := l.Open(a, 2, cfg, now)
	_, ok3 := l.Open(a, 2, cfg, now)
	_, okB := l.Open(b, 2, cfg, now)
	if !ok1 || !ok2 || ok3 || !okB {
		t.Fatalf("opens: %v %v %v (want true true false), other IP %v", ok1, ok2, ok3, okB)
	}
	l.Close(a1, cfg, now)
	if _, ok := l.Open(a, 2, cfg, now); !ok {
		t.Error("a connection that ended still counts")
	}
	if _, ok := l.Open(a, 0, cfg, now); !ok {
		t.Error("no limit (0) refused a connection")
	}
	_ = a2
}

// TestIPTableForgetsWhatIsFull checks the bound on per-IP state: an IP
// whose last connection ends with full buckets is forgotten at once; one
// that spent tokens is kept until they are back, then forgotten; and a
// reconnecting IP finds its spent tokens still spent.
func TestIPTableForgetsWhatIsFull(t *testing.T) {
	var l IPTable
	cfg := &Config{MessagesPerIP: Allowance{PerSecond: 1, Burst: 2}}
	now := time.Unix(1_700_000_000, 0)
	quiet, busy := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")

	q, _ := l.Open(quiet, 0, cfg, now)
	l.Close(q, cfg, now)
	if got := l.Tracked(); got != 0 {
		t.Fatalf("%d IPs tracked after a quiet connection, want 0", got)
	}

	s, _ := l.Open(busy, 0, cfg, now)
	s.messages.Allow(cfg.MessagesPerIP, now)
	s.messages.Allow(cfg.MessagesPerIP, now)
	l.Close(s, cfg, now)
	if got := l.Tracked(); got != 1 {
		t.Fatalf("%d IPs tracked after spending tokens, want 1", got)
	}
	again, _ := l.Open(busy, 0, cfg, now.Add(time.Second))
	if again != s || !again.messages.Allow(cfg.MessagesPerIP, now.Add(time.Second)) || again.messages.Allow(cfg.MessagesPerIP, now.Add(time.Second)) {
		t.Fatal("a reconnecting IP did not find its bucket as it left it (one token back after 1s)")
	}
	l.Close(again, cfg, now.Add(time.Second))

	// The next open or close after the bucket refilled forgets it.
	other, _ := l.Open(quiet, 0, cfg, now.Add(2*time.Second))
	if got := l.Tracked(); got != 2 {
		t.Errorf("%d IPs tracked before the bucket is full, want 2", got)
	}
	l.Close(other, cfg, now.Add(3*time.Second))
	if got := l.Tracked(); got != 0 {
		t.Errorf("%d IPs tracked once every bucket is full, want 0", got)
	}
}

// TestIPTableCapsIdleIPs fills the limiter with more idle IPs than it may
// remember: it keeps the cap, forgets first those nearest full, and never
// forgets an IP with a connection open.
func TestIPTableCapsIdleIPs(t *testing.T) {
	l := IPTable{maxIdle: 3}
	cfg := &Config{MessagesPerIP: Allowance{PerSecond: 1, Burst: 10}}
	now := time.Unix(1_700_000_000, 0)
	connected, _ := l.Open(netip.MustParseAddr("198.51.100.1"), 0, cfg, now)
	connected.messages.Allow(cfg.MessagesPerIP, now)

	// IP i spends i+1 tokens, so IP 0 is the nearest full.
	ips := make([]*IP, 5)
	for i := range ips {
		ips[i], _ = l.Open(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 0, cfg, now)
		for range i + 1 {
			ips[i].messages.Allow(cfg.MessagesPerIP, now)
		}
		l.Close(ips[i], cfg, now)
		if idle := l.Tracked() - 1; idle > 3 {
			t.Fatalf("%d idle IPs remembered, cap 3", idle)
		}
	}
	if got := l.Tracked(); got != 4 {
		t.Fatalf("%d IPs tracked, want 3 idle and 1 connected", got)
	}
	for i, s := range ips {
		_, kept := l.ips[s.key]
		if want := i >= 2; kept != want {
			t.Errorf("IP %d (spent %d tokens) kept = %v, want %v", i, i+1, kept, want)
		}
	}
	if l.ips[connected.key] != connected {
		t.Error("the connected IP was forgotten")
	}
}

// TestIPTableReloadChangesRates makes an IP idle under one rate and looks
// again under a slower one: it is not forgotten while its bucket refills.
func TestIPTableReloadChangesRates(t *testing.T) {
	var l IPTable
	fast := &Config{MessagesPerIP: Allowance{PerSecond: 10, Burst: 10}}
	slow := &Config{MessagesPerIP: Allowance{PerSecond: 1, Burst: 10}}
	now := time.Unix(1_700_000_000, 0)
	s, _ := l.Open(netip.MustParseAddr("192.0.2.1"), 0, fast, now)
	for range 10 {
		s.messages.Allow(fast.MessagesPerIP, now)
	}
	l.Close(s, fast, now) // full in 1s at the fast rate
	o, _ := l.Open(netip.MustParseAddr("192.0.2.2"), 0, slow, now.Add(2*time.Second))
	if got := l.Tracked(); got != 2 {
		t.Fatalf("%d IPs tracked: the idle IP was forgotten though the slow rate leaves it 8 tokens short", got)
	}
	l.Close(o, slow, now.Add(10*time.Second))
	if got := l.Tracked(); got != 0 {
		t.Errorf("%d IPs tracked after the slow refill", got)
	}
}
