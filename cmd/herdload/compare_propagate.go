package main

import (
	"fmt"
	"math"
	"time"
)

func (c *comparison) sectionPropagate() error {
	base := c.PortBase
	a, b, cc, f := base+10, base+11, base+12, base+13
	r1, r2, r3, rf := base+110, base+111, base+112, base+113
	// A chain, each server with only its next hop as peer; the last hop is
	// herdload listening as a peer. Until the probes start, a raw server
	// sinks C's floods there, so C's link is up and not backing off.
	if _, err := c.startRaw("sink", f, 0); err != nil {
		return err
	}
	for _, h := range []herdConfig{
		{Name: "C", Port: cc, Peers: []herdPeer{{"F", f}}},
		{Name: "B", Port: b, Peers: []herdPeer{{"C", cc}}},
		{Name: "A", Port: a, Peers: []herdPeer{{"B", b}}},
	} {
		if _, err := c.startHerd(h); err != nil {
			return err
		}
	}
	for _, r := range []struct {
		name          string
		port, forward int
	}{{"relay3", r3, rf}, {"relay2", r2, r3}, {"relay1", r1, r2}} {
		if _, err := c.startRaw(r.name, r.port, r.forward); err != nil {
			return err
		}
	}

	maximum, err := iamatLoad(iamatConfig{Addr: localAddr(a), Conns: 50, Pipeline: 16, Duration: c.duration(), Clients: 100000, Prefix: "max"})
	if err != nil {
		return fmt.Errorf("measuring A's maximum: %w", err)
	}
	rate := math.Round(maximum.opsPerSec() / 2)
	c.procs.stop("sink")

	probe := func(addr, listen int) propagateConfig {
		return propagateConfig{Addr: localAddr(addr), Listen: localAddr(listen), Probes: c.Probes, Gap: time.Millisecond,
			Timeout: 5 * time.Second, Ready: 30 * time.Second, Rate: rate, BgConns: 50, BgClients: 100000,
			Prefix: "probe", BgPrefix: "bg"}
	}
	var herds, raws []propagateResult
	err = collectRounds(c.Rounds, func(int) error {
		h, err := propagate(probe(a, f))
		if err != nil {
			return fmt.Errorf("probing the herd: %w", err)
		}
		r, err := propagate(probe(r1, rf))
		if err != nil {
			return fmt.Errorf("probing the raw relays: %w", err)
		}
		herds, raws = append(herds, h), append(raws, r)
		return nil
	})
	if err != nil {
		return err
	}

	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Propagation: IAMAT at A until a fake peer three hops away (A -> B -> C -> herdload) has the record")
	fmt.Fprintf(w, "# maximum: herdload iamat -addr %s -c 50 -p 16 -d %ds -prefix max\n", localAddr(a), c.Seconds)
	fmt.Fprintf(w, "#   -> %.0f IAMAT/s; background load at half: %.0f/s\n", maximum.opsPerSec(), rate)
	fmt.Fprintf(w, "# herd:     herdload propagate -addr %s -listen %s -n %d -rate %.0f -bg-c 50\n", localAddr(a), localAddr(f), c.Probes, rate)
	fmt.Fprintf(w, "# baseline: herdload propagate -addr %s -listen %s -n %d -rate %.0f -bg-c 50  (three raw relays: herdload raw -peer <next>)\n",
		localAddr(r1), localAddr(rf), c.Probes, rate)
	if c.Rounds > 1 {
		fmt.Fprintf(w, "# %d rounds of herd, raw in turn: medians; herd/raw p99 also as its range over the rounds; lost probes summed\n", c.Rounds)
	}
	tw := newTable(w)
	writeRow(tw, "background sent/answered per s; lost probes herd/raw", "phase", "herd p50/p99/max us", "raw p50/p99/max us", "herd/raw p50 p99")
	for _, phase := range []string{"quiescent", "load"} {
		pick := func(rs []propagateResult) []*propagatePhase {
			out := make([]*propagatePhase, len(rs))
			for i, r := range rs {
				out[i] = r.Quiescent
				if phase == "load" {
					out[i] = r.Load
				}
			}
			return out
		}
		h, r := newPhaseSeries(pick(herds)), newPhaseSeries(pick(raws))
		note := ""
		if phase == "load" {
			note = fmt.Sprintf("herd %s/%s, raw %s/%s; ", number(h.bgSent.median()), number(h.bgAcked.median()),
				number(r.bgSent.median()), number(r.bgAcked.median()))
		}
		note += fmt.Sprintf("lost %s/%s", number(h.lost.sum()), number(r.lost.sum()))
		writeRow(tw, note, phase, h.delays(), r.delays(),
			fixed(h.p50.over(r.p50).median(), 1)+" "+h.p99.over(r.p99).spread())
	}
	return tw.Flush()
}

// phaseSeries is a propagation phase's figures over the rounds, delays in
// microseconds to a tenth and rates per second as whole numbers, as the
// propagate subcommand prints them.
type phaseSeries struct {
	p50, p99, max, lost, bgSent, bgAcked series
}

func newPhaseSeries(phases []*propagatePhase) phaseSeries {
	var s phaseSeries
	for _, ph := range phases {
		s.p50 = append(s.p50, microsValue(ph.Delays.p50))
		s.p99 = append(s.p99, microsValue(ph.Delays.p99))
		s.max = append(s.max, microsValue(ph.Delays.max))
		s.lost = append(s.lost, float64(ph.Lost))
		s.bgSent = append(s.bgSent, math.Round(ph.BgSentPerSec))
		s.bgAcked = append(s.bgAcked, math.Round(ph.BgAckedPerSec))
	}
	return s
}

// delays is "p50 / p99 / max", each the median over the rounds.
func (s phaseSeries) delays() string {
	return number(s.p50.median()) + " / " + number(s.p99.median()) + " / " + number(s.max.median())
}
