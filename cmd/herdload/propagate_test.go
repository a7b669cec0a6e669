package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// floodingServer is a test herd server: it answers every IAMAT and floods
// its record to peer after delay(probe number) over one link, skipping the
// probes drop says to skip. It also floods noise the listener must ignore:
// a background client's record, a record for a probe nobody awaits, a
// second copy of the record, and a line that is not an AT line.
func floodingServer(t *testing.T, peer string, delay func(i int) time.Duration, drop func(i int) bool) string {
	t.Helper()
	link, err := net.Dial("tcp", peer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	var mu sync.Mutex
	flood := func(lines ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			link.Write([]byte(l + "\n"))
		}
	}
	return lineServer(t, func(line string) string {
		fields := protocol.Fields(nil, []byte(line))
		if protocol.Classify(fields) != protocol.IAMAT {
			return "? " + strings.TrimSpace(line) + "\n"
		}
		client := string(fields[protocol.IAMATClient])
		record := fmt.Sprintf("AT S +0.000000000 %s %s %s", client, fields[2], fields[3])
		i, _ := strconv.Atoi(client[strings.LastIndexByte(client, '-')+1:])
		if !drop(i) {
			time.AfterFunc(delay(i), func() {
				flood(
					fmt.Sprintf("AT S +0.000000000 bg-%d +1+1 1", i),
					fmt.Sprintf("AT S +0.000000000 %s%d +1+1 1", client[:strings.LastIndexByte(client, '-')+1], i+1000),
					"not an AT line",
					record,
					record,
				)
			})
		}
		return record + "\n"
	})
}

// TestProberMatchesEachProbesArrival sends probes through a server that
// floods probe i after i ms and drops every fifth: every sample must be at
// least its probe's delay, the dropped ones lost, and the noise ignored.
func TestProberMatchesEachProbesArrival(t *testing.T) {
	const n = 20
	peer, err := listenAsPeer("127.0.0.1:0", "p-")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	delay := func(i int) time.Duration { return time.Duration(i) * time.Millisecond }
	dropped := func(i int) bool { return i%5 == 4 }
	addr := floodingServer(t, peer.Addr(), delay, dropped)
	pr, err := newProber(addr, peer, "p-")
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()

	samples, lost, err := pr.measure(n, 0, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if lost != 4 || len(samples) != n-4 {
		t.Fatalf("%d samples and %d lost, want %d and 4", len(samples), lost, n-4)
	}
	k := 0
	for i := range n {
		if dropped(i) {
			continue
		}
		if samples[k] < delay(i) || samples[k] > delay(i)+50*time.Millisecond {
			t.Errorf("probe %d arrived after %v, want %v plus a little", i, samples[k], delay(i))
		}
		k++
	}
	s := summarize(samples)
	if s.max < delay(n-2) || s.p50 < delay(8) {
		t.Errorf("summary %+v: want max at least %v and p50 at least %v", s, delay(n-2), delay(8))
	}
	if got := peer.invalid.Load(); got != n-4 {
		t.Errorf("%d invalid lines counted, want %d", got, n-4)
	}
}

// TestProbeThroughRawRelays checks the propagation baseline: probes sent
// to the first of two raw relays reach the listener through the second.
func TestProbeThroughRawRelays(t *testing.T) {
	peer, err := listenAsPeer("127.0.0.1:0", "q-")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	second := rawRelay(t, peer.Addr())
	first := rawRelay(t, second)
	pr, err := newProber(first, peer, "q-")
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if err := pr.awaitPath(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	samples, lost, err := pr.measure(50, 0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if lost != 0 || len(samples) != 50 {
		t.Errorf("%d samples and %d lost, want 50 and none", len(samples), lost)
	}
	if got := peer.invalid.Load(); got != 0 {
		t.Errorf("the relays sent %d invalid lines", got)
	}
}

// rawRelay serves the raw line server forwarding to peer; the test's
// cleanup closes its listener.
func rawRelay(t *testing.T, peer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	fwd := newForwarder(peer)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRaw(conn, fwd)
		}
	}()
	return ln.Addr().String()
}

// TestOpenLoopKeepsItsRate runs the background load against a server that
// answers everything, and checks it sent at about the rate asked.
func TestOpenLoopKeepsItsRate(t *testing.T) {
	addr := lineServer(t, func(string) string { return "AT S +0.000000000 x +1+1 1\n" })
	const rate = 4000
	o, err := startOpenLoop(addr, 4, rate, 100, "bg")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the length of the run, not a wait for a condition
	sent, acked, err := o.finish()
	if err != nil {
		t.Fatal(err)
	}
	if sent < 0.8*rate || sent > 1.1*rate || acked > sent {
		t.Errorf("sent %.0f/s and answered %.0f/s, want about %d/s sent", sent, acked, rate)
	}
}
