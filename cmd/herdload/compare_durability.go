package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// durabilityLevels are the storage settings of the durability section's
// stars.
var durabilityLevels = []string{"off", "everysec", "always"}

func (c *comparison) sectionDurability() error {
	aPort, aAdmin := map[string]int{}, map[string]int{}
	// A star of three per level, each server storing (or not) as the level says.
	for i, level := range durabilityLevels {
		a, b, cc, admin := c.PortBase+50+3*i, c.PortBase+51+3*i, c.PortBase+52+3*i, c.PortBase+1050+i
		extra := "\t\tfsync " + level
		if level == "off" {
			extra = "\t\tstorage off"
		}
		for _, h := range []herdConfig{
			{Name: "B" + level, Port: b, Extra: extra, Peers: []herdPeer{{"A", a}}},
			{Name: "C" + level, Port: cc, Extra: extra, Peers: []herdPeer{{"A", a}}},
			{Name: "A" + level, Port: a, AdminPort: admin, Extra: extra, Peers: []herdPeer{{"B", b}, {"C", cc}}},
		} {
			if _, err := c.startHerd(h); err != nil {
				return err
			}
		}
		aPort[level], aAdmin[level] = a, admin
	}
	redisPort := map[string]int{"everysec": c.PortBase + 2360, "always": c.PortBase + 2363}
	for _, fsync := range []string{"everysec", "always"} {
		if err := c.startRedisReplicated("redis"+fsync, redisPort[fsync], "--appendonly", "yes", "--appendfsync", fsync); err != nil {
			return err
		}
	}

	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## IAMAT throughput by durability: a star of three (A floods to two live peers, every server stores) vs Redis")
	fmt.Fprintln(w, "## + 2 replicas with an AOF on each (appendfsync everysec, always)")
	fmt.Fprintf(w, "# herdload iamat -addr A -c 50 -p P -d %ds -prefix h   (A, B, C with storage off / fsync everysec / fsync always)\n", c.Seconds)
	fmt.Fprintf(w, "# redis-benchmark -c 50 -P P -r 100000 SET client-__rand_int__ %q   (every server: --appendonly yes --appendfsync F)\n", redisLine)
	fmt.Fprintf(w, "# data directories and AOFs on %s\n", filesystemOf(c.work))
	if note := roundsNote(c.Rounds, "the three herds and both Redis"); note != "" {
		fmt.Fprintln(w, note)
	}
	tw := newTable(w)
	writeRow(tw, "p99 us off/everysec/always", "P", "off/s", "everysec/s", "always/s", "redis-es/s", "redis-al/s",
		"everysec/off", "always/off", "everysec/redis", "always/redis")
	for _, pipe := range []int{1, 16} {
		rates, p99 := map[string]series{}, map[string]series{}
		var redisEverysec, redisAlways series
		err := collectRounds(c.Rounds, func(int) error {
			for _, level := range durabilityLevels {
				res, err := iamatLoad(iamatConfig{Addr: localAddr(aPort[level]), Conns: 50, Pipeline: pipe,
					Duration: c.duration(), Clients: 100000, Prefix: "h"})
				if err != nil {
					return fmt.Errorf("loading A%s: %w", level, err)
				}
				rates[level] = append(rates[level], res.opsPerSec())
				_, p := res.latency()
				p99[level] = append(p99[level], p)
			}
			n := max(50*pipe*2000, 200000)
			re, err := redisRequests(redisPort["everysec"], 50, pipe, n, "SET", "client-__rand_int__", redisLine)
			if err != nil {
				return err
			}
			ra, err := redisRequests(redisPort["always"], 50, pipe, n/4, "SET", "client-__rand_int__", redisLine)
			if err != nil {
				return err
			}
			redisEverysec, redisAlways = append(redisEverysec, re.opsPerSec), append(redisAlways, ra.opsPerSec)
			return nil
		})
		if err != nil {
			return err
		}
		writeRow(tw, number(p99["off"].median())+" / "+number(p99["everysec"].median())+" / "+number(p99["always"].median()),
			strconv.Itoa(pipe), fixed(rates["off"].median(), 0), fixed(rates["everysec"].median(), 0), fixed(rates["always"].median(), 0),
			fixed(redisEverysec.median(), 0), fixed(redisAlways.median(), 0),
			rates["everysec"].over(rates["off"]).spread(), rates["always"].over(rates["off"]).spread(),
			rates["everysec"].over(redisEverysec).spread(), rates["always"].over(redisAlways).spread())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	st, err := adminObject(aAdmin["always"], "/herd/storage")
	if err != nil {
		return fmt.Errorf("reading A's storage: %w", err)
	}
	fmt.Fprintf(w, "# A with fsync always: %s fsyncs for %s records on disk\n", field(st, "fsyncs"), field(st, "records"))
	return c.snapshotDuringLoad(aPort["everysec"], aAdmin["everysec"])
}

// snapshotDuringLoad measures IAMAT at a server holding CatchupClients
// clients, quiet and while a snapshot of them is written.
func (c *comparison) snapshotDuringLoad(port, admin int) error {
	clients := c.CatchupClients
	if _, err := fill(fillConfig{Addr: localAddr(port), N: clients, Conns: 8, Pipeline: 64, Prefix: "snap"}); err != nil {
		return fmt.Errorf("filling A: %w", err)
	}
	load := iamatConfig{Addr: localAddr(port), Conns: 50, Pipeline: 1, Duration: c.duration(), Clients: clients, Prefix: "snap"}
	quiet, err := iamatLoad(load)
	if err != nil {
		return fmt.Errorf("loading A: %w", err)
	}
	type snapshotted struct {
		info map[string]any
		err  error
	}
	done := make(chan snapshotted, 1)
	go func() {
		time.Sleep(time.Second)
		// It answers with the storage's figures, the snapshot's among them.
		info, err := adminPost(admin, "/herd/storage/snapshot")
		done <- snapshotted{info: info, err: err}
	}()
	during, err := iamatLoad(load)
	snap := <-done
	if err != nil {
		return fmt.Errorf("loading A during the snapshot: %w", err)
	}
	if snap.err != nil {
		return fmt.Errorf("snapshotting A: %w", snap.err)
	}

	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintf(w, "## IAMAT while a snapshot of %d clients is written (A of the everysec star, C=50 P=1)\n", clients)
	fmt.Fprintf(w, "# herdload iamat -addr A -c 50 -p 1 -d %ds -clients %d -prefix snap; then the same with\n", c.Seconds, clients)
	fmt.Fprintln(w, "# POST /herd/storage/snapshot 1 s into the run")
	tw := newTable(w)
	writeRow(tw, "", "run", "IAMAT/s", "p50_us", "p99_us")
	for _, r := range []struct {
		label string
		res   result
	}{{"no snapshot", quiet}, {"during snapshot", during}} {
		p50, p99 := r.res.latency()
		writeRow(tw, "", r.label, fixed(r.res.opsPerSec(), 0), fixed(p50, 1), fixed(p99, 1))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "# the snapshot: %s records, %s bytes, %s s\n",
		field(snap.info, "last_snapshot_records"), field(snap.info, "last_snapshot_bytes"), field(snap.info, "last_snapshot_seconds"))
	return nil
}

// filesystemOf is the device and type of the file system holding dir.
func filesystemOf(dir string) string {
	out, err := exec.Command("df", "--output=source,fstype", dir).Output()
	if err != nil {
		return "an unknown file system"
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
