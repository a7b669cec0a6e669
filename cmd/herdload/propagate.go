package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"time"
)

func runPropagate(args []string) error {
	fs := flag.NewFlagSet("propagate", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:12000", "the server that takes the IAMATs")
	listen := fs.String("listen", "127.0.0.1:15000", "where to listen as the last server's peer")
	n := fs.Int("n", 1000, "probes per phase")
	gap := fs.Duration("gap", time.Millisecond, "pause between a probe's arrival and the next probe")
	timeout := fs.Duration("timeout", 5*time.Second, "a probe not arrived by then is lost")
	ready := fs.Duration("ready", 30*time.Second, "how long to wait for the first probe to get through (links coming up)")
	rate := fs.Float64("rate", 0, "then measure again under a background load of this many IAMATs per second (0: quiescent only)")
	bgConns := fs.Int("bg-c", 50, "connections of the background load")
	bgClients := fs.Int("bg-clients", 100000, "distinct client IDs of the background load")
	prefix := fs.String("prefix", "probe", "probe client ID prefix; a run adds its own start time, so records of earlier runs never match")
	bgPrefix := fs.String("bg-prefix", "bg", "background client ID prefix (must not start with the probe prefix)")
	fs.Parse(args)

	cfg := propagateConfig{Addr: *addr, Listen: *listen, Probes: *n, Gap: *gap, Timeout: *timeout, Ready: *ready,
		Rate: *rate, BgConns: *bgConns, BgClients: *bgClients, Prefix: *prefix, BgPrefix: *bgPrefix}
	res, err := propagate(cfg)
	if err != nil {
		return err
	}
	res.Quiescent.report(fmt.Sprintf("phase=quiescent addr=%s", cfg.Addr))
	if res.Load != nil {
		res.Load.report(fmt.Sprintf("phase=load addr=%s rate=%.0f bg_sent_per_sec=%.0f bg_acked_per_sec=%.0f",
			cfg.Addr, cfg.Rate, res.Load.BgSentPerSec, res.Load.BgAckedPerSec))
	}
	return nil
}

// propagateConfig is one propagation run: Probes IAMATs at Addr, each timed
// until a peer listening on Listen has its record, quiescent and, with a
// Rate, again under an open-loop background load of Rate IAMATs per second.
type propagateConfig struct {
	Addr      string
	Listen    string
	Probes    int
	Gap       time.Duration // between a probe's arrival and the next
	Timeout   time.Duration // a probe not arrived by then is lost
	Ready     time.Duration // for the first probe to get through
	Rate      float64
	BgConns   int
	BgClients int
	Prefix    string
	BgPrefix  string
}

// propagateResult is what the phases of a propagation run measured; Load
// is nil without a background rate.
type propagateResult struct {
	Quiescent *propagatePhase
	Load      *propagatePhase
}

// propagatePhase is one phase's arrival delays, and what the peer saw by
// its end.
type propagatePhase struct {
	Delays                      summary
	Lost                        int
	Links, Records, Invalid     int64
	BgSentPerSec, BgAckedPerSec float64 // the background load's rates
}

func (ph *propagatePhase) report(lead string) {
	s := ph.Delays
	fmt.Printf("%s n=%d lost=%d p50_us=%s p99_us=%s max_us=%s links=%d records=%d invalid=%d\n",
		lead, s.n, ph.Lost, micros(s.p50), micros(s.p99), micros(s.max), ph.Links, ph.Records, ph.Invalid)
}

// propagate runs the phases cfg asks for.
func propagate(cfg propagateConfig) (propagateResult, error) {
	probePrefix := cfg.Prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	peer, err := listenAsPeer(cfg.Listen, probePrefix)
	if err != nil {
		return propagateResult{}, err
	}
	defer peer.Close()
	pr, err := newProber(cfg.Addr, peer, probePrefix)
	if err != nil {
		return propagateResult{}, err
	}
	defer pr.Close()
	if err := pr.awaitPath(cfg.Ready); err != nil {
		return propagateResult{}, err
	}
	phase := func(samples []time.Duration, lost int) *propagatePhase {
		return &propagatePhase{Delays: summarize(samples), Lost: lost,
			Links: peer.links.Load(), Records: peer.records.Load(), Invalid: peer.invalid.Load()}
	}

	var res propagateResult
	samples, lost, err := pr.measure(cfg.Probes, cfg.Gap, cfg.Timeout)
	if err != nil {
		return propagateResult{}, err
	}
	res.Quiescent = phase(samples, lost)
	if cfg.Rate <= 0 {
		return res, nil
	}

	bg, err := startOpenLoop(cfg.Addr, cfg.BgConns, cfg.Rate, cfg.BgClients, cfg.BgPrefix)
	if err != nil {
		return propagateResult{}, err
	}
	time.Sleep(warmUp)
	samples, lost, err = pr.measure(cfg.Probes, cfg.Gap, cfg.Timeout)
	sentRate, ackedRate, bgErr := bg.finish()
	if err = errors.Join(err, bgErr); err != nil {
		return propagateResult{}, err
	}
	res.Load = phase(samples, lost)
	res.Load.BgSentPerSec, res.Load.BgAckedPerSec = sentRate, ackedRate
	return res, nil
}

// prober sends one IAMAT at a time to a server and times its arrival at a
// peerListener further down the herd.
type prober struct {
	conn   net.Conn
	w      *bufio.Writer
	peer   *peerListener
	prefix string
	seq    int
	line   []byte
}

func newProber(addr string, peer *peerListener, prefix string) (*prober, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	// The server's replies are not what is timed: read and drop them so
	// the connection never stalls.
	go drain(conn)
	return &prober{conn: conn, w: bufio.NewWriter(conn), peer: peer, prefix: prefix}, nil
}

// Close closes the connection to the server.
func (p *prober) Close() error { return p.conn.Close() }

// probe sends one IAMAT for a fresh client and returns how long its record
// took to arrive, or false if it did not within timeout.
func (p *prober) probe(timeout time.Duration) (time.Duration, bool, error) {
	client := p.prefix + strconv.Itoa(p.seq)
	arrival := p.peer.await(client)
	now := time.Now()
	p.line = append(p.line[:0], "IAMAT "...)
	p.line = append(p.line, client...)
	p.line = append(p.line, ' ')
	p.line = appendIndexLocation(p.line, p.seq)
	p.line = append(p.line, ' ')
	p.line = appendTime(p.line, now)
	p.line = append(p.line, '\n')
	p.seq++
	p.w.Write(p.line)
	if err := p.w.Flush(); err != nil {
		p.peer.forget(client)
		return 0, false, fmt.Errorf("sending a probe: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case at := <-arrival:
		return at.Sub(now), true, nil
	case <-t.C:
		p.peer.forget(client)
		return 0, false, nil
	}
}

// awaitPath probes until one probe gets through, so that every link on the
// way is up, then sends a few more unmeasured.
func (p *prober) awaitPath(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		_, ok, err := p.probe(200 * time.Millisecond)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no probe reached %s within %s: does the last server have it as its peer?", p.peer.Addr(), within)
		}
	}
	for range 10 {
		if _, _, err := p.probe(time.Second); err != nil {
			return err
		}
	}
	return nil
}

// measure sends n probes one after another, each after the previous one
// arrived (or was lost) and a gap, and returns the arrival delays.
func (p *prober) measure(n int, gap, timeout time.Duration) (samples []time.Duration, lost int, err error) {
	samples = make([]time.Duration, 0, n)
	for range n {
		d, ok, err := p.probe(timeout)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			samples = append(samples, d)
		} else {
			lost++
		}
		time.Sleep(gap)
	}
	if lost == n {
		return nil, lost, fmt.Errorf("all %d probes were lost", n)
	}
	return samples, lost, nil
}
