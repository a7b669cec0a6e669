package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"sync"
	"time"
)

// runRaw serves the loopback ceiling: a line server that answers every
// IAMAT with a fixed transformation of it, as cheaply as Go can. With a
// peer it is also the cheapest flooding relay, the baseline of propagation:
// it forwards the AT line of every IAMAT, and every AT line it receives,
// to the peer over one connection.
func runRaw(args []string) error {
	fs := flag.NewFlagSet("raw", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:13000", "where to listen")
	peer := fs.String("peer", "", "host:port to forward AT lines to (none: answer only)")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	var fwd *forwarder
	if *peer != "" {
		fwd = newForwarder(*peer)
	}
	fmt.Println("raw line server on", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accepting: %w", err)
		}
		go serveRaw(conn, fwd)
	}
}

var (
	rawReplyPrefix = []byte("AT Raw +0.000000000 ")
	iamatPrefix    = []byte("IAMAT ")
	atPrefix       = []byte("AT ")
)

func serveRaw(conn net.Conn, fwd *forwarder) {
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 4096)
	w := bufio.NewWriterSize(conn, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			w.Flush()
			return
		}
		switch {
		case bytes.HasPrefix(line, iamatPrefix):
			w.Write(rawReplyPrefix)
			w.Write(line[len(iamatPrefix):])
			if fwd != nil {
				fwd.send(rawReplyPrefix, line[len(iamatPrefix):])
			}
		case bytes.HasPrefix(line, atPrefix):
			if fwd != nil {
				fwd.send(nil, line)
			}
		}
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// forwarder writes lines to one peer over one connection. Senders append
// to a shared buffer and wake the writer, which writes all that collected
// in one go, as a busy herd link writes batches. There is no catch-up and no
// bound: lines sent while the peer is unreachable are dropped, and a peer
// slower than the senders grows the buffer, which a baseline can afford.
type forwarder struct {
	addr string
	mu   sync.Mutex
	buf  []byte
	wake chan struct{}
}

// redialEvery is how often a forwarder retries its peer.
const redialEvery = 20 * time.Millisecond

func newForwarder(addr string) *forwarder {
	f := &forwarder{addr: addr, wake: make(chan struct{}, 1)}
	go f.run()
	return f
}

// send queues head followed by tail.
func (f *forwarder) send(head, tail []byte) {
	f.mu.Lock()
	f.buf = append(f.buf, head...)
	f.buf = append(f.buf, tail...)
	f.mu.Unlock()
	f.poke()
}

// poke wakes the writer.
func (f *forwarder) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *forwarder) run() {
	var spare []byte
	for {
		conn, err := net.Dial("tcp", f.addr)
		if err != nil {
			f.take(nil)
			time.Sleep(redialEvery)
			continue
		}
		go func() {
			// The peer complains only about bad lines: discard. When it
			// hangs up, wake the writer so it fails and redials.
			drain(conn)
			conn.Close()
			f.poke()
		}()
		for err == nil {
			<-f.wake
			spare = f.take(spare[:0])
			_, err = conn.Write(spare)
		}
		conn.Close()
	}
}

// take swaps the buffer for spare and returns what was buffered.
func (f *forwarder) take(spare []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.buf
	f.buf = spare
	return out
}

// drain reads conn until it fails.
func drain(conn net.Conn) {
	buf := make([]byte, 4096)
	for {
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}
