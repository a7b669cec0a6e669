package module

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/mholt/caddy-l4/layer4"
)

// inProcessConfig is a Caddy JSON config with the herd on listen, named
// name, flooding to peers.
func inProcessConfig(name, listen string, peers ...string) []byte {
	var list []string
	for i, p := range peers {
		list = append(list, fmt.Sprintf(`{"name": "P%d", "address": %q}`, i, p))
	}
	return []byte(fmt.Sprintf(`{
	"admin": {"disabled": true},
	"logging": {"logs": {"default": {"writer": {"output": "discard"}}}},
	"apps": {
		"herd": {"name": %q, "peers": [%s], "storage": {"off": true}},
		"layer4": {"servers": {"herd": {"listen": [%q], "routes": [{"handle": [{"handler": "herd"}]}]}}}
	}
}`, name, strings.Join(list, ","), listen))
}

// TestReloadLifecycle drives the app through Caddy itself: a reload keeps the
// table, the open connection and the unchanged link; removing the peer closes
// its link; stopping Caddy closes everything and leaves no goroutine behind.
func TestReloadLifecycle(t *testing.T) {
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	listen := freeAddress(t)

	// Warm up Caddy's own background goroutines before the baseline.
	if err := caddy.Load(inProcessConfig("Warm", listen), true); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	if err := caddy.Load(inProcessConfig("A", listen, peer.Addr().String()), true); err != nil {
		t.Fatal(err)
	}
	link := accept(t, peer)
	links := bufio.NewReader(link)
	// Let the link finish catching up from the empty table first: a record
	// put during a catch-up may reach the peer twice, once in the catch-up
	// and once queued, and the peer is read line by line below.
	n, _ := loadNode()
	waitCaughtUp(t, n)
	nodes.Delete(nodeKey)

	client, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	replies := bufio.NewReader(client)
	first := exchange(t, client, replies, "IAMAT c1 +1+1 1\n")
	if !strings.HasPrefix(first, "AT A ") {
		t.Fatalf("reply %q", first)
	}
	if got := readLine(t, link, links); got != strings.TrimSuffix(first, "\n") {
		t.Fatalf("flood %q, want %q", got, first)
	}

	// Reload with a new name, same peer.
	if err := caddy.Load(inProcessConfig("B", listen, peer.Addr().String()), true); err != nil {
		t.Fatal(err)
	}
	second := exchange(t, client, replies, "IAMAT c2 +1+1 2\n")
	if !strings.HasPrefix(second, "AT B ") {
		t.Errorf("reply after the reload %q: want the open connection kept and the new name", second)
	}
	// The same link carries the new flood: it was not redialled.
	if got := readLine(t, link, links); got != strings.TrimSuffix(second, "\n") {
		t.Errorf("flood after the reload %q, want %q on the original link", got, second)
	}
	if got := exchange(t, client, replies, "WHATSAT c1 1 1\n"); got != "? WHATSAT c1 1 1\n" {
		t.Errorf("WHATSAT without a provider: %q", got)
	}
	n, _ = loadNode()
	if _, ok := n.store.Get([]byte("c1")); !ok {
		t.Error("the table lost c1 across the reload")
	}
	nodes.Delete(nodeKey)

	// Reload without the peer: its link closes. The new peer is down, so its
	// link is left backing off when Caddy stops.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	dead.Close()
	if err := caddy.Load(inProcessConfig("B", listen, dead.Addr().String()), true); err != nil {
		t.Fatal(err)
	}
	link.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := links.ReadByte(); err == nil {
		t.Error("the removed peer's link is still open")
	}

	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := replies.ReadByte(); err == nil {
		t.Error("a client connection survived Caddy's stop")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after stop, %d before:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// accept takes the herd's link on ln and answers its HELLO as a classic
// server does, `? <line>`, so that the link sends plain AT lines at once.
func accept(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("the herd did not dial its peer: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	// Byte by byte, so that nothing after the HELLO is read here.
	var hello []byte
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for b := make([]byte, 1); len(hello) == 0 || hello[len(hello)-1] != '\n'; {
		if _, err := c.Read(b); err != nil {
			t.Fatalf("reading the link's HELLO: %v (got %q)", err, hello)
		}
		hello = append(hello, b[0])
	}
	if !strings.HasPrefix(string(hello), "HERD 1 HELLO ") {
		t.Fatalf("the link's first line is %q, want a HELLO", hello)
	}
	c.SetReadDeadline(time.Time{})
	if _, err := c.Write(append([]byte("? "), hello...)); err != nil {
		t.Fatal(err)
	}
	return c
}

func exchange(t *testing.T, c net.Conn, r *bufio.Reader, send string) string {
	t.Helper()
	if _, err := c.Write([]byte(send)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the reply to %q: %v", send, err)
	}
	return line
}

func readLine(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading from the link: %v", err)
	}
	return strings.TrimSuffix(line, "\n")
}

// freeAddress returns a loopback address nothing listens on.
func freeAddress(t *testing.T) string {
	t.Helper()
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	return probe.Addr().String()
}

// loadAndDial runs config in this process, stopped when t ends, and dials
// its listener at listen.
func loadAndDial(t *testing.T, config []byte, listen string) (net.Conn, *bufio.Reader) {
	t.Helper()
	if err := caddy.Load(config, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { caddy.Stop() })
	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, bufio.NewReader(conn)
}
