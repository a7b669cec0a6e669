package main

import (
	"fmt"
	"strconv"
)

func (c *comparison) sectionIAMAT() error {
	a, b, cc, raw, r0 := c.PortBase, c.PortBase+1, c.PortBase+2, c.PortBase+100, c.PortBase+2379
	for _, h := range []herdConfig{
		{Name: "B", Port: b, Peers: []herdPeer{{"A", a}}},
		{Name: "C", Port: cc, Peers: []herdPeer{{"A", a}}},
		{Name: "A", Port: a, Peers: []herdPeer{{"B", b}, {"C", cc}}},
	} {
		if _, err := c.startHerd(h); err != nil {
			return err
		}
	}
	if _, err := c.startRaw("raw", raw, 0); err != nil {
		return err
	}
	if err := c.startRedisReplicated("redis", r0); err != nil {
		return err
	}

	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## IAMAT throughput: herd (A floods to two live peers) vs raw line server vs Redis + 2 replicas (GEOADD, SET)")
	fmt.Fprintf(w, "# herdload iamat -addr <server> -c C -p P -d %ds -prefix h\n", c.Seconds)
	fmt.Fprintln(w, "# redis-benchmark -c C -P P -r 100000 GEOADD herd -118.445127 34.068930 client-__rand_int__")
	fmt.Fprintf(w, "# redis-benchmark -c C -P P -r 100000 SET client-__rand_int__ %q\n", redisLine)
	fmt.Fprintln(w, "# all update a keyspace of 100000 clients (herdload's default -clients), the same one in every run; every")
	fmt.Fprintln(w, "# IAMAT changes its client's record (a later client time), which A floods. A GEOADD that leaves a member where")
	fmt.Fprintln(w, "# it is changes nothing and Redis replicates nothing for it: once every member exists, GEOADD measures a")
	fmt.Fprintln(w, "# store that answers without replicating. Every SET is replicated. repl B/op: bytes the Redis primary sent")
	fmt.Fprintln(w, "# each replica per request (master_repl_offset), median over the rounds")
	if note := roundsNote(c.Rounds, "herd, raw, Redis GEOADD, Redis SET"); note != "" {
		fmt.Fprintln(w, note)
	}
	tw := newTable(w)
	writeRow(tw, "herd p50/p99 us", "C", "P", "herd/s", "raw/s", "geoadd/s", "set/s", "herd/raw", "herd/geoadd", "herd/set", "repl B/op")
	for _, conns := range []int{1, 10, 50, 1000} {
		for _, pipe := range []int{1, 16} {
			var herd, rawRates, geo, set, geoRepl, setRepl, p50, p99 series
			err := collectRounds(c.Rounds, func(int) error {
				load := iamatConfig{Conns: conns, Pipeline: pipe, Duration: c.duration(), Clients: 100000, Prefix: "h"}
				load.Addr = localAddr(a)
				h, err := iamatLoad(load)
				if err != nil {
					return fmt.Errorf("loading A: %w", err)
				}
				load.Addr, load.Prefix = localAddr(raw), "load"
				r, err := iamatLoad(load)
				if err != nil {
					return fmt.Errorf("loading raw: %w", err)
				}
				n := redisRequestCount(conns, pipe)
				g, err := redisRequests(r0, conns, pipe, n, "GEOADD", "herd", "-118.445127", "34.068930", "client-__rand_int__")
				if err != nil {
					return err
				}
				s, err := redisRequests(r0, conns, pipe, n, "SET", "client-__rand_int__", redisLine)
				if err != nil {
					return err
				}
				herd = append(herd, h.opsPerSec())
				rawRates = append(rawRates, r.opsPerSec())
				geo, set = append(geo, g.opsPerSec), append(set, s.opsPerSec)
				geoRepl, setRepl = append(geoRepl, g.replBytesPerOp), append(setRepl, s.replBytesPerOp)
				hp50, hp99 := h.latency()
				p50, p99 = append(p50, hp50), append(p99, hp99)
				return nil
			})
			if err != nil {
				return err
			}
			writeRow(tw, number(p50.median())+" / "+number(p99.median()),
				strconv.Itoa(conns), strconv.Itoa(pipe),
				fixed(herd.median(), 0), fixed(rawRates.median(), 0), fixed(geo.median(), 0), fixed(set.median(), 0),
				herd.over(rawRates).spread(), herd.over(geo).spread(), herd.over(set).spread(),
				number(geoRepl.median())+" / "+number(setRepl.median()))
		}
	}
	return tw.Flush()
}
