// Package logwriter holds a Caddy log writer that buffers entries in memory
// and writes them from a goroutine of its own, so that a busy server's log
// costs a copy per entry rather than a write(2), and a destination that
// stalls costs dropped entries rather than a stalled server.
package logwriter

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap/zapcore"
)

func init() {
	caddy.RegisterModule(Buffered{})
}

// Defaults and bounds of the buffered writer.
const (
	defaultFlushInterval = time.Second
	defaultBufferSize    = 256 << 10
	defaultMaxBacklog    = 16 << 20
	minBufferSize        = 4 << 10
	// flushTimeout bounds how long a reload or a stop waits for a slow
	// destination to take the buffered entries.
	flushTimeout = 5 * time.Second
)

// Buffered is a log writer that collects entries in a buffer and writes them
// to another log writer when the buffer is full and every flush interval,
// from a goroutine of its own. A server never waits on the destination: when
// it falls behind by more than the maximum backlog, entries are dropped,
// counted in the `caddy_herd_log_dropped_entries_total` metric and reported
// by a warning at most every ten seconds.
//
// The buffer is written out when the config that uses it is unloaded (a
// reload or a stop) and when the process exits. A process that is killed
// loses the entries of the last flush interval.
type Buffered struct {
	// Writer is where the entries are written: any log writer module, such
	// as `file` or `net`. Default: `stderr`.
	WriterRaw json.RawMessage `json:"writer,omitempty" caddy:"namespace=caddy.logging.writers inline_key=output"`

	// FlushInterval is the longest an entry waits in the buffer before it
	// is written. Default: 1s.
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`

	// BufferSize is how many bytes of entries are collected before they are
	// written. Default: 256 KiB.
	BufferSize int `json:"buffer_size,omitempty"`

	// MaxBacklog is how many bytes of entries may wait for a destination
	// that is slower than the server; entries beyond it are dropped.
	// Default: 16 MiB.
	MaxBacklog int `json:"max_backlog,omitempty"`

	dest caddy.WriterOpener
}

// CaddyModule returns the Caddy module information.
func (Buffered) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.writers.herd_buffered",
		New: func() caddy.Module { return new(Buffered) },
	}
}

// Provision loads the destination writer and sets the defaults.
func (b *Buffered) Provision(ctx caddy.Context) error {
	if b.WriterRaw != nil {
		mod, err := ctx.LoadModule(b, "WriterRaw")
		if err != nil {
			return fmt.Errorf("loading the destination log writer: %w", err)
		}
		b.dest = mod.(caddy.WriterOpener)
	} else {
		b.dest = caddy.StderrWriter{}
	}
	if b.FlushInterval == 0 {
		b.FlushInterval = caddy.Duration(defaultFlushInterval)
	}
	if b.BufferSize == 0 {
		b.BufferSize = defaultBufferSize
	}
	if b.MaxBacklog == 0 {
		b.MaxBacklog = defaultMaxBacklog
	}
	return registerMetrics(ctx.GetMetricsRegistry())
}

// Validate checks the sizes and the interval.
func (b *Buffered) Validate() error {
	if b.FlushInterval < 0 {
		return fmt.Errorf("flush_interval %s: must not be negative", time.Duration(b.FlushInterval))
	}
	if b.BufferSize < minBufferSize {
		return fmt.Errorf("buffer_size %d: must be at least %d bytes", b.BufferSize, minBufferSize)
	}
	if b.MaxBacklog < b.BufferSize {
		return fmt.Errorf("max_backlog %d: must be at least buffer_size (%d bytes)", b.MaxBacklog, b.BufferSize)
	}
	return nil
}

// Cleanup writes out what the buffer holds: the config that used it is
// being unloaded. Caddy keeps the writer open for the next config.
func (b *Buffered) Cleanup() error {
	if b.dest == nil {
		return nil
	}
	if w := lookup(b.WriterKey()); w != nil {
		w.flush(flushTimeout)
	}
	return nil
}

func (b *Buffered) String() string {
	return "buffered " + b.dest.String()
}

// WriterKey identifies the writer by its destination and its settings.
func (b *Buffered) WriterKey() string {
	return fmt.Sprintf("herd_buffered:%d:%d:%d:%s", b.FlushInterval, b.BufferSize, b.MaxBacklog, b.dest.WriterKey())
}

// OpenWriter opens the destination and starts the buffer in front of it.
func (b *Buffered) OpenWriter() (io.WriteCloser, error) {
	dest, err := b.dest.OpenWriter()
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", b.dest, err)
	}
	w := b.newWriter(dest)
	register(w)
	return w, nil
}

func (b *Buffered) newWriter(dest io.WriteCloser) *writer {
	w := &writer{
		key:     b.WriterKey(),
		dest:    dest,
		handoff: newHandoff(dest, b.MaxBacklog, &dropCounter{writer: b.String()}),
	}
	w.buf = &zapcore.BufferedWriteSyncer{
		WS:            w.handoff,
		Size:          b.BufferSize,
		FlushInterval: time.Duration(b.FlushInterval),
	}
	return w
}

// writer is an open buffered writer: zap's buffered write syncer in front of
// a handoff to the goroutine that writes the destination.
type writer struct {
	key     string
	dest    io.WriteCloser
	buf     *zapcore.BufferedWriteSyncer
	handoff *handoff
	// exiting is set before the process exits: entries are written as
	// they come.
	exiting atomic.Bool
	close   sync.Once
}

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	if w.exiting.Load() {
		w.buf.Sync()
	}
	return n, err
}

// flush writes the buffer to the destination, waiting up to timeout for it,
// and reports whether everything was written.
func (w *writer) flush(timeout time.Duration) bool {
	w.buf.Sync()
	return w.handoff.drain(timeout)
}

// exit writes the buffer out and makes later entries go to the destination
// as they come: the process has no flush interval left.
func (w *writer) exit(timeout time.Duration) {
	w.exiting.Store(true)
	w.buf.Sync()
	w.handoff.writeThrough(timeout)
}

// Close writes out the buffer and closes the destination.
func (w *writer) Close() error {
	var err error
	w.close.Do(func() {
		unregister(w)
		err = w.buf.Stop()
		w.handoff.close(flushTimeout)
		if cerr := w.dest.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// Interface guards
var (
	_ caddy.Provisioner  = (*Buffered)(nil)
	_ caddy.Validator    = (*Buffered)(nil)
	_ caddy.CleanerUpper = (*Buffered)(nil)
	_ caddy.WriterOpener = (*Buffered)(nil)
)
