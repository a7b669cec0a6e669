package main

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

func (c *comparison) sectionMemory() error {
	port, admin, rport := c.PortBase+20, c.PortBase+1020, c.PortBase+2390
	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Memory per stored client: a standalone herd server vs Redis storing the same records (SET <client> \"AT ...\")")
	fmt.Fprintln(w, "# herdload fill -addr <server> -n N -c 8 -p 64 [-redis]; a fresh server per N; RSS from /proc/<pid>/status;")
	fmt.Fprintln(w, "# heap from Caddy's /debug/vars after a forced GC (/debug/pprof/heap?gc=1): Go's heap, which does not hold the")
	fmt.Fprintln(w, "# records (they live in mapped memory that RSS counts); Redis: used_memory;")
	fmt.Fprintln(w, "# updated: RSS once every client has been updated three more times (the same fill again), with no forced GC")
	tw := newTable(w)
	writeRow(tw, "", "clients", "herd RSS", "updated", "heap use", "heap live", "record",
		"redis RSS", "updated", "redis mem", "herd/redis", "RSS/record", "fill s")
	for _, n := range c.MemorySizes {
		herd, err := c.herdMemory(n, port, admin)
		if err != nil {
			return err
		}
		redis, err := c.redisMemory(n, rport)
		if err != nil {
			return err
		}
		perClient := func(after, before int64) float64 { return math.Round(float64(after-before) / float64(n)) }
		rss, rrss := perClient(herd.rss1, herd.rss0), perClient(redis.rss1, redis.rss0)
		rec := roundTenth(herd.fill.recordBytesPerClient())
		writeRow(tw, "", strconv.Itoa(n), fixed(rss, 0), fixed(perClient(herd.rss2, herd.rss0), 0),
			fixed(perClient(herd.inuse1, herd.inuse0), 0), fixed(perClient(herd.alloc1, herd.alloc0), 0), fixed(rec, 1),
			fixed(rrss, 0), fixed(perClient(redis.rss2, redis.rss0), 0), fixed(perClient(redis.mem1, redis.mem0), 0),
			fixed(ratio(rss, rrss), 2), fixed(ratio(rss, rec), 2), fixed(herd.fill.elapsed.Seconds(), 2))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "# bytes per client; herd/redis = RSS growth ratio; RSS/record = RSS growth per client over the AT line's own size")
	return nil
}

// herdMemoryUse is a herd server's memory before a fill (0), after it (1),
// and after three more (2).
type herdMemoryUse struct {
	rss0, rss1, rss2 int64
	inuse0, inuse1   int64
	alloc0, alloc1   int64
	fill             fillResult
}

// herdMemory fills a fresh standalone herd server with n clients, then
// updates every one three more times, measuring its memory on the way.
func (c *comparison) herdMemory(n, port, admin int) (herdMemoryUse, error) {
	var m herdMemoryUse
	p, err := c.startHerd(herdConfig{Name: "M", Port: port, AdminPort: admin})
	if err != nil {
		return m, err
	}
	defer c.procs.stop("M")
	// heap reads Go's heap after a collection (a heap profile with gc=1
	// makes a Caddy collect its garbage).
	heap := func() (inuse, alloc int64, err error) {
		resp, err := adminClient.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", admin))
		if err != nil {
			return 0, 0, fmt.Errorf("collecting M's garbage: %w", err)
		}
		resp.Body.Close()
		vars := "/debug/vars"
		return adminSum(admin, vars, "HeapInuse"), adminSum(admin, vars, "HeapAlloc"), nil
	}
	if m.inuse0, m.alloc0, err = heap(); err != nil {
		return m, err
	}
	if m.rss0, err = rssBytes(p.pid()); err != nil {
		return m, err
	}
	fillM := fillConfig{Addr: localAddr(port), N: n, Conns: 8, Pipeline: 64, Prefix: "m"}
	if m.fill, err = fill(fillM); err != nil {
		return m, fmt.Errorf("filling M: %w", err)
	}
	if m.inuse1, m.alloc1, err = heap(); err != nil {
		return m, err
	}
	if m.rss1, err = rssBytes(p.pid()); err != nil {
		return m, err
	}
	if held := herdClients(admin); held != int64(n) {
		return m, fmt.Errorf("the server holds %d clients, not %d", held, n)
	}
	for range 3 {
		if _, err := fill(fillM); err != nil {
			return m, fmt.Errorf("updating M: %w", err)
		}
	}
	m.rss2, err = rssBytes(p.pid())
	return m, err
}

// redisMemoryUse is Redis's memory before a fill (0), after it (1), and
// after three more (2).
type redisMemoryUse struct {
	rss0, rss1, rss2 int64
	mem0, mem1       int64
}

// redisMemory fills a fresh Redis with the records of n clients, then
// overwrites every one three more times, measuring its memory on the way.
func (c *comparison) redisMemory(n, port int) (redisMemoryUse, error) {
	var m redisMemoryUse
	p, err := c.startRedis("R", port)
	if err != nil {
		return m, err
	}
	defer c.procs.stop("R")
	if m.rss0, err = rssBytes(p.pid()); err != nil {
		return m, err
	}
	if m.mem0, err = redisInfoInt(port, "memory", "used_memory"); err != nil {
		return m, err
	}
	fillR := fillConfig{Addr: localAddr(port), N: n, Conns: 8, Pipeline: 64, Prefix: "m", Redis: true}
	if _, err := fill(fillR); err != nil {
		return m, fmt.Errorf("filling Redis: %w", err)
	}
	if m.rss1, err = rssBytes(p.pid()); err != nil {
		return m, err
	}
	if m.mem1, err = redisInfoInt(port, "memory", "used_memory"); err != nil {
		return m, err
	}
	if keys := redisDBSize(port); keys != int64(n) {
		return m, fmt.Errorf("Redis holds %d keys, not %d", keys, n)
	}
	for range 3 {
		if _, err := fill(fillR); err != nil {
			return m, fmt.Errorf("updating Redis: %w", err)
		}
	}
	m.rss2, err = rssBytes(p.pid())
	return m, err
}

// rssBytes is a process's resident set size.
func rssBytes(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the RSS of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kib * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}
