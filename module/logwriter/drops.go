package logwriter

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// dropWarnEvery is the least time between two warnings of one writer about
// dropped entries; each says how many were dropped since the one before.
const dropWarnEvery = 10 * time.Second

// droppedEntries counts the entries every buffered writer of the process
// dropped; it lives as long as the writers, across reloads.
var droppedEntries atomic.Int64

var droppedMetric = prometheus.NewCounterFunc(prometheus.CounterOpts{
	Namespace: "caddy_herd", Name: "log_dropped_entries_total",
	Help: "Log entries a buffered log writer dropped because its destination did not take them in time, or failed.",
}, func() float64 { return float64(droppedEntries.Load()) })

// registerMetrics adds the dropped-entries counter to a config's registry,
// keeping the one already there.
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	if err := reg.Register(droppedMetric); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return err
		}
	}
	return nil
}

// dropCounter counts one writer's dropped entries and reports them: at
// once for the first, then at most every dropWarnEvery while drops go on.
type dropCounter struct {
	writer string
	// logger is where the warnings go: Caddy's default log when nil.
	logger *zap.Logger

	mu      sync.Mutex
	pending int64 // dropped since the last warning
	lastErr error
	armed   bool // a reporter goroutine runs
}

// add counts n entries dropped because the destination is behind.
func (d *dropCounter) add(n int64) { d.count(n, nil) }

// failed counts n entries the destination refused with err.
func (d *dropCounter) failed(n int64, err error) { d.count(n, err) }

func (d *dropCounter) count(n int64, err error) {
	droppedEntries.Add(n)
	d.mu.Lock()
	d.pending += n
	if err != nil {
		d.lastErr = err
	}
	start := !d.armed
	d.armed = true
	d.mu.Unlock()
	// Not from the caller: it may hold the lock of the very buffer the
	// warning would be written to.
	if start {
		go d.report()
	}
}

func (d *dropCounter) report() {
	for {
		d.mu.Lock()
		n, err := d.pending, d.lastErr
		d.pending, d.lastErr = 0, nil
		if n == 0 {
			d.armed = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		fields := []zap.Field{zap.String("writer", d.writer), zap.Int64("dropped", n)}
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		logger := d.logger
		if logger == nil {
			logger = caddy.Log().Named("logging.writers.herd_buffered")
		}
		logger.Warn("log entries dropped: the destination did not take them in time", fields...)
		time.Sleep(dropWarnEvery)
	}
}
