package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// restartTiming is how long a restarted server took to open its port and
// to answer for the last client it stored.
type restartTiming struct {
	port, answers time.Duration
}

// timeRestart starts a server with launch and times it until its port opens
// and until answers says it has its data, polling every 5 ms.
func timeRestart(port int, launch func() (*proc, error), answers func() bool) (restartTiming, error) {
	t0 := time.Now()
	p, err := launch()
	if err != nil {
		return restartTiming{}, err
	}
	var t restartTiming
	if err := p.waitWhileAlive(300*time.Second, 5*time.Millisecond, "the restarted server's port", func() (bool, error) { return portOpen(port), nil }); err != nil {
		return t, err
	}
	t.port = time.Since(t0)
	if err := p.waitWhileAlive(300*time.Second, 5*time.Millisecond, "the restarted server's data", func() (bool, error) { return answers(), nil }); err != nil {
		return t, err
	}
	t.answers = time.Since(t0)
	return t, nil
}

// whatsatAnswers says whether the herd server on port answers WHATSAT for
// client.
func whatsatAnswers(port int, client string) bool {
	conn, err := net.DialTimeout("tcp", localAddr(port), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(conn, "WHATSAT %s 1 1\n", client); err != nil {
		return false
	}
	reply := make([]byte, 2)
	_, err = io.ReadFull(conn, reply)
	return err == nil && string(reply) == "AT"
}

// redisAnswers says whether Redis on port has loaded its data and has key.
func redisAnswers(port int, key string) bool {
	out, err := redisCLI(port, "exists", key)
	return err == nil && out == "1"
}

func (c *comparison) sectionRestart() error {
	base, clients := c.PortBase, c.CatchupClients
	s, sadmin := base+60, base+1060
	last := "r-" + strconv.Itoa(clients-1)
	places := filepath.Join(c.root, "examples", "places.json")
	if _, err := c.startHerd(herdConfig{Name: "S", Port: s, AdminPort: sadmin, Extra: "\t\tplaces file " + places}); err != nil {
		return err
	}
	if _, err := fill(fillConfig{Addr: localAddr(s), N: clients, Conns: 8, Pipeline: 64, Prefix: "r"}); err != nil {
		return fmt.Errorf("filling S: %w", err)
	}
	st, err := adminObject(sadmin, "/herd/storage")
	if err != nil {
		return fmt.Errorf("reading S's storage: %w", err)
	}
	disk, _ := strconv.ParseFloat(field(st, "disk_bytes"), 64)
	c.procs.kill("S")
	herd, err := timeRestart(s, func() (*proc, error) { return c.restartHerd("S", "S") }, func() bool { return whatsatAnswers(s, last) })
	if err != nil {
		return fmt.Errorf("restarting S: %w", err)
	}
	if held := herdClients(sadmin); held != int64(clients) {
		return fmt.Errorf("S restarted with %d clients, not %d", held, clients)
	}
	c.procs.stopAll()

	r, rdir := base+2366, filepath.Join(c.work, "RA")
	if _, err := c.startRedisAOF("RA", r, "everysec"); err != nil {
		return err
	}
	if _, err := fill(fillConfig{Addr: localAddr(r), N: clients, Conns: 8, Pipeline: 64, Prefix: "r", Redis: true}); err != nil {
		return fmt.Errorf("filling Redis: %w", err)
	}
	if err := redisSaveRDB(r, rdir); err != nil {
		return err
	}
	aofBytes, err := filesSize(filepath.Join(rdir, "appendonlydir", "*"))
	if err != nil {
		return fmt.Errorf("measuring the AOF: %w", err)
	}
	rdbBytes, err := filesSize(filepath.Join(rdir, "dump.rdb"))
	if err != nil {
		return fmt.Errorf("measuring the RDB: %w", err)
	}
	c.procs.kill("RA")
	fromAOF, err := timeRestart(r, func() (*proc, error) {
		return c.launchRedis("RA", r, "--appendonly", "yes", "--appendfsync", "everysec")
	},
		func() bool { return redisAnswers(r, last) })
	if err != nil {
		return fmt.Errorf("restarting Redis on its AOF: %w", err)
	}
	redisCLI(r, "shutdown", "nosave")
	c.procs.forget("RA")
	fromRDB, err := timeRestart(r, func() (*proc, error) { return c.launchRedis("RA", r) }, func() bool { return redisAnswers(r, last) })
	if err != nil {
		return fmt.Errorf("restarting Redis on its RDB: %w", err)
	}
	c.procs.stopAll()

	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintf(w, "## Restart of a server holding %d clients: from the start until it answers for the last one stored\n", clients)
	fmt.Fprintf(w, "# herd: herdload fill -n %d -c 8 -p 64 (fsync everysec); kill -9; start; WHATSAT %s 1 1 every 5 ms until answered\n", clients, last)
	fmt.Fprintln(w, "# Redis: the same records SET with appendonly everysec; kill -9; start on its AOF, then on its RDB; EXISTS every 5 ms")
	secs := func(d time.Duration) string { return fixed(d.Seconds(), 3) }
	perClient := func(b float64) string { return fixed(b/float64(clients), 0) }
	tw := newTable(w)
	writeRow(tw, "", "", "port open s", "answers s", "disk B/client")
	writeRow(tw, "", "herd", secs(herd.port), secs(herd.answers), perClient(disk))
	writeRow(tw, "", "Redis from its AOF", secs(fromAOF.port), secs(fromAOF.answers), perClient(float64(aofBytes)))
	writeRow(tw, "", "Redis from its RDB", secs(fromRDB.port), secs(fromRDB.answers), perClient(float64(rdbBytes)))
	if err := tw.Flush(); err != nil {
		return err
	}
	// The ratios of the times as printed, to the millisecond.
	ms := func(d time.Duration) float64 { return roundTo(d.Seconds(), 3) }
	fmt.Fprintf(w, "# herd/Redis AOF: %s; herd/Redis RDB: %s\n", fixed(ratio(ms(herd.answers), ms(fromAOF.answers)), 2), fixed(ratio(ms(herd.answers), ms(fromRDB.answers)), 2))
	fmt.Fprintf(w, "# herd on disk: %s bytes of log in %s segments, %s snapshots taken during the fill\n", field(st, "log_bytes"), field(st, "segments"), field(st, "snapshots"))

	rows, err := c.restartCatchup()
	if err != nil {
		return err
	}
	redisRows, err := c.restartRedisPSYNC()
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "## Catch-up of N after it missed updates to some of M's %d clients (stopped gracefully, updated at M, started)\n", clients)
	fmt.Fprintln(w, "# herdload fill -addr M -n C -c 8 -p 64 -prefix k while N is down; seconds from N's start until it applied them all;")
	fmt.Fprintln(w, "# bytes: what both links sent from N's start (/herd/peers bytes_sent); Redis: a replica stopped with SHUTDOWN SAVE,")
	fmt.Fprintln(w, "# the same SETs at the primary (repl-backlog-size 256mb), restarted; bytes: the primary's replication offset")
	tw = newTable(w)
	writeRow(tw, "", "changed", "run", "seconds", "bytes", "changed bytes", "ratio")
	for _, row := range append(rows, redisRows...) {
		writeRow(tw, "", row...)
	}
	return tw.Flush()
}

// restartChanges are how many of the table's clients change while a peer
// is down.
var restartChanges = []int{1000, 100000}

// restartCatchup has N, M's peer, miss updates while it is down, and times
// its catch-up when it starts again with its storage, and with storage off
// (the whole table).
func (c *comparison) restartCatchup() ([][]string, error) {
	base, clients := c.PortBase, c.CatchupClients
	m, n, madmin, nadmin := base+61, base+62, base+1061, base+1062
	if _, err := c.startHerd(herdConfig{Name: "N", Port: n, AdminPort: nadmin, Peers: []herdPeer{{"M", m}}}); err != nil {
		return nil, err
	}
	if _, err := c.startHerd(herdConfig{Name: "M", Port: m, AdminPort: madmin, Peers: []herdPeer{{"N", n}}}); err != nil {
		return nil, err
	}
	if _, err := c.writeCaddyfile(herdConfig{Name: "Noff", Port: n, AdminPort: nadmin, Extra: "\t\tstorage off", Peers: []herdPeer{{"M", m}}}); err != nil {
		return nil, err
	}
	if _, err := fill(fillConfig{Addr: localAddr(m), N: clients, Conns: 8, Pipeline: 64, Prefix: "k"}); err != nil {
		return nil, fmt.Errorf("filling M: %w", err)
	}
	err := waitUntil(300*time.Second, 20*time.Millisecond, "N to learn every client", func() (bool, error) {
		return herdClients(nadmin) == int64(clients), nil
	})
	if err != nil {
		return nil, err
	}
	bytesSent := func(admin int) int64 { return adminSum(admin, "/herd/peers", "bytes_sent") }
	var rows [][]string
	for _, changed := range restartChanges {
		for _, config := range []string{"N", "Noff"} {
			// N holds everything M stored, and knows it.
			err := waitUntil(60*time.Second, 20*time.Millisecond, "N to know all M stored", func() (bool, error) {
				return cursorOf(nadmin, "M") == cursorOf(madmin, ""), nil
			})
			if err != nil {
				return nil, err
			}
			c.procs.stop("N")
			filled, err := fill(fillConfig{Addr: localAddr(m), N: changed, Conns: 8, Pipeline: 64, Prefix: "k"})
			if err != nil {
				return nil, fmt.Errorf("updating M: %w", err)
			}
			b0 := bytesSent(madmin)
			t0 := time.Now()
			np, err := c.restartHerd("N", config)
			if err != nil {
				return nil, err
			}
			want, what := int64(changed), "sends what was missed"
			if config == "Noff" {
				want, what = int64(clients), "whole table (N storage off)"
			}
			err = np.waitWhileAlive(300*time.Second, 10*time.Millisecond, "N to apply what it missed", func() (bool, error) {
				return adminSum(nadmin, "/herd/stats", "applied") >= want, nil
			})
			if err != nil {
				return nil, err
			}
			took := time.Since(t0)
			bytes := bytesSent(madmin) - b0 + bytesSent(nadmin)
			changedBytes := float64(changed) * roundTenth(filled.recordBytesPerClient())
			rows = append(rows, []string{strconv.Itoa(changed), what, fixed(took.Seconds(), 3), strconv.FormatInt(bytes, 10),
				fixed(changedBytes, 0), fixed(float64(bytes)/changedBytes, 2)})
			if config == "Noff" {
				// Back to storage on, caught up on everything.
				c.procs.stop("N")
				np, err := c.restartHerd("N", "N")
				if err != nil {
					return nil, err
				}
				if err := waitPort(np, n); err != nil {
					return nil, err
				}
			}
		}
	}
	c.procs.stopAll()
	return rows, nil
}

// cursorOf is how far the server with the admin port knows peer's records,
// or with no peer its own sequence number; "" when it cannot tell.
func cursorOf(admin int, peer string) string {
	st, err := adminObject(admin, "/herd/storage")
	if err != nil {
		return ""
	}
	if peer == "" {
		return field(st, "seq")
	}
	cursors, _ := st["peer_cursors"].(map[string]any)
	cursor, _ := cursors[peer].(map[string]any)
	if cursor == nil {
		return ""
	}
	return field(cursor, "seq")
}

// restartRedisPSYNC stops a Redis replica (its RDB saved, with where it was
// in the primary's stream) and starts it again after the same updates.
func (c *comparison) restartRedisPSYNC() ([][]string, error) {
	base, clients := c.PortBase, c.CatchupClients
	rm, rr := base+2367, base+2368
	if _, err := c.startRedis("RM", rm, "--repl-backlog-size", "256mb"); err != nil {
		return nil, err
	}
	replica := []string{"--replicaof", "127.0.0.1", strconv.Itoa(rm)}
	if _, err := c.startRedis("RR", rr, replica...); err != nil {
		return nil, err
	}
	if _, err := fill(fillConfig{Addr: localAddr(rm), N: clients, Conns: 8, Pipeline: 64, Prefix: "k", Redis: true}); err != nil {
		return nil, fmt.Errorf("filling Redis: %w", err)
	}
	err := waitUntil(300*time.Second, 20*time.Millisecond, "the replica to hold every client", func() (bool, error) {
		return redisDBSize(rr) == int64(clients), nil
	})
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, changed := range restartChanges {
		err := waitUntil(60*time.Second, 20*time.Millisecond, "the replica to catch up", func() (bool, error) {
			ro, err1 := redisInfoInt(rr, "replication", "slave_repl_offset")
			mo, err2 := redisInfoInt(rm, "replication", "master_repl_offset")
			return err1 == nil && err2 == nil && ro == mo, nil
		})
		if err != nil {
			return nil, err
		}
		if err := c.shutdownSave("RR", rr); err != nil {
			return nil, err
		}
		o0, err := redisInfoInt(rm, "replication", "master_repl_offset")
		if err != nil {
			return nil, err
		}
		if _, err := fill(fillConfig{Addr: localAddr(rm), N: changed, Conns: 8, Pipeline: 64, Prefix: "k", Redis: true}); err != nil {
			return nil, fmt.Errorf("updating Redis: %w", err)
		}
		o1, err := redisInfoInt(rm, "replication", "master_repl_offset")
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		rp, err := c.launchRedis("RR", rr, replica...)
		if err != nil {
			return nil, err
		}
		if err := rp.waitWhileAlive(300*time.Second, 5*time.Millisecond, "the replica's port", func() (bool, error) { return portOpen(rr), nil }); err != nil {
			return nil, err
		}
		err = rp.waitWhileAlive(300*time.Second, 10*time.Millisecond, "the replica to resync", func() (bool, error) {
			status, _ := redisInfo(rr, "replication", "master_link_status")
			offset, err := redisInfoInt(rr, "replication", "slave_repl_offset")
			return status == "up" && err == nil && offset >= o1, nil
		})
		if err != nil {
			return nil, err
		}
		took := time.Since(t0)
		kind := "full"
		if logTailContains(c.procs.logPath("RR"), 20, "partial resynchronization") {
			kind = "partial"
		}
		rows = append(rows, []string{strconv.Itoa(changed), "Redis replica PSYNC (" + kind + ")", fixed(took.Seconds(), 3),
			strconv.FormatInt(o1-o0, 10), "-", "-"})
	}
	c.procs.stopAll()
	return rows, nil
}

// shutdownSave stops the Redis on port with SHUTDOWN SAVE, so that it
// keeps its RDB and its place in the primary's stream. Redis refuses the
// SHUTDOWN while a background save or AOF rewrite runs: wait for those to
// end, and retry until it exits.
func (c *comparison) shutdownSave(name string, port int) error {
	p := c.procs.get(name)
	err := waitUntil(60*time.Second, 100*time.Millisecond, name+" to shut down with SHUTDOWN SAVE", func() (bool, error) {
		if p.alive() != nil {
			return true, nil
		}
		rewriting, _ := redisInfo(port, "persistence", "aof_rewrite_in_progress")
		saving, _ := redisInfo(port, "persistence", "rdb_bgsave_in_progress")
		if rewriting == "0" && saving == "0" {
			redisCLI(port, "shutdown", "save")
		}
		select {
		case <-p.done:
			return true, nil
		case <-time.After(2 * time.Second):
			return false, nil
		}
	})
	if err != nil {
		return err
	}
	c.procs.forget(name)
	return nil
}

// redisSaveRDB has the Redis on port write dump.rdb in dir and waits until
// it has. A BGSAVE asked for during an AOF rewrite is only scheduled, so
// the wait is for the file as well as for no save running.
func redisSaveRDB(port int, dir string) error {
	if _, err := redisCLI(port, "bgsave", "schedule"); err != nil {
		return err
	}
	return waitUntil(120*time.Second, 20*time.Millisecond, "Redis to write its RDB", func() (bool, error) {
		saving, err := redisInfo(port, "persistence", "rdb_bgsave_in_progress")
		if err != nil {
			return false, err
		}
		_, statErr := os.Stat(filepath.Join(dir, "dump.rdb"))
		return saving == "0" && statErr == nil, nil
	})
}

// logTailContains says whether the last lines of the log at path mention
// text, in any case.
func logTailContains(path string, lines int, text string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var all []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		all = append(all, s.Text())
	}
	for _, l := range all[max(len(all)-lines, 0):] {
		if strings.Contains(strings.ToLower(l), strings.ToLower(text)) {
			return true
		}
	}
	return false
}
