package module

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mholt/caddy-l4/layer4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/module/limits"
	"github.com/caddy-herd/caddy-herd/protocol"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler defaults and limits.
const (
	defaultMaxLineBytes = 4096
	minMaxLineBytes     = 64
	defaultIdleTimeout  = 5 * time.Minute
	// defaultWriteTimeout bounds one write of replies: a client that stops
	// reading for longer is dropped.
	defaultWriteTimeout = 30 * time.Second
	// defaultMaxConnections bounds the open connections of a server.
	defaultMaxConnections = 10000
	// flushReplyBytes is how many reply bytes are collected before a write
	// when more input is already buffered.
	flushReplyBytes = 64 << 10
)

// connectionIDs numbers connections for the logs.
var connectionIDs atomic.Uint64

// Handler speaks the herd line protocol on a layer4 connection: IAMAT and
// WHATSAT from clients, AT from peers. It needs the `herd` app. It is a
// terminal handler.
type Handler struct {
	// MaxLineBytes is the longest line accepted, without its newline; a
	// longer line ends the connection. Default: 4096.
	MaxLineBytes int `json:"max_line_bytes,omitempty"`

	// IdleTimeout ends a connection that sends nothing for this long, and
	// bounds the time a client may take to send one line. Default: 5m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// WriteTimeout ends a connection whose client does not take its replies
	// for this long. Default: 30s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// MaxConnections is the most connections this server keeps open at once,
	// counting clients and peers on every listener of the herd; beyond it new
	// connections are closed at once, with a log entry. Default: 10000.
	MaxConnections int `json:"max_connections,omitempty"`

	node   *node
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "layer4.handlers.herd",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and finds the herd app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.MaxLineBytes == 0 {
		h.MaxLineBytes = defaultMaxLineBytes
	}
	if h.IdleTimeout == 0 {
		h.IdleTimeout = caddy.Duration(defaultIdleTimeout)
	}
	if h.WriteTimeout == 0 {
		h.WriteTimeout = caddy.Duration(defaultWriteTimeout)
	}
	if h.MaxConnections == 0 {
		h.MaxConnections = defaultMaxConnections
	}
	appIface, err := ctx.AppIfConfigured("herd")
	if err != nil {
		return fmt.Errorf("getting herd app (the herd handler needs a `herd` block in the global options): %w", err)
	}
	h.node = appIface.(*App).node
	return nil
}

// Validate checks the limits.
func (h *Handler) Validate() error {
	if h.MaxLineBytes < minMaxLineBytes {
		return fmt.Errorf("max_line_bytes %d: must be at least %d", h.MaxLineBytes, minMaxLineBytes)
	}
	if h.IdleTimeout < 0 {
		return fmt.Errorf("idle_timeout %s: must not be negative", time.Duration(h.IdleTimeout))
	}
	if h.WriteTimeout < 0 {
		return fmt.Errorf("write_timeout %s: must not be negative", time.Duration(h.WriteTimeout))
	}
	if h.MaxConnections < 0 {
		return fmt.Errorf("max_connections %d: must not be negative", h.MaxConnections)
	}
	return nil
}

// Handle serves one connection until the client closes it, idles out, sends
// an oversized line, or the herd node closes. Replies are collected while
// more input is buffered and written in one write each time the input runs
// dry, so every reply goes out whole.
func (h *Handler) Handle(cx *layer4.Connection, _ layer4.Handler) error {
	if !h.node.awaitReady() {
		return nil
	}
	if !h.node.openConnection(h.MaxConnections) {
		if h.node.connectionsFull.CompareAndSwap(false, true) {
			h.logger.Warn("connection limit reached; closing new connections until some end",
				zap.Int("max_connections", h.MaxConnections), zap.String("remote", cx.RemoteAddr().String()))
		}
		return nil
	}
	defer h.node.closeConnection()
	if h.node.connectionsFull.CompareAndSwap(true, false) {
		h.logger.Info("connections below the limit again", zap.Int("max_connections", h.MaxConnections))
	}
	remote := cx.RemoteAddr()
	c := &session{
		h:   h,
		cx:  cx,
		log: h.logger.With(zap.Uint64("conn", connectionIDs.Add(1)), zap.String("remote", remote.String())),
	}
	c.debug = c.log.Core().Enabled(zapcore.DebugLevel)
	if addr, ok := remote.(*net.TCPAddr); ok {
		c.remote = addr.AddrPort()
	} else {
		c.remote, _ = netip.ParseAddrPort(remote.String())
	}
	if !c.admitClient() {
		return nil
	}
	defer c.releaseClient()
	h.node.sessions.join(&c.floods.floor)
	defer h.node.sessions.leave(&c.floods.floor)
	c.log.Debug("connection opened")
	stop := context.AfterFunc(h.node.ctx, func() { cx.Close() })
	defer stop()
	err := c.serve()
	c.log.Debug("connection closed", zap.String("reason", err.Error()))
	return nil
}

// session is one connection's state; only its own goroutine touches it.
type session struct {
	h      *Handler
	cx     *layer4.Connection
	remote netip.AddrPort
	ip     *limits.IP // its client IP's limits; nil for a peer
	log    *zap.Logger
	// debug is whether log takes debug entries; a config's log levels stay
	// as they are for its connections, and asking per line costs.
	debug bool
	// lines collects the lines and replies for the debug log.
	lines lineLog
	r     *bufio.Reader
	out   []byte
	// written counts the bytes of out written so far, so that a line's
	// reply can be found in out after a flush while it was handled.
	written int
	fields  [][]byte

	// auth is the policy the connection's standing as a peer was last
	// decided under; peer and verdict are that decision.
	auth    *peerAuth
	peer    string
	verdict rejection
	// peerLogged is set once the connection was logged as a peer's.
	peerLogged bool
	// refused is set when the line being handled was refused as not a
	// peer's.
	refused bool

	// ahead counts the buffered lines whose clients were already prefetched;
	// clients is the reused list of them.
	ahead   int
	clients [][]byte

	// floods holds the lines of the records that changed the table, until
	// the links are flushed.
	floods floods
	// scratch holds the record of the line being handled: the table copies
	// it, and apply copies its line for the links that take it.
	scratch herdstore.Scratch

	// readAt is when the last read from the connection returned: the
	// receive time of every line it brought.
	readAt time.Time

	// exchangePeer is the peer whose link this connection is, once it said
	// HELLO as one of this server's peers, and exchangeEpoch its numbering.
	exchangePeer  string
	exchangeEpoch string
}

// Why a session ends, as its "connection closed" entry says.
var (
	errClientClosed  = errors.New("client closed")
	errIdleTimeout   = errors.New("idle timeout")
	errServerClosing = errors.New("server closing")
	errLineTooLong   = errors.New("line too long")
	errRateLimited   = errors.New("message rate limit")
	errWriteFailed   = errors.New("write failed")
)

// serve answers the connection's lines until it ends, and says why.
func (c *session) serve() error {
	c.r = bufio.NewReaderSize(c.cx, c.h.MaxLineBytes+1)
	for {
		line, err := c.nextLine()
		if err == nil && !c.admitLine() {
			err = errRateLimited
		}
		if err != nil {
			c.flush()
			return err
		}
		c.handleLine(line)
		if len(c.out) >= flushReplyBytes && !c.flush() {
			return errWriteFailed
		}
	}
}

// nextLine returns the next line read. Before it reads from the connection,
// it sends onward what the lines before made (flush), so that nothing waits
// on a client that pauses or a peer that streams without pause, and renews
// the idle deadline. Each line it returns was received when the read that
// brought it returned (c.readAt), and its clients are being prefetched.
func (c *session) nextLine() ([]byte, error) {
	if buffered, _ := c.r.Peek(c.r.Buffered()); bytes.IndexByte(buffered, '\n') < 0 {
		if !c.flush() {
			return nil, errWriteFailed
		}
		if idle := time.Duration(c.h.IdleTimeout); idle > 0 {
			c.cx.SetReadDeadline(time.Now().Add(idle))
		}
	}
	buffered := c.r.Buffered()
	line, err := c.r.ReadSlice('\n')
	if c.r.Buffered()+len(line) != buffered {
		c.readAt = time.Now()
	}
	switch {
	case err == nil:
		c.lookAhead(line, c.r)
		return line, nil
	case errors.Is(err, bufio.ErrBufferFull):
		c.log.Warn("line too long; closing connection", zap.Int("max_line_bytes", c.h.MaxLineBytes))
		return nil, errLineTooLong
	case errors.Is(err, io.EOF) && len(line) > 0:
		// Only a clean EOF makes an unterminated line a message: a line cut
		// by the idle timeout or a reset is dropped unanswered. The next
		// read gives the EOF again.
		return line, nil
	}
	var netErr net.Error
	switch {
	case errors.Is(err, io.EOF):
		return nil, errClientClosed
	case errors.As(err, &netErr) && netErr.Timeout():
		return nil, errIdleTimeout
	case errors.Is(err, net.ErrClosed):
		return nil, errServerClosing
	}
	return nil, err
}

// flush is the one place a session's lines go onward from: it stores the
// updates they made and has the links write them, logs the lines and
// replies since the last flush, then writes the replies in one write, and
// reports whether they were written.
func (c *session) flush() bool {
	if c.floods.pending {
		c.h.node.flood(&c.floods)
	}
	c.logLines()
	return c.writeReplies()
}

// logLines logs the lines handled since the last entry, with their
// replies, in one entry.
func (c *session) logLines() {
	if !c.lines.empty() {
		c.log.Debug("lines", zap.Array("lines", &c.lines))
		c.lines.reset()
	}
}

// writeReplies writes the collected replies and reports success.
func (c *session) writeReplies() bool {
	if len(c.out) == 0 {
		return true
	}
	if d := time.Duration(c.h.WriteTimeout); d > 0 {
		c.cx.SetWriteDeadline(time.Now().Add(d))
	}
	_, err := c.cx.Write(c.out)
	c.written += len(c.out)
	c.out = c.out[:0]
	if err != nil {
		c.log.Debug("writing replies", zap.Error(err))
		return false
	}
	return true
}

// handleLine answers one message.
func (c *session) handleLine(raw []byte) {
	msg := protocol.TrimSpace(raw)
	if len(msg) == 0 {
		return
	}
	c.fields = protocol.Fields(c.fields, msg)
	// A WHATSAT writes what came before its answer: start is where the
	// reply begins counting every byte ever collected, not a place in out.
	start := c.written + len(c.out)
	cmd, ok := protocol.Classify(c.fields), true
	c.refused = false
	switch cmd {
	case protocol.IAMAT:
		c.iamat()
	case protocol.AT:
		if r := c.admitAT(); r != admitted {
			c.reject(msg, r)
			ok = false
			break
		}
		c.at()
	case protocol.WHATSAT:
		if err := c.whatsat(); err != nil {
			c.out = protocol.AppendInvalidReply(c.out, msg)
			ok = false
		}
	case protocol.HERD:
		ok = c.exchange(msg)
	default:
		ok = false
		c.out = protocol.AppendInvalidReply(c.out, msg)
	}
	// A refused AT or HELLO is counted as rejected, not as a message received.
	if !c.refused {
		c.h.node.stats.countMessage(c.fields, cmd, ok)
	}
	if c.debug {
		c.lines.add(msg, c.out[min(max(start-c.written, 0), len(c.out)):])
	}
}

func (c *session) iamat() {
	received := c.readAt
	defer func() { iamatDuration.Observe(time.Since(received).Seconds()) }()
	start := len(c.out)
	c.out = protocol.AppendIAMATReply(c.out, *c.h.node.name.Load(), received.UnixNano(), c.fields)
	r := c.scratch.MakeRecord(c.out[start:], herdstore.Origin{Arrived: received.UnixNano(), From: c.remote})
	c.out = append(c.out, '\n')
	if c.h.node.apply(r, "", &c.floods) {
		c.floods.answered = true
	} else if c.debug {
		c.log.Debug("kept a newer record", zap.String("client", r.Client()))
	}
}

// admitAT decides whether this connection may send AT under the current
// policy. A certificate decision holds for the connection until a reload
// changes the policy; an address decision is made per line, since the
// resolved addresses change under the same policy.
func (c *session) admitAT() rejection {
	p := c.h.node.auth.Load()
	if p != c.auth || p.mode == PeerAuthAddresses {
		c.auth = p
		c.peer, c.verdict = p.admit(c.remote.Addr(), tlsStates(c.cx))
	}
	if c.verdict == admitted && !c.peerLogged && p.mode != PeerAuthOff {
		c.peerLogged = true
		c.log.Info("accepting AT from a peer connection", zap.String("peer", c.peer), zap.String("peer_auth", p.mode))
	}
	return c.verdict
}

// tlsStates returns the TLS connection states that the layer4 tls handler
// recorded for the layers it terminated on cx, outermost first.
func tlsStates(cx *layer4.Connection) []*tls.ConnectionState {
	states, _ := cx.GetVar(layer4.TLSConnectionStatesVarName).([]*tls.ConnectionState)
	return states
}

// reject answers a refused AT `? <line>`, counts it and logs it, at most
// once per rejectLogEvery for the whole server, saying how many refusals the
// entry stands for.
func (c *session) reject(msg []byte, r rejection) {
	c.refused = true
	c.out = protocol.AppendInvalidReply(c.out, msg)
	c.h.node.stats.rejected[r].Add(1)
	if ok, held := c.h.node.rejectLog.Allow(time.Now(), rejectLogEvery); ok {
		c.log.Warn("rejected AT from a connection that is not a peer's",
			zap.String("reason", r.String()), zap.String("peer_auth", c.auth.mode),
			zap.ByteString("line", msg), zap.Int64("also_rejected_since_last_entry", held))
	}
}

func (c *session) at() {
	r := c.scratch.MakeRecordOfFields(c.fields, herdstore.Origin{Arrived: c.readAt.UnixNano(), From: c.remote})
	// Only a certificate names the sender for sure: several peers may share
	// an address.
	from := ""
	if c.auth.mode == PeerAuthTLS {
		from = c.peer
	}
	c.h.node.apply(r, from, &c.floods)
}

// Interface guards
var (
	_ caddy.Provisioner  = (*Handler)(nil)
	_ caddy.Validator    = (*Handler)(nil)
	_ layer4.NextHandler = (*Handler)(nil)
)
