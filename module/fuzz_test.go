package module

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// scriptConn is a connection that reads a fixed input and records what is
// written, so a fuzz run is fast and deterministic.
type scriptConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// expectedReplies returns the trimmed messages that must get exactly one
// reply each: every complete line that is not blank, not a valid AT and not
// a valid THROUGH, up to a line over the limit, which ends the connection.
func expectedReplies(input []byte, maxLine int) []string {
	var want []string
	var fields [][]byte
	for len(input) > 0 {
		line := input
		if i := bytes.IndexByte(input, '\n'); i >= 0 {
			line, input = input[:i], input[i+1:]
		} else {
			input = nil
		}
		if len(line) > maxLine {
			break
		}
		msg := protocol.TrimSpace(line)
		fields = protocol.Fields(fields, msg)
		if len(msg) == 0 || protocol.Classify(fields) == protocol.AT {
			continue
		}
		if m, ok := protocol.ParseSync(fields); ok && m.Kind == protocol.SyncThrough {
			continue
		}
		want = append(want, string(msg))
	}
	return want
}

// FuzzHandler feeds any bytes to the handler: it must not panic, and every
// complete line gets exactly one reply, or none for a blank line, an AT or a
// THROUGH.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		"IAMAT kiwi +34.068930-118.445127 1520023934.918963997\nWHATSAT kiwi 10 5\n",
		"AT Other +0.1 c +1+1 1\nWHATSAT c 1 0\nWHATSAT nobody 1 1\n\n \t\n",
		"IAMAT a +90-180 0\nIAMAT a +90-180 0\r\nbad\x00line\nWHATSAT a 50 20",
		strings.Repeat("x", 200) + "\nIAMAT after +1+1 1\n",
		"\xff\xfe\n\v\f\nIAMAT\u00a0x +1+1 1\n",
		"HERD 1 HELLO Fuzz e1\nAT Fuzz +0.1 c +1+1 1\nHERD 1 THROUGH 7\nHERD 1 SINCE - 0 all\nHERD 1 THROUGH 99999999999999999999\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		n := newTestNode(t, &stubPlaces{body: `{"results":[{"a":1}],"status":"OK"}`})
		h := testHandler(n)
		conn := &scriptConn{in: bytes.NewReader(input)}
		h.Handle(layer4.WrapConnection(conn, nil, zap.NewNop()), nil)

		want := expectedReplies(input, h.MaxLineBytes)
		lines := strings.Split(conn.out.String(), "\n")
		if lines[len(lines)-1] != "" {
			t.Fatalf("output does not end with a newline: %q", conn.out.String())
		}
		lines = lines[:len(lines)-1]
		got := 0
		for i := 0; i < len(lines); i++ {
			if got >= len(want) {
				t.Fatalf("more replies than messages: %q for %q", conn.out.String(), want)
			}
			switch l := lines[i]; {
			case strings.HasPrefix(l, "? "):
				if l[2:] != want[got] {
					t.Fatalf("reply %q to message %q", l, want[got])
				}
			case strings.HasPrefix(l, "HERD 1 SINCE "):
				if m, ok := protocol.ParseSync(protocol.Fields(nil, []byte(want[got]))); !ok || m.Kind != protocol.SyncHello {
					t.Fatalf("reply %q to message %q", l, want[got])
				}
			case strings.HasPrefix(l, "AT "):
				if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "{") {
					if i+2 >= len(lines) || lines[i+2] != "" {
						t.Fatalf("WHATSAT reply not ended by a blank line: %q", conn.out.String())
					}
					i += 2
				}
			default:
				t.Fatalf("unexpected reply line %q in %q", l, conn.out.String())
			}
			got++
		}
		if got != len(want) {
			t.Fatalf("%d replies for %d messages %q: %q", got, len(want), want, conn.out.String())
		}
	})
}

// BenchmarkHandleIAMAT runs the whole handler over a script of IAMATs for
// distinct clients: parse, store, format, reply.
func BenchmarkHandleIAMAT(b *testing.B) {
	benchmarkHandle(b, "IAMAT client-", zap.NewNop())
}

// BenchmarkHandleIAMATLogOff is BenchmarkHandleIAMAT with the handler's log
// at INFO, as Caddy's default log is: the per-message entries are off.
func BenchmarkHandleIAMATLogOff(b *testing.B) {
	benchmarkHandle(b, "IAMAT client-", discardingLogger(zapcore.InfoLevel))
}

// BenchmarkHandleIAMATLogged is BenchmarkHandleIAMAT with every line and
// reply logged at DEBUG, encoded as JSON and discarded.
func BenchmarkHandleIAMATLogged(b *testing.B) {
	benchmarkHandle(b, "IAMAT client-", discardingLogger(zapcore.DebugLevel))
}

func discardingLogger(level zapcore.Level) *zap.Logger {
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), level))
}

// BenchmarkHandleIAMATFlooded is BenchmarkHandleIAMAT on a server with two
// peers, whose links take every update.
func BenchmarkHandleIAMATFlooded(b *testing.B) {
	benchmarkHandle(b, "IAMAT client-", zap.NewNop(), discardingPeer(b), discardingPeer(b))
}

// BenchmarkHandleAT runs the whole handler over a peer's script of AT lines
// for distinct clients: parse, normalize, store.
func BenchmarkHandleAT(b *testing.B) {
	benchmarkHandle(b, "AT Peer +0.000000001 client-", zap.NewNop())
}

// discardingPeer returns the address of a peer that reads and drops what
// its links send.
func discardingPeer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				io.Copy(io.Discard, conn)
			}()
		}
	}()
	return ln.Addr().String()
}

// benchmarkHandle runs the handler over 10,000 lines, prefix, a client
// number and a location and time each, on a server with links to peers at
// the given addresses, logging to logger. Every run sends each client a later time than the run
// before, so that every line updates the table, as a client that moves does.
func benchmarkHandle(b *testing.B, prefix string, logger *zap.Logger, peers ...string) {
	const lines = 10000
	const fraction = len("000000000\n")
	var script bytes.Buffer
	var ends []int
	for i := 0; i < lines; i++ {
		script.WriteString(prefix)
		script.WriteString(strconv.Itoa(i))
		script.WriteString(" +34.068930-118.445127 1520023934.000000000\n")
		ends = append(ends, script.Len())
	}
	n := newNode()
	defer n.Destruct()
	var links []Peer
	for i, address := range peers {
		links = append(links, Peer{Name: fmt.Sprint("Peer", i), Address: address})
	}
	n.configure("Bench", links, nil, nil, zap.NewNop())
	n.markReady()
	waitCaughtUp(b, n)
	h := &Handler{MaxLineBytes: 4096, node: n, logger: logger}
	b.ReportAllocs()
	b.SetBytes(int64(script.Len()))
	run := 0
	for b.Loop() {
		run++
		later := fmt.Appendf(nil, "%09d", run)
		for _, end := range ends {
			copy(script.Bytes()[end-fraction:], later)
		}
		conn := &scriptConn{in: bytes.NewReader(script.Bytes())}
		h.Handle(layer4.WrapConnection(conn, nil, zap.NewNop()), nil)
	}
	if got := n.stats.applied.Load(); got < int64(b.N*lines) {
		b.Fatalf("%d of %d lines updated the table", got, b.N*lines)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
}
