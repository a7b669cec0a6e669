package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

func runHTTP(args []string) error {
	fs := flag.NewFlagSet("http", flag.ExitOnError)
	url := fs.String("url", "", "the URL to GET")
	conns := fs.Int("c", 10, "requests in flight, each on a kept-alive connection of its own")
	duration := fs.Duration("d", 5*time.Second, "how long to measure (after a 1 s warm-up)")
	fs.Parse(args)
	if *url == "" {
		return errors.New("-url is required")
	}
	cfg := httpConfig{URL: *url, Conns: *conns, Duration: *duration}
	res, err := httpLoad(cfg)
	if err != nil {
		return err
	}
	res.report(fmt.Sprintf("url=%s c=%d", cfg.URL, cfg.Conns))
	return nil
}

// httpConfig is one closed-loop run of GETs.
type httpConfig struct {
	URL      string
	Conns    int
	Duration time.Duration // measured, after the warm-up
}

// httpLoad runs closed-loop GETs of cfg.URL: cfg.Conns loops, each sending
// the next request as soon as the previous answer has been read whole. An
// answer other than 200 counts as invalid.
func httpLoad(cfg httpConfig) (result, error) {
	url, conns, duration := cfg.URL, cfg.Conns, cfg.Duration
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = conns
	transport.MaxIdleConnsPerHost = conns
	client := &http.Client{Transport: transport, Timeout: drainTimeout}
	defer transport.CloseIdleConnections()

	var (
		wg       sync.WaitGroup
		measured atomic.Bool
		stop     atomic.Bool
		ops      atomic.Int64
		total    atomic.Int64
		invalid  atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		errs     []error
	)
	get := func() (int, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return 0, fmt.Errorf("reading the answer: %w", err)
		}
		return resp.StatusCode, nil
	}
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for !stop.Load() {
				start := time.Now()
				code, err := get()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				total.Add(1)
				if code != http.StatusOK {
					invalid.Add(1)
				}
				if measured.Load() {
					local = append(local, time.Since(start))
					ops.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	elapsed := measure(duration, &measured, &stop, &wg)
	if err := errors.Join(errs...); err != nil {
		return result{}, err
	}
	return result{ops: ops.Load(), elapsed: elapsed, latencies: lat, total: total.Load(), invalid: invalid.Load()}, nil
}
