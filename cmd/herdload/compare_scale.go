package main

import (
	"fmt"
	"strconv"
	"time"
)

// scaleStar is the scale section's star of three: A, with its admin API,
// floods to B and C.
type scaleStar struct {
	a, b, c, admin int
}

func (c *comparison) startScaleStar(s scaleStar) error {
	for _, h := range []herdConfig{
		{Name: "B", Port: s.b, Peers: []herdPeer{{"A", s.a}}},
		{Name: "C", Port: s.c, Peers: []herdPeer{{"A", s.a}}},
		{Name: "A", Port: s.a, AdminPort: s.admin, Peers: []herdPeer{{"B", s.b}, {"C", s.c}}},
	} {
		if _, err := c.startHerd(h); err != nil {
			return err
		}
	}
	return nil
}

// waitFlooded waits until A has sent its peers everything it queued.
func (s scaleStar) waitFlooded() error {
	return waitUntil(300*time.Second, 20*time.Millisecond, "A to flood its peers", func() (bool, error) {
		return adminSum(s.admin, "/herd/peers", "pending") == 0, nil
	})
}

// fillTable has the server at port hold n clients s-0 .. s-(n-1), and waits
// until A has flooded them to both peers.
func (s scaleStar) fillTable(port, n int) error {
	if _, err := fill(fillConfig{Addr: localAddr(port), N: n, Conns: 8, Pipeline: 64, Prefix: "s"}); err != nil {
		return fmt.Errorf("filling %s: %w", localAddr(port), err)
	}
	return s.waitFlooded()
}

// measureA runs IAMATs at A and returns them with the records A sent per
// peer per IAMAT answered: below 1 when a link's queue replaced records of
// the same client before sending them.
func (s scaleStar) measureA(load iamatConfig) (result, float64, error) {
	sent0 := adminSum(s.admin, "/herd/peers", "records_sent")
	load.Addr = localAddr(s.a)
	res, err := iamatLoad(load)
	if err != nil {
		return result{}, 0, fmt.Errorf("loading A: %w", err)
	}
	if err := s.waitFlooded(); err != nil {
		return result{}, 0, err
	}
	sent := adminSum(s.admin, "/herd/peers", "records_sent") - sent0
	floods := float64(sent) / 2 / float64(res.total)
	return res, roundTo(floods, 2), nil
}

func roundTo(v float64, decimals int) float64 {
	v, _ = strconv.ParseFloat(fixed(v, decimals), 64)
	return v
}

const scalePipeline = 16

func (c *comparison) sectionScale() error {
	base := c.PortBase
	star := scaleStar{a: base + 50, b: base + 51, c: base + 52, admin: base + 1050}
	if err := c.scaleConnections(star, base+150); err != nil {
		return err
	}
	c.procs.stopAll()
	return c.scaleTable(star, base+53, base+1053, base+2395)
}

// scaleConnections measures IAMAT at A and at a raw server as the
// connections grow.
func (c *comparison) scaleConnections(star scaleStar, raw int) error {
	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## IAMAT throughput as connections grow (A floods to two live peers; table of 100000 clients); vs 10 connections, and vs raw")
	fmt.Fprintf(w, "# herdload iamat -addr <server> -c C -p %d -d %ds -clients 100000 -prefix s\n", scalePipeline, c.Seconds)
	if err := c.startScaleStar(star); err != nil {
		return err
	}
	if _, err := c.startRaw("raw", raw, 0); err != nil {
		return err
	}
	if err := star.fillTable(star.a, 100000); err != nil {
		return err
	}
	if note := roundsNote(c.Rounds, "herd and raw"); note != "" {
		fmt.Fprintln(w, note)
	}
	tw := newTable(w)
	writeRow(tw, "herd p50/p99 us", "C", "herd/s", fmt.Sprintf("herd/herd@%d", c.ScaleConns[0]), "raw/s", "herd/raw", "floods/IAMAT")
	first := 0.0
	for _, n := range c.ScaleConns {
		var herd, raws, floods, p50, p99 series
		err := collectRounds(c.Rounds, func(int) error {
			load := iamatConfig{Conns: n, Pipeline: scalePipeline, Duration: c.duration(), Clients: 100000, Prefix: "s"}
			h, f, err := star.measureA(load)
			if err != nil {
				return err
			}
			load.Addr = localAddr(raw)
			r, err := iamatLoad(load)
			if err != nil {
				return fmt.Errorf("loading raw: %w", err)
			}
			hp50, hp99 := h.latency()
			herd, raws, floods = append(herd, h.opsPerSec()), append(raws, r.opsPerSec()), append(floods, f)
			p50, p99 = append(p50, hp50), append(p99, hp99)
			return nil
		})
		if err != nil {
			return err
		}
		if first == 0 {
			first = herd.median()
		}
		writeRow(tw, number(p50.median())+" / "+number(p99.median()), strconv.Itoa(n), fixed(herd.median(), 0),
			herd.overValue(first).spread(), fixed(raws.median(), 0), herd.over(raws).spread(), number(floods.median()))
	}
	return tw.Flush()
}

// scaleTable measures IAMAT at A, at a standalone server and at Redis + 2
// replicas as the table grows.
func (c *comparison) scaleTable(star scaleStar, solo, soloAdmin, r0 int) error {
	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## IAMAT throughput as the table grows (table filled first); vs the smallest table")
	fmt.Fprintln(w, "# A floods to two live peers; a standalone server (no peers) alongside shows the table's own cost;")
	fmt.Fprintln(w, "# Redis + 2 replicas updating N keys (SET of an AT line: a hash table, like the herd's) shows what the")
	fmt.Fprintln(w, "# machine's caches alone cost as N grows")
	fmt.Fprintln(w, "# herdload fill -addr <server> -n N -c 8 -p 64 -prefix s, four times (the later three update every client);")
	fmt.Fprintf(w, "# herdload iamat -addr <server> -c 50 -p %d -d %ds -clients N -prefix s\n", scalePipeline, c.Seconds)
	fmt.Fprintf(w, "# redis-benchmark -c 8 -P 64 -n 3N -r N SET s-__rand_int__ <line> (fill); redis-benchmark -c 50 -P %d -r N SET s-__rand_int__ <line>\n", scalePipeline)
	if err := c.startScaleStar(star); err != nil {
		return err
	}
	if _, err := c.startHerd(herdConfig{Name: "S", Port: solo, AdminPort: soloAdmin}); err != nil {
		return err
	}
	if err := c.startRedisReplicated("redis", r0); err != nil {
		return err
	}
	const line = "AT A +0.000000001 s-000000000000 +34.068930-118.445127 1795633160.000000000"
	smallest := c.ScaleSizes[0]
	if note := roundsNote(c.Rounds, "herd, standalone and Redis"); note != "" {
		fmt.Fprintln(w, note)
	}
	tw := newTable(w)
	writeRow(tw, "herd p50/p99 us", "clients", "herd/s", fmt.Sprintf("herd/herd@%d", smallest), "floods/IAMAT", "standalone/s",
		fmt.Sprintf("solo/solo@%d", smallest), "redis/s", fmt.Sprintf("redis/redis@%d", smallest), "held")
	var first, soloFirst, redisFirst float64
	for _, n := range c.ScaleSizes {
		// Four times: the later passes update every client three times. A
		// server just filled grows its heap towards its steady size (about
		// twice the table) over the next updates, with a page fault for
		// each fresh page (at 1M clients 0.014-0.018 per record at a peer,
		// against 0.0001-0.0009 once three passes are done); one that has
		// been running reuses its pages. Redis's fill overwrites every key
		// about three times too.
		for range 4 {
			if err := star.fillTable(star.a, n); err != nil {
				return err
			}
			if err := star.fillTable(solo, n); err != nil {
				return err
			}
		}
		nn := strconv.Itoa(n)
		if _, err := redisBenchmark(r0, "-c", "8", "-P", "64", "-n", strconv.Itoa(3*n), "-r", nn, "SET", "s-__rand_int__", line); err != nil {
			return fmt.Errorf("filling Redis: %w", err)
		}
		var herd, solos, redis, floods, p50, p99 series
		err := collectRounds(c.Rounds, func(int) error {
			load := iamatConfig{Conns: 50, Pipeline: scalePipeline, Duration: c.duration(), Clients: n, Prefix: "s"}
			h, f, err := star.measureA(load)
			if err != nil {
				return err
			}
			load.Addr = localAddr(solo)
			s, err := iamatLoad(load)
			if err != nil {
				return fmt.Errorf("loading the standalone server: %w", err)
			}
			r, err := redisBenchmark(r0, "-c", "50", "-P", strconv.Itoa(scalePipeline), "-n", "2000000", "-r", nn, "SET", "s-__rand_int__", line)
			if err != nil {
				return err
			}
			hp50, hp99 := h.latency()
			herd, solos, redis, floods = append(herd, h.opsPerSec()), append(solos, s.opsPerSec()), append(redis, r), append(floods, f)
			p50, p99 = append(p50, hp50), append(p99, hp99)
			return nil
		})
		if err != nil {
			return err
		}
		if first == 0 {
			first, soloFirst, redisFirst = herd.median(), solos.median(), redis.median()
		}
		writeRow(tw, number(p50.median())+" / "+number(p99.median()), nn,
			fixed(herd.median(), 0), herd.overValue(first).spread(), number(floods.median()),
			fixed(solos.median(), 0), solos.overValue(soloFirst).spread(),
			fixed(redis.median(), 0), redis.overValue(redisFirst).spread(),
			fmt.Sprintf("%d/%d", herdClients(star.admin), herdClients(soloAdmin)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "# floods/IAMAT: records A sent per peer per IAMAT; below 1 when a link's queue overflowed and it resent the table instead")
	fmt.Fprintf(w, "# redis keys held at the largest size: %d\n", redisDBSize(r0))
	return nil
}
