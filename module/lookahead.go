package module

import (
	"bufio"
	"bytes"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// lookAhead is called with each line read. When the lines read before are
// used up, it has the table prefetch the clients of this line and of every
// complete line buffered behind it, so that a read of many lines (pipelined
// IAMATs, a peer's batch of ATs) waits for the table's memory once rather
// than once per line. A table that stays cached is not worth the scan.
func (c *session) lookAhead(line []byte, r *bufio.Reader) {
	if c.ahead > 0 {
		c.ahead--
		return
	}
	if c.h.node.store.Cached() {
		return
	}
	c.clients = c.clients[:0]
	if client := protocol.UpdatedClient(line); client != nil {
		c.clients = append(c.clients, client)
	}
	buffered, _ := r.Peek(r.Buffered())
	for {
		end := bytes.IndexByte(buffered, '\n')
		if end < 0 {
			break
		}
		c.ahead++
		if client := protocol.UpdatedClient(buffered[:end]); client != nil {
			c.clients = append(c.clients, client)
		}
		buffered = buffered[end+1:]
	}
	// One line's lookup gains nothing from being started early.
	if len(c.clients) > 1 {
		c.h.node.store.Prefetch(c.clients)
	}
}
