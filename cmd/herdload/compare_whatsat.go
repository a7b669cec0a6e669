package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

func (c *comparison) sectionWhatsat() error {
	wport, admin, pport := c.PortBase+40, c.PortBase+1040, c.PortBase+140
	const conns, clients = 50, 100000
	places, err := c.procs.start("places", c.herdload, "places", "-listen", localAddr(pport))
	if err != nil {
		return err
	}
	if err := waitPort(places, pport); err != nil {
		return err
	}
	key := fakeplaces.APIKey
	purl := "http://" + localAddr(pport)
	providerBlock := "\t\tplaces google_legacy {\n\t\t\tapi_key " + key + "\n\t\t\tendpoint " + purl + "\n\t\t}"
	cache, err := c.cacheTTLAccepted(wport, providerBlock)
	if err != nil {
		return err
	}

	httpCfg := httpConfig{URL: purl + "/maps/api/place/nearbysearch/json?location=34.06893,-118.445127&radius=10000&key=" + key,
		Conns: conns, Duration: c.duration()}
	provider, err := httpLoad(httpCfg)
	if err != nil {
		return fmt.Errorf("loading the provider alone: %w", err)
	}
	pps := provider.opsPerSec()
	pp50, pp99 := provider.latency()

	w := c.out
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## WHATSAT throughput against a local fake Google provider (herdload places), beside the provider's own")
	fmt.Fprintf(w, "# provider alone: herdload http -url %s -c %d -d %ds\n", httpCfg.URL, conns, c.Seconds)
	fmt.Fprintf(w, "#   -> %.0f requests/s, p50/p99 %s / %s us\n", pps, fixed(pp50, 1), fixed(pp99, 1))
	fmt.Fprintf(w, "# herd: places google_legacy { endpoint %s }, %d clients stored at distinct locations (herdload fill)\n", purl, clients)
	type run struct{ label, extra string }
	runs := []run{{"distinct locations", ""}, {"identical query", ""}}
	if cache != "" {
		runs = append(runs, run{"distinct, cache_ttl 10s", cache}, run{"identical, cache_ttl 10s", cache})
	}
	tw := newTable(w)
	writeRow(tw, "p50/p99 us; command", "run", "WHATSAT/s", "provider/s", "herd/provider", "upstream per WHATSAT")
	var notes []string
	for _, r := range runs {
		block := providerBlock
		if r.extra != "" {
			block += "\n" + r.extra
		}
		if _, err := c.startHerd(herdConfig{Name: "W", Port: wport, AdminPort: admin, Extra: block}); err != nil {
			return err
		}
		if _, err := fill(fillConfig{Addr: localAddr(wport), N: clients, Conns: 8, Pipeline: 64, Prefix: "w"}); err != nil {
			return fmt.Errorf("filling W: %w", err)
		}
		load := whatsatConfig{Addr: localAddr(wport), Conns: conns, Pipeline: 1, Duration: c.duration(), Radius: "10", Bound: 5}
		command := fmt.Sprintf("herdload whatsat -addr %s -c %d -p 1 -d %ds -radius 10 -bound 5", load.Addr, conns, c.Seconds)
		if strings.HasPrefix(r.label, "distinct") {
			load.Clients, load.Prefix = clients, "w"
			command += fmt.Sprintf(" -clients %d -prefix w", clients)
		} else {
			load.Client = "w-0"
			command += " -client w-0"
		}
		requests := func() int64 { return jsonSumAt(purl+requestsPath, "requests") }
		before := requests()
		res, err := whatsatLoad(load)
		if err == nil {
			err = checkWhatsatAnswered(res)
		}
		if err != nil {
			return fmt.Errorf("loading W (%s): %w", r.label, err)
		}
		after := requests()
		c.procs.stop("W")
		p50, p99 := res.latency()
		writeRow(tw, fixed(p50, 1)+" / "+fixed(p99, 1)+"; "+command, r.label, fixed(res.opsPerSec(), 0), fixed(pps, 0),
			fixed(ratio(res.opsPerSec(), pps), 2), fixed(float64(after-before)/float64(res.total), 3))
		if res.invalid != 0 {
			notes = append(notes, fmt.Sprintf("#   %s: %d of %d WHATSATs were answered `?`", r.label, res.invalid, res.total))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	if cache == "" {
		fmt.Fprintln(w, "# (caddy adapt refuses cache_ttl in this build: no cache runs)")
	}
	return nil
}

// cacheTTLAccepted says whether this build's caddy takes cache_ttl: the
// lines to add for the cache runs, or "" when it refuses them.
func (c *comparison) cacheTTLAccepted(port int, providerBlock string) (string, error) {
	probe := herdConfig{Name: "probe", Port: port, Extra: providerBlock + "\n\t\tcache_ttl 10s"}
	if _, err := c.writeCaddyfile(probe); err != nil {
		return "", err
	}
	adapt := exec.Command(c.caddy, "adapt", "--adapter", "caddyfile", "--config", filepath.Join(c.work, "probe.caddyfile"))
	adapt.Env = c.procs.env
	if adapt.Run() != nil {
		return "", nil
	}
	return "\t\tcache_ttl 10s", nil
}

// jsonSumAt is the sum of every key in the JSON at url; 0 when nothing
// answers.
func jsonSumAt(url, key string) int64 {
	v, err := getJSON(url)
	if err != nil {
		return 0
	}
	return jsonSum(v, key)
}
