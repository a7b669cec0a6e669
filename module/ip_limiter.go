package module

import (
	"container/heap"
	"net/netip"
	"sync"
	"time"
)

// ipLimiter keeps the per-IP state of client connections: how many each IP
// has open, and its message and WHATSAT buckets. Its memory is bounded: an
// IP is tracked while it has a connection open (the handler's
// max_connections bounds how many do), and afterwards only until its
// buckets are full again, which is when forgetting it loses nothing; at
// most maxIdle such IPs are remembered, those nearest full forgotten first.
type ipLimiter struct {
	mu      sync.Mutex
	ips     map[netip.Addr]*ipState
	idle    idleIPs // IPs without a connection whose buckets are refilling
	maxIdle int     // 0 for maxIdleIPs
}

// ipState is one client IP's state.
type ipState struct {
	key netip.Addr

	// Guarded by ipLimiter.mu.
	conns  int       // connections open
	index  int       // position in ipLimiter.idle, or -1 while connected
	fullAt time.Time // while idle: when its buckets are full again

	mu       sync.Mutex // guards the buckets
	messages tokenBucket
	whatsat  tokenBucket
}

// full reports whether the IP's buckets hold their whole bursts under cfg.
func (s *ipState) full(cfg *limitsConfig, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages.full(cfg.messagesPerIP, now) && s.whatsat.full(cfg.whatsatPerIP, now)
}

// refilledAt returns when the IP's buckets are all full again under cfg.
func (s *ipState) refilledAt(cfg *limitsConfig) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b := s.messages.fullAt(cfg.messagesPerIP), s.whatsat.fullAt(cfg.whatsatPerIP)
	if a.After(b) {
		return a
	}
	return b
}

// clientKey returns the address that stands for the client at addr: the
// address itself for IPv4 (an IPv4-mapped IPv6 address unmapped), its /64
// for IPv6.
func clientKey(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(ipv6ClientPrefixBits)
		return p.Addr()
	}
	return addr
}

// open counts a new connection from key, unless key already has
// maxConns open (0: no limit), and returns its state.
func (l *ipLimiter) open(key netip.Addr, maxConns int, cfg *limitsConfig, now time.Time) (*ipState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetRefilled(cfg, now)
	s := l.ips[key]
	switch {
	case s == nil:
		if l.ips == nil {
			l.ips = make(map[netip.Addr]*ipState)
		}
		s = &ipState{key: key, index: -1}
		l.ips[key] = s
	case maxConns > 0 && s.conns >= maxConns:
		return nil, false
	case s.index >= 0:
		heap.Remove(&l.idle, s.index)
	}
	s.conns++
	return s, true
}

// close counts the end of a connection opened with open. The IP's last
// connection leaves it forgotten if its buckets are full, or idle until
// they are.
func (l *ipLimiter) close(s *ipState, cfg *limitsConfig, now time.Time) {
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
		delete(l.ips, heap.Pop(&l.idle).(*ipState).key)
	}
}

// forgetRefilled forgets the idle IPs whose buckets are full by now. A
// reload may have changed the rates since an IP went idle: one not full
// after all is put back with its new time.
func (l *ipLimiter) forgetRefilled(cfg *limitsConfig, now time.Time) {
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

// tracked returns how many IPs the limiter holds state for.
func (l *ipLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ips)
}

// idleIPs is a heap of idle IPs, the one whose buckets are full soonest
// first.
type idleIPs []*ipState

func (h idleIPs) Len() int           { return len(h) }
func (h idleIPs) Less(i, j int) bool { return h[i].fullAt.Before(h[j].fullAt) }
func (h idleIPs) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *idleIPs) Push(x any) {
	s := x.(*ipState)
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
