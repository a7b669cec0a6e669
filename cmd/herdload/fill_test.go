package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// lineServer serves a test line server on 127.0.0.1 that answers each line
// with answer(line); tb's cleanup closes it.
func lineServer(tb testing.TB, answer func(line string) string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := conn.Write([]byte(answer(line))); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestFillStoresNDistinctClients checks that fill sends exactly n valid
// IAMATs, one for each of prefix-0 .. prefix-(n-1), each at a location of
// its own, and adds up the records the server answered.
func TestFillStoresNDistinctClients(t *testing.T) {
	const n = 1000
	var (
		mu        sync.Mutex
		clients   = make(map[string]int)
		locations = make(map[string]bool)
		replied   int64
	)
	addr := lineServer(t, func(line string) string {
		fields := protocol.Fields(nil, []byte(line))
		if protocol.Classify(fields) != protocol.IAMAT {
			return "? " + strings.TrimSpace(line) + "\n"
		}
		reply := fmt.Sprintf("AT S +0.000000000 %s %s %s\n", fields[1], fields[2], fields[3])
		mu.Lock()
		defer mu.Unlock()
		clients[string(fields[1])]++
		locations[string(fields[2])] = true
		replied += int64(len(reply))
		return reply
	})
	res, err := fill(fillConfig{Addr: addr, N: n, Conns: 3, Pipeline: 7, Prefix: "f"})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(clients) != n || len(locations) != n {
		t.Errorf("the server saw %d clients at %d locations, want %d of each", len(clients), len(locations), n)
	}
	for i := range n {
		if id := fmt.Sprintf("f-%d", i); clients[id] != 1 {
			t.Errorf("client %s was sent %d times, want once", id, clients[id])
		}
	}
	if res.n != n || res.recordBytes != replied {
		t.Errorf("fill reports %d clients and %d record bytes, want %d and %d", res.n, res.recordBytes, n, replied)
	}
}

func TestFillFailsOnAnInvalidReply(t *testing.T) {
	addr := lineServer(t, func(line string) string {
		if strings.Contains(line, " f-17 ") {
			return "? " + strings.TrimSpace(line) + "\n"
		}
		return "AT S +0.000000000 x +1+1 1\n"
	})
	if _, err := fill(fillConfig{Addr: addr, N: 100, Conns: 2, Pipeline: 4, Prefix: "f"}); err == nil || !strings.Contains(err.Error(), "client 17 was answered") {
		t.Errorf("fill with one `?` reply returned %v, want an error naming client 17", err)
	}
}

func TestFillRedisSendsInlineSets(t *testing.T) {
	var (
		mu   sync.Mutex
		keys = make(map[string]bool)
	)
	addr := lineServer(t, func(line string) string {
		// SET <key> "AT Redis +0.000000000 <key> <location> <time>"
		key, value, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(line, "SET "), "\r\n"), " ")
		record := strings.Trim(value, `"`)
		fields := protocol.Fields(nil, []byte(record))
		if !ok || protocol.Classify(fields) != protocol.AT || string(fields[protocol.ATClient]) != key {
			return fmt.Sprintf("-ERR unexpected %q\r\n", line)
		}
		mu.Lock()
		keys[key] = true
		mu.Unlock()
		return "+OK\r\n"
	})
	if _, err := fill(fillConfig{Addr: addr, N: 50, Conns: 2, Pipeline: 8, Prefix: "r", Redis: true}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 50 {
		t.Errorf("%d distinct keys set, want 50", len(keys))
	}
}
