// Command herdload measures a herd server: closed-loop IAMAT load with C
// connections and P lines in flight on each, reporting throughput and
// latency; and it can serve the baseline it is compared with, a minimal
// TCP line server that answers each IAMAT with a fixed transformation.
//
//	herdload iamat -addr 127.0.0.1:12000 -c 50 -p 16 -d 10s
//	herdload raw -addr 127.0.0.1:13000
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "iamat":
		err = runIAMAT(os.Args[2:])
	case "raw":
		err = runRaw(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "herdload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: herdload iamat [flags] | herdload raw [flags]  (-h for flags)")
	os.Exit(2)
}

// result is what one load run measured.
type result struct {
	ops       int64
	elapsed   time.Duration
	latencies []time.Duration // one sample per line
}

func runIAMAT(args []string) error {
	fs := flag.NewFlagSet("iamat", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:12000", "the server's host:port")
	conns := fs.Int("c", 50, "connections")
	pipeline := fs.Int("p", 1, "lines in flight on each connection")
	duration := fs.Duration("d", 5*time.Second, "how long to run (after a 1 s warm-up)")
	clients := fs.Int("clients", 100000, "distinct client IDs, spread over the connections")
	prefix := fs.String("prefix", "load", "client ID prefix")
	fs.Parse(args)

	res, err := load(*addr, *conns, *pipeline, *duration, *clients, *prefix)
	if err != nil {
		return err
	}
	sort.Slice(res.latencies, func(i, j int) bool { return res.latencies[i] < res.latencies[j] })
	pct := func(p float64) time.Duration {
		if len(res.latencies) == 0 {
			return 0
		}
		return res.latencies[int(p*float64(len(res.latencies)-1))]
	}
	fmt.Printf("addr=%s c=%d p=%d ops=%d seconds=%.2f ops_per_sec=%.0f p50_us=%.1f p99_us=%.1f\n",
		*addr, *conns, *pipeline, res.ops, res.elapsed.Seconds(), float64(res.ops)/res.elapsed.Seconds(),
		float64(pct(0.50).Nanoseconds())/1e3, float64(pct(0.99).Nanoseconds())/1e3)
	return nil
}

// load runs the closed loop: each connection keeps pipeline lines in flight,
// sending the next as soon as a reply comes back.
func load(addr string, conns, pipeline int, duration time.Duration, clients int, prefix string) (result, error) {
	var (
		wg       sync.WaitGroup
		measured atomic.Bool
		stop     atomic.Bool
		ops      atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		firstErr atomic.Pointer[error]
	)
	perConn := max(clients/conns, 1)
	for c := 0; c < conns; c++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			stop.Store(true)
			wg.Wait()
			return result{}, fmt.Errorf("connection %d: %w", c, err)
		}
		wg.Add(1)
		go func(c int, conn net.Conn) {
			defer wg.Done()
			defer conn.Close()
			var local []time.Duration
			sent := make(chan time.Time, pipeline)
			w := bufio.NewWriter(conn)
			r := bufio.NewReader(conn)
			seq := 0
			line := make([]byte, 0, 128)
			send := func() error {
				line = line[:0]
				line = append(line, "IAMAT "...)
				line = append(line, prefix...)
				line = append(line, '-')
				line = strconv.AppendInt(line, int64(c*perConn+seq%perConn), 10)
				line = append(line, " +34.068930-118.445127 "...)
				now := time.Now()
				line = strconv.AppendInt(line, now.Unix(), 10)
				// 1e9+ns has ten digits: drop the leading 1 for nine, zero-padded.
				line = strconv.AppendInt(line, int64(1e9+now.Nanosecond()), 10)
				line[len(line)-10] = '.'
				line = append(line, '\n')
				seq++
				sent <- now
				_, err := w.Write(line)
				return err
			}
			for i := 0; i < pipeline; i++ {
				if err := send(); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
			w.Flush()
			for !stop.Load() {
				if _, err := r.ReadSlice('\n'); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				start := <-sent
				if measured.Load() {
					local = append(local, time.Since(start))
					ops.Add(1)
				}
				if err := send(); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				if r.Buffered() == 0 {
					w.Flush()
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(c, conn)
	}
	time.Sleep(time.Second) // warm-up: connections open, caches filled
	measured.Store(true)
	start := time.Now()
	time.Sleep(duration)
	measured.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return result{}, *e
	}
	return result{ops: ops.Load(), elapsed: elapsed, latencies: lat}, nil
}

// runRaw serves the loopback ceiling: a line server that answers every line
// with a fixed transformation of it, as cheaply as Go can.
func runRaw(args []string) error {
	fs := flag.NewFlagSet("raw", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:13000", "where to listen")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Println("raw line server on", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			r := bufio.NewReaderSize(conn, 4096)
			w := bufio.NewWriterSize(conn, 64<<10)
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					w.Flush()
					return
				}
				w.WriteString("AT Raw +0.000000000 ")
				w.Write(line[len("IAMAT "):])
				if r.Buffered() == 0 {
					if w.Flush() != nil {
						return
					}
				}
			}
		}()
	}
}
