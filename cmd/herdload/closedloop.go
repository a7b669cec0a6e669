package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// warmUp is how long a closed loop runs before it measures: connections
// open, caches and buffers fill.
const warmUp = time.Second

// drainTimeout bounds the wait for the replies still in flight when a run
// stops.
const drainTimeout = 10 * time.Second

// exchange is one connection's side of a request-reply protocol: it writes
// requests and reads their replies, one at a time, in order.
type exchange interface {
	// appendRequest appends the next request, with its line terminator.
	appendRequest(dst []byte, now time.Time) []byte
	// readReply reads one whole reply and says whether it was a valid
	// answer rather than a `?` complaint.
	readReply(r *bufio.Reader) (ok bool, err error)
}

// result is what one closed-loop run measured.
type result struct {
	ops       int64 // replies in the measured window
	elapsed   time.Duration
	latencies []time.Duration // one sample per reply in the window
	total     int64           // every reply, warm-up and drain included
	invalid   int64           // `?` replies, warm-up and drain included
}

// closedLoop runs conns connections for warm-up plus duration, each keeping
// pipeline requests in flight and sending the next as soon as a reply comes
// back. When the run stops, each connection reads the replies still in
// flight, so that the server has answered exactly total requests.
func closedLoop(addr string, conns, pipeline int, duration time.Duration, newExchange func(conn int) exchange) (result, error) {
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
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
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
			ex := newExchange(c)
			var local []time.Duration
			sent := make(chan time.Time, pipeline)
			w := bufio.NewWriter(conn)
			r := bufio.NewReaderSize(conn, 64<<10)
			line := make([]byte, 0, 128)
			send := func() error {
				now := time.Now()
				line = ex.appendRequest(line[:0], now)
				sent <- now
				_, err := w.Write(line)
				return err
			}
			for i := 0; i < pipeline; i++ {
				if err := send(); err != nil {
					fail(err)
					return
				}
			}
			if err := w.Flush(); err != nil {
				fail(err)
				return
			}
			draining := false
			for len(sent) > 0 {
				if !draining && stop.Load() {
					// Requests may still sit in the buffer, waiting for the
					// replies already read to run out: send them too.
					draining = true
					if err := w.Flush(); err != nil {
						fail(err)
						return
					}
					conn.SetReadDeadline(time.Now().Add(drainTimeout))
				}
				ok, err := ex.readReply(r)
				if err != nil {
					fail(fmt.Errorf("connection %d: %w", c, err))
					return
				}
				start := <-sent
				total.Add(1)
				if !ok {
					invalid.Add(1)
				}
				if measured.Load() {
					local = append(local, time.Since(start))
					ops.Add(1)
				}
				if draining {
					continue
				}
				if err := send(); err != nil {
					fail(err)
					return
				}
				if r.Buffered() == 0 {
					if err := w.Flush(); err != nil {
						fail(err)
						return
					}
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}(c, conn)
	}
	elapsed := measure(duration, &measured, &stop, &wg)
	if err := errors.Join(errs...); err != nil {
		return result{}, err
	}
	return result{ops: ops.Load(), elapsed: elapsed, latencies: lat, total: total.Load(), invalid: invalid.Load()}, nil
}

// report prints a run's figures on one line after the given leading ones.
func (res result) report(lead string) {
	s := summarize(res.latencies)
	fmt.Printf("%s ops=%d seconds=%.2f ops_per_sec=%.0f p50_us=%s p99_us=%s total=%d invalid=%d\n",
		lead, res.ops, res.elapsed.Seconds(), res.opsPerSec(),
		micros(s.p50), micros(s.p99), res.total, res.invalid)
}

// opsPerSec is the measured window's throughput.
func (res result) opsPerSec() float64 {
	return float64(res.ops) / res.elapsed.Seconds()
}

// latency returns the median and 99th percentile latencies in microseconds,
// rounded to a tenth as report prints them.
func (res result) latency() (p50, p99 float64) {
	s := summarize(res.latencies)
	return microsValue(s.p50), microsValue(s.p99)
}

// measure lets a loop's workers warm up, counts what they do for duration
// (they count while measured is set), then stops them and waits for them.
func measure(duration time.Duration, measured, stop *atomic.Bool, wg *sync.WaitGroup) time.Duration {
	time.Sleep(warmUp)
	measured.Store(true)
	start := time.Now()
	time.Sleep(duration)
	measured.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	return elapsed
}
