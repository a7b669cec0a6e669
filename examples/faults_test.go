package examples

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// load keeps one connection per server busy with IAMATs for a fixed set of
// clients, each with a later time than the last, and remembers the last
// time each server acknowledged per client, and the last time sent.
type load struct {
	h       *herd
	stopped atomic.Bool
	wg      sync.WaitGroup
	acks    atomic.Int64
	redials atomic.Int64

	mu    sync.Mutex
	acked map[string]string
	sent  map[string]string
}

func startLoad(h *herd, servers []*server, clientsPerServer int) *load {
	l := &load{h: h, acked: make(map[string]string), sent: make(map[string]string)}
	base := time.Now().Unix()
	for _, s := range servers {
		l.wg.Add(1)
		go l.run(s, clientsPerServer, base)
	}
	return l
}

func (l *load) run(s *server, clients int, base int64) {
	defer l.wg.Done()
	var conn net.Conn
	var r *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for seq := 1; !l.stopped.Load(); seq++ {
		if conn == nil {
			c, err := net.DialTimeout("tcp", s.addr(), time.Second)
			if err != nil {
				l.redials.Add(1)
				time.Sleep(20 * time.Millisecond) // pacing the retries to a server that is down
				continue
			}
			conn, r = c, bufio.NewReader(c)
		}
		client := fmt.Sprintf("load-%s-%d", s.name, seq%clients)
		clientTime := fmt.Sprintf("%d.%09d", base, seq)
		l.mu.Lock()
		l.sent[client] = clientTime
		l.mu.Unlock()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := fmt.Fprintf(conn, "IAMAT %s %s %s\n", client, kiwiLocation, clientTime)
		var reply string
		if err == nil {
			reply, err = r.ReadString('\n')
		}
		if err != nil {
			conn.Close()
			conn = nil
			continue
		}
		if !strings.HasPrefix(reply, "AT ") {
			l.h.t.Errorf("load: reply %q", reply)
			return
		}
		l.mu.Lock()
		l.acked[client] = clientTime
		l.mu.Unlock()
		l.acks.Add(1)
	}
}

// waitAcks waits until n more updates are acknowledged.
func (l *load) waitAcks(n int64) {
	l.h.t.Helper()
	target := l.acks.Load() + n
	l.h.waitUntil(fmt.Sprintf("%d acknowledged updates", target), func() bool { return l.acks.Load() >= target })
}

func (l *load) stop() {
	l.stopped.Store(true)
	l.wg.Wait()
}

// checkNothingLost checks that table holds, for every client of the load, a
// record at least as new as the last acknowledged and no newer than the last
// sent.
func (l *load) checkNothingLost(name string, table map[string]string) {
	l.h.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	lost := 0
	for client, ackedTime := range l.acked {
		line, ok := table[client]
		if !ok {
			lost++
			continue
		}
		got := line[strings.LastIndexByte(line, ' ')+1:]
		if protocol.CompareTime(got, ackedTime) < 0 || protocol.CompareTime(got, l.sent[client]) > 0 {
			lost++
			l.h.t.Errorf("%s holds %s at %s; acknowledged %s, last sent %s", name, client, got, ackedTime, l.sent[client])
		}
	}
	if lost > 0 {
		l.h.t.Errorf("%s lost %d of %d acknowledged clients", name, lost, len(l.acked))
	}
}

func TestFaultKill9UnderLoad(t *testing.T) {
	h := startHerd(t)
	meeksServer := h.servers[meeks]
	l := startLoad(h, []*server{h.servers[farmar], h.servers[gasol], h.servers[hill], h.servers[young]}, 50)
	l.waitAcks(500)
	h.kill(meeksServer) // Hill is cut off until Meeks is back
	l.waitAcks(1000)
	h.start(meeksServer)
	l.waitAcks(1000)
	l.stop()
	took := h.waitConverged(len(l.acked), h.servers...)
	l.checkNothingLost("the herd", h.table(meeksServer))
	t.Logf("kill -9 of Meeks under load: %d updates acknowledged, %d clients; converged %v after the load stopped", l.acks.Load(), len(l.acked), took)
}

func TestFaultRollingRestartUnderLoad(t *testing.T) {
	h := startHerd(t)
	l := startLoad(h, h.servers, 30)
	for _, s := range h.servers {
		l.waitAcks(300)
		h.gracefulStop(s)
		h.start(s)
		h.waitUntil(s.name+"'s links are up", func() bool {
			for _, p := range h.peers(s) {
				if !p.Up {
					return false
				}
			}
			return true
		})
	}
	l.waitAcks(300)
	l.stop()
	took := h.waitConverged(len(l.acked), h.servers...)
	for _, s := range h.servers {
		l.checkNothingLost(s.name, h.table(s))
	}
	t.Logf("rolling restart of all five under load: %d updates acknowledged, %d redials; converged %v after the load stopped", l.acks.Load(), l.redials.Load(), took)
}

func TestFaultPartitionAndHeal(t *testing.T) {
	h := startHerdWithProxies(t)
	setMeeksCut := func(cut bool) {
		for key, p := range h.proxies {
			if key[0] == "Meeks" || key[1] == "Meeks" {
				p.setCut(cut)
			}
		}
	}
	took, acks := partitionScenario(t, h, func() { setMeeksCut(true) }, func() { setMeeksCut(false) }, true)
	t.Logf("partition (TCP proxy cutting every link of Meeks, %d updates acknowledged): converged %v after healing", acks, took)
}

// partitionScenario cuts Meeks off, and with it Hill, whose only peer it is;
// puts updates on every side (conflicting ones included) and keeps the
// partition under load; heals it; and checks that every server converges on
// the same newest records. Where the cut hides Meeks from the test too,
// meeksReachable is false and Meeks gets only the load's updates. It returns
// how long convergence took after healing and the updates acknowledged.
func partitionScenario(t *testing.T, h *herd, cut, heal func(), meeksReachable bool) (time.Duration, int64) {
	t.Helper()
	cut()
	base := time.Now().Unix()
	at := func(s int, client string, frac int) string {
		c := dial(t, h.servers[s])
		defer c.close()
		return c.iamat(client, kiwiLocation, fmt.Sprintf("%d.%d", base, frac))
	}
	// Three sides: Hill alone, Meeks alone, and Farmar-Gasol-Young.
	var atMeeks string
	if meeksReachable {
		atMeeks = at(meeks, "split", 1)
	}
	atHill := at(hill, "split", 2)
	atYoung := at(young, "split", 3)
	tieHill := at(hill, "tie", 5)
	tieFarmar := at(farmar, "tie", 5)
	west := at(hill, "west", 1)
	east := at(gasol, "east", 1)
	h.waitStored("split", atYoung, h.servers[farmar], h.servers[gasol])
	h.waitStored("east", east, h.servers[farmar], h.servers[young])
	for _, s := range []*server{h.servers[farmar], h.servers[gasol], h.servers[young]} {
		if got := h.stored(s, "west"); got != "" {
			t.Fatalf("%s learned %q across the partition", s.name, got)
		}
	}
	if got := h.stored(h.servers[hill], "split"); got != atHill {
		t.Fatalf("Hill holds %q during the partition, want its own %q", got, atHill)
	}
	if meeksReachable {
		if got := h.stored(h.servers[meeks], "split"); got != atMeeks {
			t.Fatalf("Meeks holds %q during the partition, want its own %q", got, atMeeks)
		}
	}

	// Keep the partition while every side takes updates.
	l := startLoad(h, []*server{h.servers[hill], h.servers[meeks], h.servers[young]}, 20)
	l.waitAcks(3000)
	heal()
	healed := time.Now()
	l.waitAcks(500)
	l.stop()
	h.waitConverged(4+len(l.acked), h.servers...)
	took := time.Since(healed)
	table := h.table(h.servers[hill])
	l.checkNothingLost("Hill", table)
	if table["split"] != atYoung || table["tie"] != max(tieHill, tieFarmar) || table["west"] != west || table["east"] != east {
		t.Errorf("after healing: %v; want split from Young, tie %q, west and east", table, max(tieHill, tieFarmar))
	}
	return took, l.acks.Load()
}

// rtt measures n IAMAT round trips on one connection and returns p50, p99.
func rtt(t *testing.T, s *server, n int) (time.Duration, time.Duration) {
	t.Helper()
	c := dial(t, s)
	defer c.close()
	d := make([]time.Duration, n)
	for i := range d {
		start := time.Now()
		c.iamat(fmt.Sprintf("probe-%d", i), kiwiLocation, now())
		d[i] = time.Since(start)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[n/2], d[n*99/100]
}

// fill stores n clients at s over one pipelined connection, their IDs padded
// to padding bytes.
func fill(t *testing.T, s *server, prefix string, n, padding int) {
	t.Helper()
	c := dial(t, s)
	defer c.close()
	pad := strings.Repeat("x", padding)
	go func() {
		w := bufio.NewWriterSize(c.conn, 64<<10)
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "IAMAT %s-%s-%d %s %s\n", prefix, pad, i, kiwiLocation, now())
		}
		w.Flush()
	}()
	for i := 0; i < n; i++ {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.r.ReadString('\n'); err != nil {
			t.Fatalf("filling %s: reply %d: %v", s.name, i, err)
		}
	}
}

// addPeer reloads s with one more peer.
func (h *herd) addPeer(s *server, name, addr string) {
	h.t.Helper()
	config, err := os.ReadFile(s.config)
	if err != nil {
		h.t.Fatal(err)
	}
	updated := strings.Replace(string(config), "\t\tplaces ", fmt.Sprintf("\t\tpeer %s %s\n\t\tplaces ", name, addr), 1)
	h.reload(s, updated)
}

func (h *herd) peer(s *server, name string) peerStatus {
	h.t.Helper()
	for _, p := range h.peers(s) {
		if p.Name == name {
			return p
		}
	}
	h.t.Fatalf("%s has no peer %s", s.name, name)
	return peerStatus{}
}

func TestFaultPeerThatNeverReads(t *testing.T) {
	h := startHerd(t)
	s := h.servers[farmar]
	// 20,000 records of 1 KiB: far more than the kernel buffers between
	// Farmar and a peer that does not read.
	const clients, padding = 20000, 1000
	fill(t, s, "big", clients, padding)
	baseP50, baseP99 := rtt(t, s, 300)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never read
		}
	}()
	h.addPeer(s, "Stuck", ln.Addr().String())
	var first net.Conn
	select {
	case first = <-accepted:
		defer first.Close()
	case <-time.After(waitTimeout):
		t.Fatal("Farmar did not dial the stuck peer")
	}

	stuckP50, stuckP99 := rtt(t, s, 300)
	fill(t, s, "big", clients, padding) // every client again: the queue must stay bounded by the table
	table := len(h.table(s))
	stuck := h.peer(s, "Stuck")
	if stuck.Pending > table {
		t.Errorf("%d records pending for the stuck peer, more than the %d clients", stuck.Pending, table)
	}
	// Other peers are not held up by the stuck one.
	probe := dial(t, s).iamat("after-stuck", kiwiLocation, now())
	h.waitStored("after-stuck", probe, h.servers[young], h.servers[hill])

	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(waitTimeout):
		t.Fatal("the stuck link was not dropped and redialled")
	}
	t.Logf("stuck peer with %d clients: IAMAT round trip p50/p99 %v/%v before, %v/%v while stuck; %d records pending after every client was updated again (%d clients)",
		clients, baseP50, baseP99, stuckP50, stuckP99, stuck.Pending, table)
}

// goroutines reads a server's goroutine count from Caddy's pprof endpoint.
func (h *herd) goroutines(s *server) int {
	h.t.Helper()
	resp, err := adminClient.Get(s.adminURL("/debug/pprof/goroutine?debug=1"))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	first, _ := bufio.NewReader(resp.Body).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(first, "goroutine profile: total ")))
	if err != nil {
		h.t.Fatalf("goroutine profile starts %q", first)
	}
	return n
}

func (h *herd) openFiles(s *server) int {
	h.t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	if err != nil {
		h.t.Fatal(err)
	}
	return len(entries)
}

// flapper is a peer that goes up and down: while up it reads and counts
// lines; while down nothing listens on its address.
type flapper struct {
	addr     string
	lines    atomic.Int64
	accepted atomic.Int64
	mu       sync.Mutex
	ln       net.Listener
	conns    []net.Conn
}

func (f *flapper) up(t *testing.T) {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatalf("flapper listening again on %s: %v", f.addr, err)
	}
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.accepted.Add(1)
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			go func() {
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					// Like a classic server, it answers the catch-up
					// exchange `? <line>`.
					if strings.HasPrefix(sc.Text(), "HERD ") {
						fmt.Fprintf(c, "? %s\n", sc.Text())
						continue
					}
					f.lines.Add(1)
				}
			}()
		}
	}()
}

func (f *flapper) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ln.Close()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func TestFaultFlappingPeer(t *testing.T) {
	seconds := 60
	if v, err := strconv.Atoi(os.Getenv("HERD_FLAP_SECONDS")); err == nil {
		seconds = v
	}
	h := startHerd(t)
	s := h.servers[farmar]
	fill(t, s, "flap", 1000, 60)
	f := &flapper{addr: fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])}
	f.up(t)
	h.addPeer(s, "Flap", f.addr)
	h.waitUntil("the link to the flapping peer is up and idle", func() bool {
		p := h.peer(s, "Flap")
		return p.Up && p.Pending == 0 && f.lines.Load() >= 1000
	})
	updates := dial(t, s)
	defer updates.close()
	updates.iamat("flap-start", kiwiLocation, now())
	goroutinesBefore, filesBefore := h.goroutines(s), h.openFiles(s)

	end := time.Now().Add(time.Duration(seconds) * time.Second)
	sent := 0
	for time.Now().Before(end) {
		f.down()
		updates.iamat(fmt.Sprintf("flap-update-%d", sent), kiwiLocation, now())
		sent++
		time.Sleep(300 * time.Millisecond) // the fault's own rhythm: down for 300 ms
		f.up(t)
		time.Sleep(300 * time.Millisecond) // up for 300 ms
	}
	h.waitUntil("the link to the flapping peer is up and idle again", func() bool {
		p := h.peer(s, "Flap")
		return p.Up && p.Pending == 0
	})
	var goroutinesAfter, filesAfter int
	h.waitUntil("goroutines and open files back to where they were", func() bool {
		goroutinesAfter, filesAfter = h.goroutines(s), h.openFiles(s)
		return goroutinesAfter <= goroutinesBefore+2 && filesAfter <= filesBefore+2
	})
	table := int64(len(h.table(s)))
	connects := f.accepted.Load()
	// Each connection carries at most the whole table plus the updates.
	if max := connects * (table + int64(sent)); f.lines.Load() > max {
		t.Errorf("the flapping peer received %d lines over %d connections, more than %d", f.lines.Load(), connects, max)
	}
	p := h.peer(s, "Flap")
	t.Logf("flapping peer for %ds: %d connections accepted, %d lines received (table %d, %d updates), link connects %d; goroutines %d -> %d, open files %d -> %d",
		seconds, connects, f.lines.Load(), table, sent, p.Connects, goroutinesBefore, goroutinesAfter, filesBefore, filesAfter)
}
