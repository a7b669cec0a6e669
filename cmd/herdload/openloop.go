package main

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// openLoop sends IAMATs at a fixed rate whatever the server does, as many
// independent clients would: a background load that does not slow down
// when the server does, unlike a closed loop.
type openLoop struct {
	start time.Time
	stop  atomic.Bool
	wg    sync.WaitGroup
	conns []net.Conn

	sent, acked atomic.Int64
	mu          sync.Mutex
	errs        []error
}

// openLoopTick is the shortest pause between two bursts of a connection:
// each burst sends every line that fell due since the last one.
const openLoopTick = 500 * time.Microsecond

// startOpenLoop opens conns connections to addr and sends rate IAMATs per
// second over them together, for clients prefix-0 .. prefix-(clients-1)
// picked at random.
func startOpenLoop(addr string, conns int, rate float64, clients int, prefix string) (*openLoop, error) {
	o := &openLoop{start: time.Now()}
	perConn := rate / float64(conns)
	for c := 0; c < conns; c++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			o.finish()
			return nil, fmt.Errorf("background connection %d: %w", c, err)
		}
		o.conns = append(o.conns, conn)
		o.wg.Add(2)
		go o.write(conn, perConn, clients, prefix, rand.New(rand.NewPCG(uint64(c), 0x626700)))
		go o.read(conn)
	}
	return o, nil
}

// write sends lines at rate per second, in bursts of all that are due.
func (o *openLoop) write(conn net.Conn, rate float64, clients int, prefix string, rnd *rand.Rand) {
	defer o.wg.Done()
	w := bufio.NewWriterSize(conn, 64<<10)
	line := make([]byte, 0, 128)
	var sent int64
	for !o.stop.Load() {
		now := time.Now()
		due := int64(now.Sub(o.start).Seconds() * rate)
		burst := due - sent
		for ; sent < due; sent++ {
			line = appendIAMAT(line[:0], prefix, rnd.IntN(clients), []byte(fixedLocation), now)
			w.Write(line)
		}
		if err := w.Flush(); err != nil {
			if !o.stop.Load() {
				o.fail(err)
			}
			return
		}
		o.sent.Add(burst)
		next := o.start.Add(time.Duration(float64(sent+1) / rate * float64(time.Second)))
		time.Sleep(max(time.Until(next), openLoopTick))
	}
}

func (o *openLoop) read(conn net.Conn) {
	defer o.wg.Done()
	r := bufio.NewReaderSize(conn, 64<<10)
	for {
		if _, err := r.ReadSlice('\n'); err != nil {
			if !o.stop.Load() {
				o.fail(err)
			}
			return
		}
		o.acked.Add(1)
	}
}

func (o *openLoop) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.errs = append(o.errs, err)
}

// finish stops the load and returns the rates it sent at and was answered
// at.
func (o *openLoop) finish() (sentPerSec, ackedPerSec float64, err error) {
	o.stop.Store(true)
	elapsed := time.Since(o.start).Seconds()
	acked := o.acked.Load()
	for _, c := range o.conns {
		c.Close()
	}
	o.wg.Wait()
	return float64(o.sent.Load()) / elapsed, float64(acked) / elapsed, errors.Join(o.errs...)
}
