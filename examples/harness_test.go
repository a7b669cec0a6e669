package examples

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

// The example herd, in the port order of its Caddyfiles (12000 + index).
var serverNames = []string{"Farmar", "Gasol", "Hill", "Meeks", "Young"}

const (
	farmar = iota
	gasol
	hill
	meeks
	young
)

// waitTimeout bounds every wait for the herd to reach a state.
const waitTimeout = 20 * time.Second

var caddyBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddyBinary = filepath.Join(dir, "caddy")
	args := []string{"build", "-o", caddyBinary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/caddy")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy with the herd plugin:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one running Caddy process of a test herd.
type server struct {
	name      string
	port      int
	adminPort int
	httpPort  int    // serves the status page, in the example Caddyfiles
	host      string // the address it listens on; "" for 127.0.0.1
	netns     string // the network namespace it runs in; "" for this one
	config    string // the config file it runs
	adapter   string // "caddyfile", or "" for JSON
	output    string // its stdout and stderr
	cmd       *exec.Cmd
	exited    chan struct{}
}

func (s *server) ip() string {
	if s.host == "" {
		return "127.0.0.1"
	}
	return s.host
}

func (s *server) addr() string { return net.JoinHostPort(s.ip(), strconv.Itoa(s.port)) }

// adminURL is the URL of path on the server's admin endpoint.
func (s *server) adminURL(path string) string {
	return "http://" + net.JoinHostPort(s.ip(), strconv.Itoa(s.adminPort)) + path
}

// herd is a five-server herd built from the example Caddyfiles, on free
// ports, with every server's places provider pointed at a fake Google.
type herd struct {
	t       *testing.T
	dir     string
	servers []*server
	places  *fakeplaces.Server
	// proxies carries each peer link, from one server to another, when the
	// herd was started with startHerdWithProxies, so a test can cut it.
	proxies map[[2]string]*linkProxy
}

// providerFor picks a different provider per server, so that a herd test
// covers all three: Google's legacy API, Google's new API and the file.
func providerFor(name, endpoint string) string {
	switch name {
	case "Gasol", "Young":
		return fmt.Sprintf("places google {\n\t\t\tapi_key %s\n\t\t\tendpoint %s\n\t\t}", fakeplaces.APIKey, endpoint)
	case "Meeks":
		abs, _ := filepath.Abs("places.json")
		return "places file " + abs
	}
	return fmt.Sprintf("places google_legacy {\n\t\t\tapi_key {env.HERD_TEST_PLACES_KEY}\n\t\t\tendpoint %s\n\t\t}", endpoint)
}

func startHerd(t *testing.T) *herd {
	t.Helper()
	return startHerdOptions(t, herdOptions{})
}

// startHerdWithProxies starts the herd with every peer link going through
// a proxy of the test's, which can cut it.
func startHerdWithProxies(t *testing.T) *herd {
	t.Helper()
	return startHerdOptions(t, herdOptions{proxied: true})
}

// herdOptions change the example herd a test starts.
type herdOptions struct {
	// proxied puts every peer link through a proxy the test can cut.
	proxied bool
	// herdBlock is added to every server's herd block, e.g. "fsync always".
	herdBlock string
}

func startHerdOptions(t *testing.T, opts herdOptions) *herd {
	t.Helper()
	h := &herd{t: t, dir: t.TempDir(), places: fakeplaces.Start(t), proxies: make(map[[2]string]*linkProxy)}
	ports := freePorts(t, 3*len(serverNames))
	peerLine := regexp.MustCompile(`peer (\w+) (127\.0\.0\.1:\d+)`)
	for i, name := range serverNames {
		config := exampleConfig(t, name, h.dir, providerFor(name, h.places.URL), func(j int, kind portKind) string {
			return fmt.Sprintf("127.0.0.1:%d", ports[int(kind)*len(serverNames)+j])
		})
		if opts.herdBlock != "" {
			config = strings.Replace(config, "\t\tstorage ", "\t\t"+opts.herdBlock+"\n\t\tstorage ", 1)
		}
		if opts.proxied {
			config = peerLine.ReplaceAllStringFunc(config, func(m string) string {
				sub := peerLine.FindStringSubmatch(m)
				p := startLinkProxy(t, sub[2])
				h.proxies[[2]string{name, sub[1]}] = p
				return "peer " + sub[1] + " " + p.addr()
			})
		}
		s := &server{
			name:      name,
			port:      ports[i],
			adminPort: ports[i+len(serverNames)],
			httpPort:  ports[i+2*len(serverNames)],
			config:    filepath.Join(h.dir, name+".caddyfile"),
			adapter:   "caddyfile",
			output:    filepath.Join(h.dir, name+".out"),
		}
		if err := os.WriteFile(s.config, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		h.servers = append(h.servers, s)
	}
	t.Cleanup(h.stop)
	for _, s := range h.servers {
		h.start(s)
	}
	return h
}

// exampleAddress matches the example Caddyfiles' addresses: 1200i is server
// i's herd port, 210i its admin endpoint, 1300i its status page.
var exampleAddress = regexp.MustCompile(`127\.0\.0\.1:(1200|210|1300)([0-4])\b`)

// portKind is what an address of an example Caddyfile serves.
type portKind int

const (
	herdAddr portKind = iota
	adminAddr
	statusAddr
)

// exampleConfig returns the example Caddyfile of server name with every
// address mapped by addressOf (the server's index, and what the address
// serves), its logs in dir, and provider for the places file.
func exampleConfig(t *testing.T, name, dir, provider string, addressOf func(server int, kind portKind) string) string {
	t.Helper()
	example, err := os.ReadFile(name + ".caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	config := exampleAddress.ReplaceAllStringFunc(string(example), func(m string) string {
		sub := exampleAddress.FindStringSubmatch(m)
		kind := map[string]portKind{"1200": herdAddr, "210": adminAddr, "1300": statusAddr}[sub[1]]
		return addressOf(int(sub[2][0]-'0'), kind)
	})
	config = strings.ReplaceAll(config, "output file logs/", "output file "+dir+"/")
	return strings.ReplaceAll(config, "places file places.json", provider)
}

func (h *herd) start(s *server) {
	h.t.Helper()
	out, err := os.OpenFile(s.output, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	defer out.Close()
	args := []string{"run", "--config", s.config}
	if s.adapter != "" {
		args = append(args, "--adapter", s.adapter)
	}
	if s.netns != "" {
		args = append([]string{"netns", "exec", s.netns, caddyBinary}, args...)
		s.cmd = exec.Command("ip", args...)
	} else {
		s.cmd = exec.Command(caddyBinary, args...)
	}
	s.cmd.Dir = h.dir
	s.cmd.Env = append(os.Environ(), "HERD_TEST_PLACES_KEY="+fakeplaces.APIKey, "HOME="+h.dir, "XDG_CONFIG_HOME="+h.dir, "XDG_DATA_HOME="+h.dir)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(s.cmd, s.exited)
	h.waitUntil(s.name+" listens", func() bool {
		select {
		case <-s.exited:
			h.t.Fatalf("%s exited at start:\n%s", s.name, tail(s.output))
		default:
		}
		c, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	// Caddy starts its apps in no fixed order: the port may listen while
	// the herd app still restores its table, and the admin API says so.
	// (Caddy starts the admin endpoint before the apps: a server without
	// one refuses the connection.)
	h.waitUntil(s.name+"'s herd app has started", func() bool {
		resp, err := adminClient.Get(s.adminURL("/herd/stats"))
		if err != nil {
			return true
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusServiceUnavailable
	})
}

// gracefulStop stops a server with SIGINT, as a rolling restart does.
func (h *herd) gracefulStop(s *server) {
	h.t.Helper()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		h.t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(waitTimeout):
		h.t.Fatalf("%s did not stop on SIGINT", s.name)
	}
}

// kill ends a server at once, as `kill -9` does.
func (h *herd) kill(s *server) {
	h.t.Helper()
	h.killAll(s)
}

// killAll sends SIGKILL to every server listed before it waits for any.
func (h *herd) killAll(servers ...*server) {
	h.t.Helper()
	for _, s := range servers {
		if err := s.cmd.Process.Kill(); err != nil {
			h.t.Fatal(err)
		}
	}
	for _, s := range servers {
		<-s.exited
	}
}

func (h *herd) stop() {
	for _, s := range h.servers {
		if s.cmd == nil {
			continue
		}
		select {
		case <-s.exited:
			continue
		default:
		}
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			h.t.Errorf("%s did not stop on SIGINT", s.name)
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	for _, s := range h.servers {
		data, _ := os.ReadFile(s.output)
		if bytes.Contains(data, []byte("DATA RACE")) || bytes.Contains(data, []byte("panic:")) {
			h.t.Errorf("%s reported a data race or panic:\n%s", s.name, data)
		} else if h.t.Failed() {
			h.t.Logf("%s output (end):\n%s", s.name, tail(s.output))
			h.t.Logf("%s herd log (end):\n%s", s.name, tail(filepath.Join(h.dir, s.name+".log")))
		}
	}
}

// waitUntil polls cond until it holds, failing the test after waitTimeout.
func (h *herd) waitUntil(what string, cond func() bool) time.Duration {
	h.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > waitTimeout {
			h.t.Fatalf("timed out after %v waiting until %s", waitTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// stored returns the AT line that server s holds for client, or "" if none:
// the first line of a WHATSAT reply.
func (h *herd) stored(s *server, clientID string) string {
	h.t.Helper()
	c := dial(h.t, s)
	defer c.close()
	at, _ := c.whatsat(clientID, "1", "0")
	return at
}

// waitStored waits until every listed server holds want for client.
func (h *herd) waitStored(clientID, want string, servers ...*server) {
	h.t.Helper()
	for _, s := range servers {
		h.waitUntil(fmt.Sprintf("%s holds %q", s.name, want), func() bool {
			return h.stored(s, clientID) == want
		})
	}
}

// reload posts a new Caddyfile to a server's admin API.
func (h *herd) reload(s *server, caddyfile string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.adminURL("/load"), strings.NewReader(caddyfile))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := adminClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("reloading %s: %s: %s", s.name, resp.Status, body)
	}
}

// client is one TCP connection to a server.
type client struct {
	t    *testing.T
	conn *net.TCPConn
	// stream is what send and line use: conn, or a TLS connection over it.
	stream net.Conn
	r      *bufio.Reader
}

func dial(t *testing.T, s *server) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", s.name, err)
	}
	return &client{t: t, conn: conn.(*net.TCPConn), stream: conn, r: bufio.NewReader(conn)}
}

func (c *client) close() { c.stream.Close() }

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.stream.Write([]byte(s)); err != nil {
		c.t.Fatalf("sending %q: %v", s, err)
	}
}

// line reads one reply line, without its newline.
func (c *client) line() string {
	c.t.Helper()
	c.stream.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\n")
}

// whatsatReply reads the rest of a WHATSAT reply whose first line is at:
// the JSON up to the blank line that ends it.
func (c *client) whatsatReply(at string) string {
	c.t.Helper()
	if strings.HasPrefix(at, "? ") {
		return ""
	}
	var doc strings.Builder
	for {
		l := c.line()
		if l == "" {
			return doc.String()
		}
		doc.WriteString(l)
		doc.WriteByte('\n')
	}
}

// whatsat asks for places and returns the AT line ("" for a `?` reply) and
// the JSON.
func (c *client) whatsat(clientID, radius, bound string) (string, string) {
	c.t.Helper()
	c.send(fmt.Sprintf("WHATSAT %s %s %s\n", clientID, radius, bound))
	at := c.line()
	if strings.HasPrefix(at, "? ") {
		return "", ""
	}
	return at, c.whatsatReply(at)
}

// iamat reports a location and returns the AT reply.
func (c *client) iamat(clientID, location, clientTime string) string {
	c.t.Helper()
	c.send(fmt.Sprintf("IAMAT %s %s %s\n", clientID, location, clientTime))
	return c.line()
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var listeners []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range listeners {
		ln.Close()
	}
	return ports
}

func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// now returns the current time as a client would send it.
func now() string {
	t := time.Now()
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}
