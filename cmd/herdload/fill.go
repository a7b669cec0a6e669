package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"sync"
	"time"
)

func runFill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:12000", "the server's host:port")
	n := fs.Int("n", 100000, "clients to store: prefix-0 .. prefix-(n-1), each at a location of its own")
	conns := fs.Int("c", 8, "connections")
	pipeline := fs.Int("p", 64, "lines in flight on each connection")
	prefix := fs.String("prefix", "fill", "client ID prefix")
	redis := fs.Bool("redis", false, "fill a Redis server instead: SET <client> <the AT line a herd server would store>")
	fs.Parse(args)

	cfg := fillConfig{Addr: *addr, N: *n, Conns: *conns, Pipeline: *pipeline, Prefix: *prefix, Redis: *redis}
	res, err := fill(cfg)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("addr=%s n=%d c=%d p=%d seconds=%.2f ops_per_sec=%.0f",
		cfg.Addr, res.n, cfg.Conns, cfg.Pipeline, res.elapsed.Seconds(), float64(res.n)/res.elapsed.Seconds())
	if !cfg.Redis {
		line += fmt.Sprintf(" record_bytes=%.1f", res.recordBytesPerClient())
	}
	fmt.Println(line)
	return nil
}

// fillConfig is one fill: N clients Prefix-0 .. Prefix-(N-1) over Conns
// connections with Pipeline lines in flight each, to a herd server or, with
// Redis, to a Redis server.
type fillConfig struct {
	Addr     string
	N        int
	Conns    int
	Pipeline int
	Prefix   string
	Redis    bool
}

// fillResult is what a fill did.
type fillResult struct {
	n       int
	elapsed time.Duration
	// recordBytes is the total size of the records a herd server stored,
	// each an AT line with its newline: what a peer link carries per client,
	// at least. Not counted for Redis.
	recordBytes int64
}

// recordBytesPerClient is the mean size of a stored record.
func (res fillResult) recordBytesPerClient() float64 {
	return float64(res.recordBytes) / float64(max(res.n, 1))
}

// fill stores n distinct clients, prefix-0 .. prefix-(n-1), each at a
// location of its own, and returns once every one is acknowledged. Each
// connection sends its own contiguous range with pipeline lines in flight.
func fill(cfg fillConfig) (fillResult, error) {
	addr, n, pipeline, prefix, redis := cfg.Addr, cfg.N, cfg.Pipeline, cfg.Prefix, cfg.Redis
	conns := max(min(cfg.Conns, n), 1)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		stored int64
	)
	start := time.Now()
	for c := 0; c < conns; c++ {
		first, end := c*n/conns, (c+1)*n/conns
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			wg.Wait()
			return fillResult{}, fmt.Errorf("connection %d: %w", c, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			b, err := fillRange(conn, first, end, pipeline, prefix, redis)
			mu.Lock()
			defer mu.Unlock()
			stored += b
			if err != nil {
				errs = append(errs, fmt.Errorf("connection %d: %w", c, err))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fillResult{}, err
	}
	return fillResult{n: n, elapsed: time.Since(start), recordBytes: stored}, nil
}

// fillRange stores clients first .. end-1 over conn and returns the bytes of
// the records stored.
func fillRange(conn net.Conn, first, end, pipeline int, prefix string, redis bool) (int64, error) {
	w := bufio.NewWriterSize(conn, 64<<10)
	r := bufio.NewReaderSize(conn, 64<<10)
	line := make([]byte, 0, 256)
	loc := make([]byte, 0, 32)
	next, acked := first, first
	var recordBytes int64
	send := func() error {
		loc = appendIndexLocation(loc[:0], next)
		if redis {
			line = appendRedisSet(line[:0], prefix, next, loc, time.Now())
		} else {
			line = appendIAMAT(line[:0], prefix, next, loc, time.Now())
		}
		next++
		_, err := w.Write(line)
		return err
	}
	for next < end && next-first < pipeline {
		if err := send(); err != nil {
			return 0, err
		}
	}
	for acked < end {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return 0, err
			}
		}
		reply, err := r.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("reading the reply for client %d: %w", acked, err)
		}
		switch {
		case redis && bytes.HasPrefix(reply, []byte("+OK")):
		case !redis && bytes.HasPrefix(reply, []byte("AT ")):
			recordBytes += int64(len(reply))
		default:
			return 0, fmt.Errorf("client %d was answered %q", acked, bytes.TrimSpace(reply))
		}
		acked++
		if next < end {
			if err := send(); err != nil {
				return 0, err
			}
		}
	}
	return recordBytes, w.Flush()
}

// appendRedisSet appends an inline Redis command that stores the record a
// herd server would store for an IAMAT of client prefix-i:
// SET <client> "AT Redis +0.000000000 <client> <location> <now>".
func appendRedisSet(dst []byte, prefix string, i int, location []byte, now time.Time) []byte {
	dst = append(dst, "SET "...)
	dst = appendClientID(dst, prefix, i)
	dst = append(dst, ` "AT Redis +0.000000000 `...)
	dst = appendClientID(dst, prefix, i)
	dst = append(dst, ' ')
	dst = append(dst, location...)
	dst = append(dst, ' ')
	dst = appendTime(dst, now)
	return append(dst, "\"\r\n"...)
}
