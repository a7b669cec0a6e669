package examples

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startServers starts a herd of its own: one Caddy per name, each on a free
// herd port and admin port, with the herd block that herdBlock returns for
// it, given every server's herd address. Their data lives in the test's
// directory, under data/<name> unless the block says otherwise.
func startServers(t *testing.T, names []string, herdBlock func(name string, addr map[string]string) string) *herd {
	t.Helper()
	h := &herd{t: t, dir: t.TempDir(), proxies: make(map[[2]string]*linkProxy)}
	ports := freePorts(t, 2*len(names))
	addr := make(map[string]string)
	for i, name := range names {
		addr[name] = fmt.Sprintf("127.0.0.1:%d", ports[i])
	}
	for i, name := range names {
		s := &server{
			name:      name,
			port:      ports[i],
			adminPort: ports[len(names)+i],
			config:    filepath.Join(h.dir, name+".caddyfile"),
			adapter:   "caddyfile",
			output:    filepath.Join(h.dir, name+".out"),
		}
		h.writeConfig(s, herdBlock(name, addr))
		h.servers = append(h.servers, s)
	}
	t.Cleanup(h.stop)
	for _, s := range h.servers {
		h.start(s)
	}
	return h
}

// writeConfig writes s's Caddyfile with herdBlock as its herd block.
func (h *herd) writeConfig(s *server, herdBlock string) {
	h.t.Helper()
	config := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	log herd {
		output file %s/%s.log
		level INFO
		include herd layer4.handlers.herd
	}
	herd {
		name %s
%s
	}
	layer4 {
		127.0.0.1:%d {
			route {
				herd
			}
		}
	}
}
`, s.adminPort, h.dir, s.name, s.name, herdBlock, s.port)
	if err := os.WriteFile(s.config, []byte(config), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// herdLog returns what s logged to its herd log so far.
func herdLog(t *testing.T, h *herd, s *server) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.dir, s.name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// placesFile is the herd block line of the example places.
func placesFile(t *testing.T) string {
	abs, err := filepath.Abs("places.json")
	if err != nil {
		t.Fatal(err)
	}
	return "\t\tplaces file " + abs
}

// TestWholeHerdKill9LosesNothing kills all five servers at the same moment,
// three times, while clients keep writing, and restarts them on the same
// data: once the writes stop, every server holds every client's newest
// acknowledged record, with no client sending again.
func TestWholeHerdKill9LosesNothing(t *testing.T) {
	for _, tt := range []struct{ name, herdBlock string }{
		{"fsync everysec, the default", ""},
		{"fsync always", "fsync always"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startHerdOptions(t, herdOptions{herdBlock: tt.herdBlock})
			l := startLoad(h, h.servers, 40)
			for range 3 {
				l.waitAcks(1000)
				h.killAll(h.servers...)
				for _, s := range h.servers {
					h.start(s)
				}
			}
			l.waitAcks(400)
			l.stop()
			took := h.waitConverged(len(l.acked), h.servers...)
			for _, s := range h.servers {
				l.checkNothingLost(s.name, h.table(s))
			}
			t.Logf("%s: %d updates acknowledged by a herd killed whole three times; converged %v after the load stopped", tt.name, l.acks.Load(), took)
		})
	}
}

// pair is the two servers of the catch-up tests, each the other's peer.
func startPair(t *testing.T) *herd {
	t.Helper()
	places := placesFile(t)
	return startServers(t, []string{"Farmar", "Meeks"}, func(name string, addr map[string]string) string {
		other := map[string]string{"Farmar": "Meeks", "Meeks": "Farmar"}[name]
		return fmt.Sprintf("\t\tpeer %s %s\n%s\n\t\tstorage data/%s", other, addr[other], places, name)
	})
}

// waitMarked waits until each server's cursor of the other covers the
// other's last record: every link has said THROUGH its last number.
func (h *herd) waitMarked(a, b *server) {
	h.t.Helper()
	h.waitUntil(fmt.Sprintf("%s and %s know each other's last record", a.name, b.name), func() bool {
		sa, sb := h.storage(a), h.storage(b)
		return sb.Cursors[a.name].Seq == sa.Seq && sa.Cursors[b.name].Seq == sb.Seq
	})
}

// linkBytes returns what s's link to peer has sent since s started.
func (h *herd) linkBytes(s *server, peer string) int64 {
	h.t.Helper()
	return h.peer(s, peer).BytesSent
}

// TestCatchUpSendsWhatWasMissed stops one of two peers holding 50,000
// clients, updates 1,000 of them at the other and starts it again: both links
// together send at most 1.5x the bytes of the changed records until it holds
// everything. With its data directory wiped, it gets the whole table.
func TestCatchUpSendsWhatWasMissed(t *testing.T) {
	const clients, changed = 50000, 1000
	h := startPair(t)
	farmarServer, meeksServer := h.servers[0], h.servers[1]
	fill(t, farmarServer, "c", clients, 10)
	h.waitConverged(clients, farmarServer, meeksServer)
	h.waitMarked(farmarServer, meeksServer)

	// changedBytes updates the first 1,000 clients at Farmar while Meeks is
	// down and returns the bytes of their records as a link sends them.
	changedBytes := func() int64 {
		fill(t, farmarServer, "c", changed, 10)
		var n int64
		for client, line := range h.table(farmarServer) {
			var i int
			if _, err := fmt.Sscanf(client[strings.LastIndexByte(client, '-')+1:], "%d", &i); err == nil && i < changed {
				n += int64(len(line)) + 1
			}
		}
		return n
	}

	h.gracefulStop(meeksServer)
	want := changedBytes()
	before := h.linkBytes(farmarServer, "Meeks")
	h.start(meeksServer)
	took := h.waitConverged(clients, farmarServer, meeksServer)
	sent := h.linkBytes(farmarServer, "Meeks") - before + h.linkBytes(meeksServer, "Farmar")
	if float64(sent) > 1.5*float64(want) {
		t.Errorf("the links sent %d bytes to catch up %d changed records of %d bytes: %.2fx, want at most 1.5x", sent, changed, want, float64(sent)/float64(want))
	}
	if c := h.peer(farmarServer, "Meeks").LastCatchUp; c == nil || c.After == 0 || c.Records != changed {
		t.Errorf("Farmar's catch-up of Meeks: %+v, want %d records after a cursor", c, changed)
	}
	t.Logf("catch-up after %d of %d clients changed: %d bytes sent by both links for %d bytes of records (%.2fx), converged %v after the restart", changed, clients, sent, want, float64(sent)/float64(want), took)

	h.gracefulStop(meeksServer)
	if err := os.RemoveAll(filepath.Join(h.dir, "data", "Meeks")); err != nil {
		t.Fatal(err)
	}
	changedBytes()
	h.start(meeksServer)
	h.waitConverged(clients, farmarServer, meeksServer)
	if c := h.peer(farmarServer, "Meeks").LastCatchUp; c == nil || c.After != 0 || c.Records != clients {
		t.Errorf("Farmar's catch-up of a wiped Meeks: %+v, want the whole table, %d records", c, clients)
	}
}

// classicPeer is a peer that speaks only the six-field AT flood: it answers
// anything else `? <line>` and keeps the AT lines each link connection
// brings.
type classicPeer struct {
	ln    net.Listener
	conns chan chan string
}

func listenClassic(t *testing.T) *classicPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &classicPeer{ln: ln, conns: make(chan chan string, 8)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			lines := make(chan string, 1024)
			p.conns <- lines
			go func() {
				defer close(lines)
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if !strings.HasPrefix(sc.Text(), "AT ") {
						fmt.Fprintf(c, "? %s\n", sc.Text())
						lines <- "answered ? " + sc.Text()
						continue
					}
					lines <- sc.Text()
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

// next returns the lines of the next link connection.
func (p *classicPeer) next(t *testing.T) chan string {
	t.Helper()
	select {
	case lines := <-p.conns:
		return lines
	case <-time.After(waitTimeout):
		t.Fatal("the server did not dial the classic peer")
		return nil
	}
}

// read reads n lines from a connection's lines.
func readN(t *testing.T, lines chan string, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the link closed after %d lines: %q", len(got), got)
			}
			got = append(got, l)
		case <-time.After(waitTimeout):
			t.Fatalf("read %d lines, want %d", len(got), n)
		}
	}
	return got
}

// TestClassicPeerCatchesUpAndIsCaughtUp peers a server with one that speaks
// only the classic flood: it answers the server's HELLO `? <line>`, gets the
// whole table and the live updates as plain AT lines, and its own floods are
// stored, through a kill -9, and sent back in the next whole table.
func TestClassicPeerCatchesUpAndIsCaughtUp(t *testing.T) {
	p := listenClassic(t)
	h := startServers(t, []string{"Farmar"}, func(string, map[string]string) string {
		return fmt.Sprintf("\t\tpeer Classic %s\n\t\tstorage data/Farmar", p.ln.Addr())
	})
	s := h.servers[0]
	lines := p.next(t)
	if got := readN(t, lines, 1)[0]; !strings.HasPrefix(got, "answered ? HERD 1 HELLO Farmar ") {
		t.Fatalf("the classic peer's first line: %q, want the HELLO it answered", got)
	}
	c := dial(t, s)
	mine := c.iamat("from-farmar", kiwiLocation, now())
	if got := readN(t, lines, 1)[0]; got != mine {
		t.Fatalf("live update to the classic peer: %q, want %q", got, mine)
	}
	// The classic peer floods its records to the server's client port, as
	// classic servers do.
	var theirs []string
	for i := range 50 {
		line := fmt.Sprintf("AT Classic +0.100000000 classic-%d %s %s", i, kiwiLocation, now())
		c.send(line + "\n")
		theirs = append(theirs, line)
	}
	// An AT gets no reply; the reply to a later IAMAT comes once every
	// record before it is stored.
	after := c.iamat("after-classic", kiwiLocation, now())
	c.close()
	if got := readN(t, lines, 1)[0]; got != after {
		t.Fatalf("live update to the classic peer: %q, want %q", got, after)
	}
	if n := len(h.table(s)); n != 52 {
		t.Fatalf("the server holds %d clients, want its 2 and the classic peer's 50", n)
	}

	h.kill(s)
	h.start(s)
	lines = p.next(t)
	got := readN(t, lines, 53)
	if !strings.HasPrefix(got[0], "answered ? HERD 1 HELLO Farmar ") {
		t.Errorf("after the restart the first line was %q, want the HELLO", got[0])
	}
	table := make(map[string]bool)
	for _, l := range got[1:] {
		table[l] = true
	}
	for _, want := range append(theirs, mine, after) {
		if !table[want] {
			t.Errorf("the catch-up after kill -9 lacks %q", want)
		}
	}
	select {
	case extra := <-lines:
		t.Errorf("the classic peer got more than the table: %q", extra)
	case <-time.After(300 * time.Millisecond): // what a mark would be sent within
	}
}

// segments returns the log segments of a data directory, oldest first.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "log-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no log segments in %s: %v", dir, err)
	}
	return files
}

// lastNonEmpty returns the newest segment that holds a record: a restarted
// server begins a new one.
func lastNonEmpty(t *testing.T, dir string) string {
	t.Helper()
	files := segments(t, dir)
	best, size := "", int64(0)
	for _, f := range files {
		if info, err := os.Stat(f); err == nil && info.Size() >= size {
			best, size = f, info.Size()
		}
	}
	return best
}

// TestDamagedLogStartsWithTheIntactPrefix cuts the end off a killed server's
// log, then flips a byte in its middle: each time the server starts, warns
// with the file and offset, and holds exactly the clients stored before the
// damage.
func TestDamagedLogStartsWithTheIntactPrefix(t *testing.T) {
	const clients = 200
	h := startServers(t, []string{"Farmar"}, func(string, map[string]string) string {
		return "\t\tstorage data/Farmar\n\t\tfsync always"
	})
	s := h.servers[0]
	c := dial(t, s)
	for i := range clients {
		c.iamat(fmt.Sprint("client-", i), kiwiLocation, now())
	}
	c.close()
	h.kill(s)
	dir := filepath.Join(h.dir, "data", "Farmar")
	segment := lastNonEmpty(t, dir)

	// holdsPrefix checks that s holds client-0 up to some client-k and
	// nothing else, and returns k+1.
	holdsPrefix := func() int {
		t.Helper()
		table := h.table(s)
		for i := range len(table) {
			if _, ok := table[fmt.Sprint("client-", i)]; !ok {
				t.Fatalf("the table holds %d clients but not client-%d: not a prefix", len(table), i)
			}
		}
		return len(table)
	}
	// The log is buffered: the warning reaches the file within a second.
	warned := func(want string) {
		t.Helper()
		h.waitUntil(fmt.Sprintf("a warning names %s and %q", segment, want), func() bool {
			out := herdLog(t, h, s)
			return strings.Contains(out, "herd storage damaged") && strings.Contains(out, segment) && strings.Contains(out, want)
		})
	}

	info, err := os.Stat(segment)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(segment, info.Size()-7); err != nil {
		t.Fatal(err)
	}
	h.start(s)
	if n := holdsPrefix(); n != clients-1 {
		t.Errorf("after cutting the last record short the server holds %d clients, want %d", n, clients-1)
	}
	warned(`"offset":`)
	h.gracefulStop(s)

	data, err := os.ReadFile(segment)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x20
	if err := os.WriteFile(segment, data, 0o600); err != nil {
		t.Fatal(err)
	}
	h.start(s)
	n := holdsPrefix()
	if n == 0 || n >= clients-1 {
		t.Errorf("after a flipped byte in the middle the server holds %d clients, want a prefix of fewer than %d", n, clients-1)
	}
	warned("checksum")
	t.Logf("a cut tail left %d of %d clients, a flipped byte in the middle %d", clients-1, clients, n)
}

// TestTwoServersCannotShareADirectory starts a second Caddy on a running
// server's data directory, left at its default: it refuses, naming the
// directory and the process that holds it, and the first goes on; `caddy
// validate` of the same config passes.
func TestTwoServersCannotShareADirectory(t *testing.T) {
	h := startServers(t, []string{"Farmar"}, func(string, map[string]string) string { return "" })
	s := h.servers[0]
	dir := filepath.Join(h.dir, "caddy", "herd", "Farmar")
	if _, err := os.Stat(filepath.Join(dir, "lock")); err != nil {
		t.Fatalf("the default data directory %s has no lock: %v", dir, err)
	}
	ports := freePorts(t, 2)
	second := &server{name: "Farmar", port: ports[0], adminPort: ports[1], config: filepath.Join(h.dir, "second.caddyfile")}
	h.writeConfig(second, "")
	cmd := exec.Command(caddyBinary, "run", "--adapter", "caddyfile", "--config", second.config)
	cmd.Dir = h.dir
	cmd.Env = append(os.Environ(), "HOME="+h.dir, "XDG_CONFIG_HOME="+h.dir, "XDG_DATA_HOME="+h.dir)
	done := make(chan []byte, 1)
	go func() {
		out, _ := cmd.CombinedOutput()
		done <- out
	}()
	select {
	case out := <-done:
		if cmd.ProcessState.Success() {
			t.Errorf("the second server exited with success:\n%s", out)
		}
		if want := "in use by process " + strconv.Itoa(s.cmd.Process.Pid); !strings.Contains(string(out), want) || !strings.Contains(string(out), dir) {
			t.Errorf("the second server's output does not name %s and say %q:\n%s", dir, want, out)
		}
	case <-time.After(waitTimeout):
		cmd.Process.Kill()
		t.Fatal("the second server did not refuse to start")
	}
	dial(t, s).iamat("still-served", kiwiLocation, now())

	// Validating the config opens nothing, so it passes while the directory
	// is in use, as before a reload.
	validate := exec.Command(caddyBinary, "validate", "--adapter", "caddyfile", "--config", second.config)
	validate.Dir = h.dir
	validate.Env = cmd.Env
	if out, err := validate.CombinedOutput(); err != nil {
		t.Errorf("caddy validate of a config whose directory is in use: %v\n%s", err, out)
	}
}

// TestReloadKeepsOrMovesTheStorage reloads a server under load: with its
// directory unchanged the open storage is kept, not read again; with another
// directory the table moves there. A kill -9 after each and a restart on the
// config last loaded lose no acknowledged update.
func TestReloadKeepsOrMovesTheStorage(t *testing.T) {
	h := startServers(t, []string{"Farmar"}, func(string, map[string]string) string { return "\t\tstorage data/Farmar" })
	s := h.servers[0]
	opened := func() int { return strings.Count(herdLog(t, h, s), "herd storage opened") }

	l := startLoad(h, h.servers, 50)
	l.waitAcks(300)
	h.writeConfig(s, "\t\tstorage data/Farmar\n\t\tfsync always")
	config, _ := os.ReadFile(s.config)
	h.reload(s, string(config))
	if st := h.storage(s); st.Fsync != "always" || !strings.HasSuffix(st.Dir, "data/Farmar") || opened() != 1 {
		t.Errorf("after a reload with the same directory: %+v, storage opened %d times", st, opened())
	}
	l.waitAcks(300)
	h.writeConfig(s, "\t\tstorage data/Moved")
	config, _ = os.ReadFile(s.config)
	h.reload(s, string(config))
	if st := h.storage(s); !strings.HasSuffix(st.Dir, "data/Moved") || st.Snapshots != 1 {
		t.Errorf("after a reload with another directory: %+v", st)
	}
	l.waitAcks(300)
	l.stop()
	h.kill(s)
	h.start(s)
	l.checkNothingLost(s.name, h.table(s))
	if st := h.storage(s); !strings.HasSuffix(st.Dir, "data/Moved") {
		t.Errorf("restarted on %s", st.Dir)
	}
}
