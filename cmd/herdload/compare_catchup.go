package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

func (c *comparison) sectionCatchup() error {
	base, clients := c.PortBase, c.CatchupClients
	m, n, madmin, nadmin := base+30, base+31, base+1030, base+1031
	rm, rr := base+2392, base+2393
	// N keeps its table in memory only: it relearns all of it.
	if _, err := c.startHerd(herdConfig{Name: "N", Port: n, AdminPort: nadmin, Extra: "\t\tstorage off"}); err != nil {
		return err
	}
	if _, err := c.startHerd(herdConfig{Name: "M", Port: m, AdminPort: madmin, Peers: []herdPeer{{"N", n}}}); err != nil {
		return err
	}
	filled, err := fill(fillConfig{Addr: localAddr(m), N: clients, Conns: 8, Pipeline: 64, Prefix: "k"})
	if err != nil {
		return fmt.Errorf("filling M: %w", err)
	}
	err = waitUntil(300*time.Second, 20*time.Millisecond, "N to learn every client", func() (bool, error) {
		return herdClients(nadmin) == int64(clients), nil
	})
	if err != nil {
		return err
	}
	peers := func(key string) int64 { return adminSum(madmin, "/herd/peers", key) }
	bytes0, records0, connects0 := peers("bytes_sent"), peers("records_sent"), peers("connects")

	c.procs.kill("N")
	t0 := time.Now()
	np, err := c.restartHerd("N", "N")
	if err != nil {
		return err
	}
	// The port opens before the link can come up, and the link before the
	// table can fill: wait for each in turn, so each poll is one check.
	if err := np.waitWhileAlive(300*time.Second, 10*time.Millisecond, "N's port", func() (bool, error) { return portOpen(n), nil }); err != nil {
		return err
	}
	tPort := time.Since(t0)
	if err := np.waitWhileAlive(300*time.Second, 10*time.Millisecond, "M's link to N", func() (bool, error) { return peers("connects") > connects0, nil }); err != nil {
		return err
	}
	tLink := time.Since(t0)
	if err := np.waitWhileAlive(300*time.Second-tLink, 20*time.Millisecond, fmt.Sprintf("N to relearn %d clients", clients), func() (bool, error) {
		return herdClients(nadmin) >= int64(clients), nil
	}); err != nil {
		return err
	}
	tDone := time.Since(t0)
	bytes, records := peers("bytes_sent")-bytes0, peers("records_sent")-records0
	c.procs.stopAll()

	// Redis: a replica killed and restarted at once resyncs in full. The
	// master streams its snapshot at once (diskless, no delay) and the
	// replica loads it from the socket, so neither waits on a disk.
	if _, err := c.startRedis("RM", rm, "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"); err != nil {
		return err
	}
	replica := []string{"--replicaof", "127.0.0.1", strconv.Itoa(rm), "--repl-diskless-load", "on-empty-db"}
	if _, err := c.startRedis("RR", rr, replica...); err != nil {
		return err
	}
	if _, err := fill(fillConfig{Addr: localAddr(rm), N: clients, Conns: 8, Pipeline: 64, Prefix: "k", Redis: true}); err != nil {
		return fmt.Errorf("filling Redis: %w", err)
	}
	err = waitUntil(300*time.Second, 20*time.Millisecond, "the Redis replica to hold every client", func() (bool, error) {
		return redisDBSize(rr) == int64(clients), nil
	})
	if err != nil {
		return err
	}
	c.procs.kill("RR")
	r0 := time.Now()
	rp, err := c.launchRedis("RR", rr, replica...)
	if err != nil {
		return err
	}
	if err := rp.waitWhileAlive(300*time.Second, 10*time.Millisecond, "the Redis replica's port", func() (bool, error) { return portOpen(rr), nil }); err != nil {
		return err
	}
	rPort := time.Since(r0)
	if err := rp.waitWhileAlive(300*time.Second-rPort, 20*time.Millisecond, "the Redis replica to resync", func() (bool, error) {
		status, _ := redisInfo(rr, "replication", "master_link_status")
		return redisDBSize(rr) == int64(clients) && status == "up", nil
	}); err != nil {
		return err
	}
	rDone := time.Since(r0)
	rbytes, err := readChars(rp.pid())
	if err != nil {
		return err
	}
	c.procs.stopAll()

	tableBytes := math.Round(roundTenth(filled.recordBytesPerClient()) * float64(clients))
	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintf(w, "## Catch-up: N (storage off) killed (-9) and restarted at once with an empty table relearns %d clients from its peer M\n", clients)
	fmt.Fprintf(w, "# herdload fill -addr M -n %d -c 8 -p 64 (N learns them live); kill -9 N; start N; poll N's /herd/stats every 20 ms\n", clients)
	fmt.Fprintf(w, "# baseline: a Redis replica (diskless sync, no delay) killed and restarted, until dbsize = %d and the link is up\n", clients)
	secs := func(d time.Duration) string { return fixed(d.Seconds(), 3) }
	tw := newTable(w)
	writeRow(tw, "", "from restart:", "port open s", "link up s", "all known s", "open->known s", "bytes", "records")
	writeRow(tw, "", "herd N from M", secs(tPort), secs(tLink), secs(tDone), secs(tDone-tPort), strconv.FormatInt(bytes, 10), strconv.FormatInt(records, 10))
	writeRow(tw, "", "Redis replica full resync", secs(rPort), "-", secs(rDone), secs(rDone-rPort), strconv.FormatInt(rbytes, 10), "-")
	writeRow(tw, "", "the table (AT lines)", "", "", "", "", fixed(tableBytes, 0), strconv.Itoa(clients))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "# herd/Redis time from restart: %s; from the port open: %s\n",
		fixed(ratio(tDone.Seconds(), rDone.Seconds()), 2), fixed(ratio((tDone-tPort).Seconds(), (rDone-rPort).Seconds()), 2))
	fmt.Fprintf(w, "# herd bytes / table bytes: %s; herd/Redis bytes: %s (Redis: the replica's rchar, its whole input)\n",
		fixed(ratio(float64(bytes), tableBytes), 2), fixed(ratio(float64(bytes), float64(rbytes)), 2))
	return nil
}

// roundTenth rounds v to a tenth, as the fill subcommand prints a record's
// size.
func roundTenth(v float64) float64 { return math.Round(v*10) / 10 }

// readChars is the bytes a process has read (rchar in /proc/<pid>/io): a
// replica's whole input.
func readChars(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the input of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no rchar for %d", pid)
}
