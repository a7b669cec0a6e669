package limits

import (
	"container/heap"
	"net/netip"
	"sync"
	"time"
)

// IPTable keeps the per-IP state of client connections: how many each IP
// has open, and its message and WHATSAT buckets. Its memory is bounded: an
// IP is tracked while it has a connection open (the handler's
// max_connections bounds how many do), and afterwards only until its
// buckets are full again, which is when forgetting it loses nothing; at
// most maxIdle such IPs are remembered, those nearest full forgotten first.
type IPTable struct {
	mu      sync.Mutex
	ips     map[netip.Addr]*IP
	idle    idleIPs // IPs without a connection whose buckets are refilling
	maxIdle int     // 0 for maxIdleIPs
}

// IP is one client IP's state: its connections, and its buckets.
type IP struct {
	key netip.Addr

	// Guarded by IPTable.mu.
	conns  int       // connections open
	index  int       // position in IPTable.idle, or -1 while connected
	fullAt time.Time // while idle: when its buckets are full again

	mu       sync.Mutex // guards the buckets
	messages Bucket
	whatsat  Bucket
}

// AllowMessage takes a token from the IP's message bucket and reports
// whether there was one.
func (s *IP) AllowMessage(a Allowance, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages.Allow(a, now)
}

// full reports whether the IP's buckets hold their whole bursts under cfg.
func (s *IP) full(cfg *Config, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages.Full(cfg.MessagesPerIP, now) && s.whatsat.Full(cfg.WhatsatPerIP, now)
}

// refilledAt returns when the IP's buckets are all full again under cfg.
func (s *IP) refilledAt(cfg *Config) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b := s.messages.FullAt(cfg.MessagesPerIP), s.whatsat.FullAt(cfg.WhatsatPerIP)
	if a.After(b) {
		return a
	}
	return b
}

// ClientKey returns the address that stands for the client at addr: the
// address itself for IPv4 (an IPv4-mapped IPv6 address unmapped), its /64
// for IPv6.
func ClientKey(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(ipv6ClientPrefixBits)
		return p.Addr()
	}
	return addr
}

// Open counts a new connection from key, unless key already has
// maxConns open (0: no limit), and returns its state.
func (l *IPTable) Open(key netip.Addr, maxConns int, cfg *Config, now time.Time) (*IP, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetRefilled(cfg, now)
	s := l.ips[key]
	switch {
	case s == nil:
		if l.ips == nil {
			l.ips = make(map[netip.Addr]*IP)
		}
		s = &IP{key: key, index: -1}
		l.ips[key] = s
	case maxConns > 0 && s.conns >= maxConns:
		return nil, false
	case s.index >= 0:
		heap.Remove(&l.idle, s.index)
	}
	s.conns++
	return s, true
}

// Close counts the end of a connection opened with Open. The IP's last
// connection leaves it forgotten if its buckets are full, or idle until
// they are.
func (l *IPTable) Close(s *IP, cfg *Config, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s.conns--
	if s.conns == 0 {
		if s.full(cfg, now) {
			delete(l.ips, s.key)
		} else {
			s.fullAt = s.refilledAt(cfg)
			heap.Push(&l.idle, s)
		}
	}
	l.forgetRefilled(cfg, now)
	maxIdle := l.maxIdle
	if maxIdle == 0 {
		maxIdle = maxIdleIPs
	}
	for l.idle.Len() > maxIdle {
		delete(l.ips, heap.Pop(&l.idle).(*IP).key)
	}
}

// forgetRefilled forgets the idle IPs whose buckets are full by now. A
// reload may have changed the rates since an IP went idle: one not full
// after all is put back with its new time.
func (l *IPTable) forgetRefilled(cfg *Config, now time.Time) {
	for l.idle.Len() > 0 && !l.idle[0].fullAt.After(now) {
		s := l.idle[0]
		if !s.full(cfg, now) {
			s.fullAt = s.refilledAt(cfg)
			if !s.fullAt.After(now) {
				s.fullAt = now.Add(time.Nanosecond) // rounding: look again later
			}
			heap.Fix(&l.idle, 0)
			continue
		}
		heap.Pop(&l.idle)
		delete(l.ips, s.key)
	}
}

// Connections returns how many connections the client key has open.
func (l *IPTable) Connections(key netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.ips[key]; s != nil {
		return s.conns
	}
	return 0
}

// Tracked returns how many IPs the limiter holds state for.
func (l *IPTable) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ips)
}

// idleIPs is a heap of idle IPs, the one whose buckets are full soonest
// first.
type idleIPs []*IP

func (h idleIPs) Len() int           { return len(h) }
func (h idleIPs) Less(i, j int) bool { return h[i].fullAt.Before(h[j].fullAt) }
func (h idleIPs) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *idleIPs) Push(x any) {
	s := x.(*IP)
	s.index = len(*h)
	*h = append(*h, s)
}

func (h *idleIPs) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.index = -1
	return s
}
