package examples

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startOne runs a single server from a config body.
func startOne(t *testing.T, name, adapter, body string, port, adminPort int) *herd {
	t.Helper()
	h := &herd{t: t, dir: t.TempDir()}
	ext := ".json"
	if adapter == "caddyfile" {
		ext = ".caddyfile"
	}
	s := &server{name: name, port: port, adminPort: adminPort, adapter: adapter,
		config: filepath.Join(h.dir, name+ext), output: filepath.Join(h.dir, name+".out")}
	if err := os.WriteFile(s.config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	h.servers = []*server{s}
	t.Cleanup(h.stop)
	h.start(s)
	return h
}

func TestJSONConfig(t *testing.T) {
	ports := freePorts(t, 3)
	body := fmt.Sprintf(`{
	"admin": {"listen": "127.0.0.1:%d"},
	"apps": {
		"herd": {
			"name": "Json",
			"peers": [{"name": "Other", "address": "127.0.0.1:%d"}],
			"places": {"provider": "file", "path": %q}
		},
		"layer4": {
			"servers": {
				"herd": {
					"listen": ["127.0.0.1:%d"],
					"routes": [{"handle": [{"handler": "herd", "max_line_bytes": 256, "idle_timeout": "1m"}]}]
				}
			}
		}
	}
}`, ports[1], ports[2], mustAbs(t, "places.json"), ports[0])
	h := startOne(t, "Json", "", body, ports[0], ports[1])
	c := dial(t, h.servers[0])
	defer c.close()
	at := c.iamat("kiwi", kiwiLocation, now())
	if !strings.HasPrefix(at, "AT Json ") {
		t.Fatalf("reply %q", at)
	}
	c.send("WHATSAT kiwi 1 3\n")
	if got := c.line(); got != at {
		t.Fatalf("WHATSAT starts %q", got)
	}
	checkPlaces(t, c.whatsatReply(at), 3)

	// max_line_bytes from the JSON applies: a 300-byte line ends the connection.
	c.send(strings.Repeat("x", 300) + "\n")
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	// The server closes with the rest of the line unread, so the close may
	// arrive as a reset; what must not happen is a reply or a timeout.
	n, err := c.r.Read(make([]byte, 1))
	var netErr net.Error
	if err == nil || (errors.As(err, &netErr) && netErr.Timeout()) {
		t.Errorf("after an oversized line: read %d bytes, %v; want the connection closed", n, err)
	}
}

// TestValidateDialsNothing runs `caddy validate` on a config whose peer is a
// listener of the test's: validation provisions the herd without dialling.
func TestValidateDialsNothing(t *testing.T) {
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ports := freePorts(t, 1)
	dir := t.TempDir()
	config := filepath.Join(dir, "Caddyfile")
	os.WriteFile(config, []byte(fmt.Sprintf("{\n\tadmin off\n\therd {\n\t\tname V\n\t\tpeer P %s\n\t}\n\tlayer4 {\n\t\t127.0.0.1:%d {\n\t\t\troute {\n\t\t\t\therd\n\t\t\t}\n\t\t}\n\t}\n}\n",
		peer.Addr(), ports[0])), 0o600)
	out, err := exec.Command(caddyBinary, "validate", "--adapter", "caddyfile", "--config", config).CombinedOutput()
	if err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}
	// The process has exited: any dial it made is already queued.
	peer.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if conn, err := peer.Accept(); err == nil {
		conn.Close()
		t.Error("caddy validate dialled a peer")
	}
	if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0])); err != nil {
		t.Errorf("the herd port is taken after validate: %v", err)
	} else {
		ln.Close()
	}
}

func TestValidateReportsConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, config, want string }{
		{"bad peer", "{\n\therd {\n\t\tname V\n\t\tpeer P localhost\n\t}\n}\n", "Caddyfile:4"},
		{"handler without app", "{\n\tlayer4 {\n\t\t127.0.0.1:1 {\n\t\t\troute {\n\t\t\t\therd\n\t\t\t}\n\t\t}\n\t}\n}\n", "needs a `herd` block"},
		{"missing key", "{\n\therd {\n\t\tname V\n\t\tplaces google_legacy {\n\t\t\tapi_key {env.HERD_NO_SUCH_VARIABLE}\n\t\t}\n\t}\n}\n", "api_key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			config := filepath.Join(dir, "Caddyfile")
			os.WriteFile(config, []byte(tt.config), 0o600)
			out, err := exec.Command(caddyBinary, "validate", "--adapter", "caddyfile", "--config", config).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("caddy validate: %v, output:\n%s\nwant a failure mentioning %q", err, out, tt.want)
			}
		})
	}
}

// TestRemovingTheHerdClosesConnections reloads a server with a config that
// has no herd: the open connection ends and the peer link is closed.
func TestRemovingTheHerdClosesConnections(t *testing.T) {
	h := startHerd(t)
	s := h.servers[hill]
	c := dial(t, s)
	defer c.close()
	c.iamat("gone", kiwiLocation, now())
	h.waitUntil("Hill's link to Meeks is up", func() bool { return h.peer(s, "Meeks").Up })
	h.reload(s, fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n}\n", s.adminPort))
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.r.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("open connection after the herd was removed: read %d bytes, %v; want EOF", n, err)
	}
	h.waitUntil("Hill's link to Meeks is closed", func() bool {
		log, _ := os.ReadFile(filepath.Join(h.dir, "Hill.log"))
		return strings.Contains(string(log), `"msg":"peer link closed"`)
	})
}

func mustAbs(t *testing.T, path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
