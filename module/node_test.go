package module

import (
	"bufio"
	"fmt"
	"io"
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
	var f floods
	for i := 0; i < updates; i++ {
		n.apply(herdstore.NewRecord(fmt.Sprintf("AT Test +0.000000001 client-%d +1+1 %d", i, i)), "", &f)
	}
	n.flood(&f)
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

// TestApplySkipsOriginAndSender floods a record that came from one peer and
// was made by another: only the third peer gets it. A later record of this
// server's own reaches all three, so it is the first line the two skipped
// peers read.
func TestApplySkipsOriginAndSender(t *testing.T) {
	names := []string{"Origin", "Sender", "Other"}
	var peers []Peer
	lines := make(map[string]<-chan string)
	for _, name := range names {
		address, ch := peerLines(t, 2)
		peers = append(peers, Peer{Name: name, Address: address})
		lines[name] = ch
	}
	n := newTestNode(t, nil)
	n.configure("Test", peers, nil, nil, zap.NewNop())
	// Each link catches its peer up from the empty table first.
	waitCaughtUp(t, n)

	relayed := "AT Origin +0.5 kiwi +34.068930-118.445127 1621464827.959498503"
	own := "AT Test +0.1 kiwi +34.068930-118.445127 1621464828.000000000"
	var f floods
	if !n.apply(herdstore.NewRecord(relayed), "Sender", &f) {
		t.Fatal("the relayed record was not stored")
	}
	if !n.apply(herdstore.NewRecord(own), "", &f) {
		t.Fatal("the newer own record was not stored")
	}
	n.flood(&f)
	want := map[string][]string{
		"Origin": {own},
		"Sender": {own},
		"Other":  {relayed, own},
	}
	for _, name := range names {
		for _, line := range want[name] {
			select {
			case got := <-lines[name]:
				if got != line {
					t.Errorf("peer %s read %q, want %q", name, got, line)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("peer %s did not read %q", name, line)
			}
		}
	}
}

// TestApplyKeepsCopiesOfScratchRecords applies records made one after
// another in one Scratch, as a connection does: the link must send each
// record, not what the scratch holds last.
func TestApplyKeepsCopiesOfScratchRecords(t *testing.T) {
	address, lines := peerLines(t, 3)
	n := newTestNode(t, nil)
	n.configure("Test", []Peer{{Name: "Other", Address: address}}, nil, nil, zap.NewNop())
	waitCaughtUp(t, n)

	want := []string{
		"AT Origin +0.5 kiwi +34.068930-118.445127 1621464827.959498501",
		"AT Origin +0.5 lime +34.068930-118.445127 1621464827.959498502",
		"AT Origin +0.5 pear +34.068930-118.445127 1621464827.959498503",
	}
	var s herdstore.Scratch
	var f floods
	for _, line := range want {
		if !n.apply(s.MakeRecord([]byte(line), herdstore.Origin{}), "", &f) {
			t.Fatalf("%q was not stored", line)
		}
	}
	n.flood(&f)
	for _, line := range want {
		select {
		case got := <-lines:
			if got != line {
				t.Errorf("peer read %q, want %q", got, line)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("peer did not read %q", line)
		}
	}
}

// TestApplyCopiesOnlyForLinks checks that a record no link takes, as in a
// star a record from the hub, is stored without an allocation, while one a
// link takes is copied for it.
func TestApplyCopiesOnlyForLinks(t *testing.T) {
	address, _ := peerLines(t, 1)
	n := newTestNode(t, nil)
	n.configure("Test", []Peer{{Name: "Hub", Address: address}}, nil, nil, zap.NewNop())

	var hub, own [][]byte
	for i := range 200 {
		hub = append(hub, fmt.Appendf(nil, "AT Hub +0.5 kiwi +1+1 1621464827.%09d", i))
		own = append(own, fmt.Appendf(nil, "AT Test +0.5 lime +1+1 1621464827.%09d", i))
	}
	var s herdstore.Scratch
	var f floods
	next := 0
	allocs := testing.AllocsPerRun(100, func() {
		if !n.apply(s.MakeRecord(hub[next], herdstore.Origin{}), "", &f) {
			t.Fatalf("%q was not stored", hub[next])
		}
		next++
	})
	if allocs != 0 {
		t.Errorf("applying a record no link takes allocates %v times, want 0", allocs)
	}
	if len(f.updates) != 0 || !f.changed {
		t.Errorf("%d records to flood, changed %v; want none and true", len(f.updates), f.changed)
	}
	n.apply(s.MakeRecord(own[0], herdstore.Origin{}), "", &f)
	if len(f.updates) != 1 || string(f.lines) != string(own[0])+"\n" {
		t.Errorf("lines to flood after an own record: %q, want it alone", f.lines)
	}
}

// waitCaughtUp waits until every link of n is up and has written its
// catch-up and everything queued.
func waitCaughtUp(t testing.TB, n *node) {
	t.Helper()
	for _, l := range *n.links.Load() {
		waitUntil(t, "link "+l.Name()+" up and caught up", func() bool {
			return l.Status().Up && l.Drain(0)
		})
	}
}

// TestFloodsBeforeWaitingForInput has a peer connection send a complete AT
// line and half of the next one, then nothing: the input never runs dry at
// a line's end, yet the complete line is flooded while the handler waits for
// the rest.
func TestFloodsBeforeWaitingForInput(t *testing.T) {
	address, lines := peerLines(t, 1)
	n := newTestNode(t, nil)
	n.configure("Test", []Peer{{Name: "P", Address: address}}, nil, nil, zap.NewNop())
	waitCaughtUp(t, n)

	conn, _ := serveOne(t, testHandler(n))
	complete := "AT Other +0.5 kiwi +34.068930-118.445127 1621464827.959498503"
	if _, err := io.WriteString(conn, complete+"\nAT Other +0.5 kiwi2 +34.0"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-lines:
		if got != complete {
			t.Errorf("the peer read %q, want %q", got, complete)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the complete line was not flooded while the connection waited for the rest of the next")
	}
}

// peerLines listens as a fake peer and returns its address and the lines it
// reads from the first connection, in a channel buffering size of them.
func peerLines(t *testing.T, size int) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	lines := make(chan string, size)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			// A classic server answers the catch-up exchange `? <line>`.
			if strings.HasPrefix(sc.Text(), "HERD ") {
				fmt.Fprintf(conn, "? %s\n", sc.Text())
				continue
			}
			lines <- sc.Text()
		}
	}()
	return ln.Addr().String(), lines
}

// TestFloodAwaitsOnlyForRepliesAndLinks: a flood's records are written
// before it returns when a reply (an IAMAT's AT) or a link waits for them;
// the records of a peer that go to no link are left for the log to write.
func TestFloodAwaitsOnlyForRepliesAndLinks(t *testing.T) {
	address, _ := peerLines(t, 4)
	n := newTestNode(t, nil)
	n.configure("Test", []Peer{{Name: "Other", Address: address}}, nil, nil, zap.NewNop())
	waitCaughtUp(t, n)
	tests := []struct {
		name     string
		line     string
		answered bool
		want     bool
	}{
		{"a record of the only peer's", "AT Other +0.5 kiwi +1+1 1", false, false},
		{"a record the link takes", "AT Third +0.5 kiwi +1+1 2", false, true},
		{"an IAMAT's record", "AT Test +0.5 kiwi +1+1 3", true, true},
	}
	for _, tt := range tests {
		var f floods
		if !n.apply(herdstore.NewRecord(tt.line), "", &f) {
			t.Fatalf("%s: not stored", tt.name)
		}
		f.answered = tt.answered
		if got := f.awaited(); got != tt.want {
			t.Errorf("%s: awaited %v, want %v", tt.name, got, tt.want)
		}
		n.flood(&f)
	}
}
