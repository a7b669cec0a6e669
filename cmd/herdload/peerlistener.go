package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// peerListener is a fake herd peer: it accepts the links servers dial and
// reads the AT lines they flood, noting when each awaited client's record
// arrives. It answers a link's HELLO as a classic server does, `? <line>`,
// so that the link sends plain AT lines at once; it replies to nothing
// else, as a peer that accepts every line would not.
type peerListener struct {
	ln     net.Listener
	prefix []byte // only clients with this prefix can be awaited

	mu      sync.Mutex
	waiting map[string]chan time.Time
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup

	links   atomic.Int64 // connections accepted
	records atomic.Int64 // AT lines read, awaited or not
	invalid atomic.Int64 // lines that were not valid AT lines
}

// listenAsPeer listens on addr for links and awaits clients whose IDs start
// with prefix.
func listenAsPeer(addr, prefix string) (*peerListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening as a peer: %w", err)
	}
	p := &peerListener{
		ln:      ln,
		prefix:  []byte(prefix),
		waiting: make(map[string]chan time.Time),
		conns:   make(map[net.Conn]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address the listener listens on.
func (p *peerListener) Addr() string { return p.ln.Addr().String() }

func (p *peerListener) accept() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			conn.Close()
			return
		}
		p.conns[conn] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		p.links.Add(1)
		go p.read(conn)
	}
}

func (p *peerListener) read(conn net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, conn)
		p.mu.Unlock()
		conn.Close()
	}()
	r := bufio.NewReaderSize(conn, 64<<10)
	var fields [][]byte
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			p.invalid.Add(1)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			continue
		}
		if err != nil {
			return
		}
		arrived := time.Now()
		fields = protocol.Fields(fields, line)
		if len(fields) > 0 && bytes.Equal(fields[0], herdWord) {
			conn.Write(protocol.AppendInvalidReply(nil, protocol.TrimSpace(line)))
			continue
		}
		if len(fields) != 6 || !bytes.Equal(fields[0], atWord) {
			p.invalid.Add(1)
			continue
		}
		p.records.Add(1)
		client := fields[protocol.ATClient]
		if !bytes.HasPrefix(client, p.prefix) {
			continue // background load: not awaited, not worth validating
		}
		if protocol.Classify(fields) != protocol.AT {
			p.invalid.Add(1)
			continue
		}
		p.mu.Lock()
		ch, ok := p.waiting[string(client)]
		delete(p.waiting, string(client))
		p.mu.Unlock()
		if ok {
			ch <- arrived
		}
	}
}

// await returns a channel that receives the arrival time of client's next
// record. Only the first arrival counts; forget stops waiting.
func (p *peerListener) await(client string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	p.mu.Lock()
	p.waiting[client] = ch
	p.mu.Unlock()
	return ch
}

// forget stops waiting for client's record.
func (p *peerListener) forget(client string) {
	p.mu.Lock()
	delete(p.waiting, client)
	p.mu.Unlock()
}

// Close stops listening, closes every link and waits for the readers.
func (p *peerListener) Close() error {
	p.mu.Lock()
	p.closed = true
	err := p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// atWord is the command word of a flooded record; herdWord starts a line of
// the catch-up exchange.
var (
	atWord   = []byte("AT")
	herdWord = []byte("HERD")
)
