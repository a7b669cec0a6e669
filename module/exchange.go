package module

import (
	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/protocol"
)

// exchange answers a line of the catch-up exchange on a peer's link (see the
// protocol notes) and reports whether it was valid here. HELLO comes from a
// connection allowed to send AT: the answer says how far this server knows
// the sender's numbering, so that the sender's catch-up sends only what came
// after. THROUGH moves that point on, once the records read before it are
// stored. SINCE is a link's to read, not a server's.
func (c *session) exchange(msg []byte) bool {
	n := c.h.node
	m, _ := protocol.ParseSync(c.fields)
	switch m.Kind {
	case protocol.SyncHello:
		if r := c.admitAT(); r != admitted {
			c.reject(msg, r)
			return false
		}
		name := string(m.Name)
		if c.auth.mode == PeerAuthTLS && name != c.peer {
			c.log.Warn("HELLO names another peer than the connection's certificate", zap.String("hello", name), zap.String("certificate", c.peer))
			c.out = protocol.AppendInvalidReply(c.out, msg)
			return false
		}
		c.exchangePeer, c.exchangeEpoch = "", ""
		epoch, seq := protocol.NoEpoch, uint64(0)
		// Cursors are kept for configured peers only, so that what anyone
		// may send cannot grow them.
		if n.isPeer(name) {
			c.exchangePeer, c.exchangeEpoch = name, string(m.Epoch)
			if cur, ok := n.cursor(name); ok && cur.Epoch == c.exchangeEpoch {
				epoch, seq = cur.Epoch, cur.Seq
			}
		}
		all := n.resendOwn.Load()
		c.out = protocol.AppendSince(c.out, epoch, seq, all)
		c.log.Info("peer link introduced itself", zap.String("peer", name), zap.Bool("configured_peer", c.exchangePeer != ""),
			zap.String("epoch", string(m.Epoch)), zap.Uint64("since", seq), zap.Bool("own_records_too", all))
		return true
	case protocol.SyncThrough:
		// Admitted again, as every AT is: a mark that followed refused
		// records must not say they arrived.
		if r := c.admitAT(); r != admitted {
			c.reject(msg, r)
			return false
		}
		if c.exchangePeer == "" {
			return true
		}
		// The mark covers every record this connection sent before it: those
		// go to disk first. (A failed write of replies shows at the next.)
		c.flush()
		n.setCursor(c.exchangePeer, herdwal.Cursor{Epoch: c.exchangeEpoch, Seq: m.Seq})
		return true
	}
	c.out = protocol.AppendInvalidReply(c.out, msg)
	return false
}

// isPeer reports whether name is one of this server's configured peers.
func (n *node) isPeer(name string) bool {
	for _, l := range *n.links.Load() {
		if l.Name() == name {
			return true
		}
	}
	return false
}
