package module

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/herdstore"
)

// TestDestructDeliversWhatWasQueued stops a node right after a burst of
// updates: everything queued for an up link still reaches the peer before
// the link closes, so a graceful stop loses no acknowledged update.
func TestDestructDeliversWhatWasQueued(t *testing.T) {
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	n := newTestNode(t, nil)
	n.configure("Test", []Peer{{Name: "P", Address: peer.Addr().String()}}, nil, nil, zap.NewNop())
	conn := accept(t, peer)
	received := make(chan map[string]bool, 1)
	go func() {
		clients := make(map[string]bool)
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			clients[strings.Fields(sc.Text())[3]] = true
		}
		received <- clients
	}()
	links := *n.links.Load()
	if len(links) != 1 {
		t.Fatalf("%d links", len(links))
	}
	waitUp := time.Now().Add(10 * time.Second)
	for !links[0].Status().Up {
		if time.Now().After(waitUp) {
			t.Fatal("link not up")
		}
		time.Sleep(time.Millisecond)
	}

	const updates = 50000
	for i := 0; i < updates; i++ {
		n.apply(herdstore.NewRecord(fmt.Sprintf("AT Test +0.000000001 client-%d +1+1 %d", i, i)))
	}
	n.Destruct()
	select {
	case clients := <-received:
		if len(clients) != updates {
			t.Errorf("the peer received %d of %d clients before the link closed", len(clients), updates)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the link was not closed after Destruct")
	}
}
