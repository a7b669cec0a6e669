package module

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/places"
)

// stubPlaces answers every query with the same document, or an error.
type stubPlaces struct {
	body string
	err  error
	got  chan places.Query
}

func (p *stubPlaces) Nearby(_ context.Context, q places.Query) ([]byte, error) {
	if p.got != nil {
		p.got <- q
	}
	return []byte(p.body), p.err
}

func newTestNode(t *testing.T, provider places.Provider) *node {
	t.Helper()
	n := newNode()
	n.configure("Test", nil, provider, nil, zap.NewNop())
	n.markReady()
	t.Cleanup(func() { n.Destruct() })
	return n
}

// serveOne runs the handler on one end of a pipe and returns the other end
// and a channel closed when Handle returns.
func serveOne(t *testing.T, h *Handler) (net.Conn, <-chan struct{}) {
	t.Helper()
	server, client := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		h.Handle(layer4.WrapConnection(server, nil, zap.NewNop()), nil)
	}()
	t.Cleanup(func() {
		client.Close()
		<-done
	})
	return client, done
}

func testHandler(n *node) *Handler {
	return &Handler{MaxLineBytes: 128, IdleTimeout: caddy.Duration(time.Minute), node: n, logger: zap.NewNop()}
}

func TestHandlerAnswersInOrder(t *testing.T) {
	provider := &stubPlaces{body: `{"results":[{"n":1},{"n":2}],"status":"OK"}`, got: make(chan places.Query, 4)}
	n := newTestNode(t, provider)
	conn, _ := serveOne(t, testHandler(n))
	go io.WriteString(conn, "IAMAT kiwi +34.068930-118.445127 1520023934.918963997\n\nWHATSAT kiwi 2.5 1\nAT Other +0.5 peer +1+1 7\nWHATSAT peer 1 0\nbad\n")
	r := bufio.NewReader(conn)
	read := func() string {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		return l
	}
	at := read()
	if !strings.HasPrefix(at, "AT Test ") || !strings.HasSuffix(at, " kiwi +34.068930-118.445127 1520023934.918963997\n") {
		t.Fatalf("IAMAT reply %q", at)
	}
	want := []string{at, "{\"results\":[{\"n\":1}],\"status\":\"OK\"}\n", "\n",
		"AT Other +0.5 peer +1+1 7\n", "{\"results\":[],\"status\":\"OK\"}\n", "\n", "? bad\n"}
	for i, w := range want {
		if got := read(); got != w {
			t.Errorf("reply line %d: %q, want %q", i, got, w)
		}
	}
	q := <-provider.got
	if q.Latitude != 34.06893 || q.Longitude != -118.445127 || q.RadiusMeters != 2500 || q.MaxResults != 1 {
		t.Errorf("provider asked %+v", q)
	}
}

func TestHandlerProviderErrorIsInvalid(t *testing.T) {
	n := newTestNode(t, &stubPlaces{err: errors.New("down")})
	n.store.Put(herdstore.NewRecord("AT A +0.1 kiwi +1+1 1"))
	conn, _ := serveOne(t, testHandler(n))
	go io.WriteString(conn, "WHATSAT kiwi 10 5\n")
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, _ := r.ReadString('\n'); got != "? WHATSAT kiwi 10 5\n" {
		t.Errorf("got %q", got)
	}
}

func TestHandlerClosesOnLongLine(t *testing.T) {
	n := newTestNode(t, nil)
	conn, done := serveOne(t, testHandler(n))
	go conn.Write([]byte("IAMAT k +1+1 1\n" + strings.Repeat("x", 200)))
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "AT Test ") {
		t.Errorf("reply before the long line: %q", got)
	}
	if !closedWithin(done) {
		t.Fatal("the connection stayed open after a line over max_line_bytes")
	}
	if _, ok := n.store.Get([]byte("k")); !ok {
		t.Error("the record sent before the long line was lost")
	}
}

// TestHandlerStampsLinesWithTheirRead sends two IAMATs in one write and a
// third after their replies: the two were received by one read, at one
// time, so their skews are equal, and the third's is later. The record's
// arrival time is that receive time too.
func TestHandlerStampsLinesWithTheirRead(t *testing.T) {
	n := newTestNode(t, nil)
	conn, _ := serveOne(t, testHandler(n))
	sent := time.Now()
	clientTime := fmt.Sprintf("%d.%09d", sent.Unix(), sent.Nanosecond())
	r := bufio.NewReader(conn)
	skew := func() (float64, string) {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		f := strings.Fields(line)
		if len(f) != 6 {
			t.Fatalf("reply %q", line)
		}
		s, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			t.Fatalf("skew of %q: %v", line, err)
		}
		return s, f[3]
	}
	go io.WriteString(conn, "IAMAT first +1+1 "+clientTime+"\nIAMAT second +1+1 "+clientTime+"\n")
	first, _ := skew()
	second, _ := skew()
	go io.WriteString(conn, "IAMAT third +1+1 "+clientTime+"\n")
	third, _ := skew()
	if first != second {
		t.Errorf("two lines of one read: skews %v and %v, want equal", first, second)
	}
	if third <= first {
		t.Errorf("a line of a later read: skew %v, want more than %v", third, first)
	}
	r1, _ := n.store.Get([]byte("first"))
	r3, _ := n.store.Get([]byte("third"))
	if got, want := r3.Origin().Arrived-r1.Origin().Arrived, int64((third-first)*1e9); got < want-1000 || got > want+1000 {
		t.Errorf("arrival times %d ns apart, skews %d ns", got, want)
	}
}

func TestHandlerIdleTimeout(t *testing.T) {
	n := newTestNode(t, nil)
	h := testHandler(n)
	h.IdleTimeout = caddy.Duration(50 * time.Millisecond)
	_, done := serveOne(t, h)
	if !closedWithin(done) {
		t.Fatal("an idle connection was not closed")
	}
}

// TestHandlerWaitsForTheHerdToStart connects before the herd app has
// started, as when Caddy starts the layer4 app first: the line is answered
// once the node is configured, with its name, and a node that ends before
// starting ends the connection.
func TestHandlerWaitsForTheHerdToStart(t *testing.T) {
	n := newNode()
	t.Cleanup(func() { n.Destruct() })
	conn, _ := serveOne(t, testHandler(n))
	line := "IAMAT kiwi +34.068930-118.445127 1621464827.959498503\n"
	// A pipe's write ends when the other side reads: nothing may be read yet.
	conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := io.WriteString(conn, line); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writing before the herd started: %v; want the deadline to pass unread", err)
	}
	conn.SetWriteDeadline(time.Time{})
	go io.WriteString(conn, line)
	n.configure("Late", nil, nil, nil, zap.NewNop())
	n.markReady()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(reply, "AT Late ") {
		t.Fatalf("reply %q, %v; want an AT from Late", reply, err)
	}

	never := newNode()
	_, done := serveOne(t, testHandler(never))
	never.Destruct()
	if !closedWithin(done) {
		t.Fatal("a connection waiting for a node that ended was not closed")
	}
}

func TestHandlerEndsWhenNodeCloses(t *testing.T) {
	n := newTestNode(t, nil)
	_, done := serveOne(t, testHandler(n))
	n.Destruct()
	if !closedWithin(done) {
		t.Fatal("an open connection survived the node")
	}
}

func TestHandlerWhatsatLimits(t *testing.T) {
	n := newTestNode(t, &stubPlaces{body: `{"results":[],"status":"OK"}`})
	n.limits.Store(&whatsatLimits{radiusKm: 5, bound: 3})
	n.store.Put(herdstore.NewRecord("AT A +0.1 kiwi +1+1 1"))
	conn, _ := serveOne(t, testHandler(n))
	go io.WriteString(conn, "WHATSAT kiwi 5.1 3\nWHATSAT kiwi 5 4\nWHATSAT kiwi 5 3\n")
	r := bufio.NewReader(conn)
	for _, want := range []string{"? WHATSAT kiwi 5.1 3\n", "? WHATSAT kiwi 5 4\n", "AT A +0.1 kiwi +1+1 1\n"} {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, _ := r.ReadString('\n'); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestHandlerLogsEveryLineInOrder sends lines that get short replies before
// a WHATSAT, in one write: the WHATSAT writes them out before it asks the
// provider. The debug log holds every line with its whole reply, in order,
// and a line that got no reply (an AT) without one.
func TestHandlerLogsEveryLineInOrder(t *testing.T) {
	// Entries are encoded as they are logged, as a real log's are: the
	// observer would keep the reply's bytes, which the session reuses.
	var logged bytes.Buffer
	n := newTestNode(t, &stubPlaces{body: `{"results":[{"n":1}],"status":"OK"}`})
	h := testHandler(n)
	h.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logged), zapcore.DebugLevel))
	conn, done := serveOne(t, h)
	r := bufio.NewReader(conn)
	sent := []string{"IAMAT kiwi +34.068930-118.445127 1", "bad line", "WHATSAT kiwi 1 1", "WHATSAT nobody 1 1"}
	go io.WriteString(conn, strings.Join(sent, "\n")+"\n")
	var read []string
	for _, lines := range []int{1, 1, 3, 1} {
		var reply strings.Builder
		for range lines {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading: %v after %q", err, read)
			}
			reply.WriteString(l)
		}
		read = append(read, reply.String())
	}
	// A flood from a peer is logged with no reply, after the lines before it.
	flood := "AT Other +0.5 lime +1+1 2"
	io.WriteString(conn, flood+"\n")
	waitUntil(t, "the flood to be stored", func() bool { _, ok := n.store.Get([]byte("lime")); return ok })
	conn.Close()
	<-done
	type line struct{ In, Out string }
	var got []line
	entries := 0
	for entry := range strings.Lines(logged.String()) {
		var e struct {
			Msg, Remote string
			Conn        uint64
			Lines       []line
		}
		if err := json.Unmarshal([]byte(entry), &e); err != nil {
			t.Fatalf("log entry %q: %v", entry, err)
		}
		if e.Msg == "lines" {
			entries++
			if e.Conn == 0 || e.Remote == "" {
				t.Errorf("entry %q lacks the connection id or remote address", entry)
			}
			got = append(got, e.Lines...)
		}
	}
	want := []line{{sent[0], read[0]}, {sent[1], read[1]}, {sent[2], read[2]}, {sent[3], read[3]}, {flood, ""}}
	if !slices.Equal(got, want) {
		t.Errorf("logged lines %q, want %q", got, want)
	}
	// The lines before the WHATSAT went out when it asked the provider, the
	// rest when the input ran dry, the flood alone.
	if entries != 3 {
		t.Errorf("%d entries, want 3: one per write of replies", entries)
	}
}
