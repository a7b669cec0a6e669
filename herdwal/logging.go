package herdwal

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// failureKind is what failed: writes and fsyncs fail and recover apart (a
// disk may take writes into the page cache and fail to flush them).
type failureKind int

const (
	failWrite failureKind = iota
	failSync
	failureKinds
)

// failed records a failure being retried, for Stats, and warns of it at most
// every warnInterval.
func (l *Log) failed(kind failureKind, doing, file string, err error) {
	err = fmt.Errorf("%s %s: %w", doing, file, err)
	l.mu.Lock()
	l.failures[kind] = err
	l.mu.Unlock()
	l.warn("herd storage: "+doing+" failed; retrying", file, err)
}

// succeeded clears a failure of kind once it works again.
func (l *Log) succeeded(kind failureKind) {
	l.mu.Lock()
	err := l.failures[kind]
	l.failures[kind] = nil
	l.mu.Unlock()
	if err != nil {
		l.logger.Info("herd storage: works again", zapDir(l.dir), zap.String("failed", err.Error()))
	}
}

// warnInterval bounds how often a failure that goes on is logged: a disk
// that fails every retry must not flood the log.
const warnInterval = 10 * time.Second

// warn logs msg, unless it was logged less than warnInterval ago.
func (l *Log) warn(msg, file string, err error) {
	l.mu.Lock()
	now := time.Now()
	if last, ok := l.lastWarn[msg]; ok && now.Sub(last) < warnInterval {
		l.mu.Unlock()
		return
	}
	if l.lastWarn == nil {
		l.lastWarn = map[string]time.Time{}
	}
	l.lastWarn[msg] = now
	l.mu.Unlock()
	l.logger.Warn(msg, zapFile(file), zapError(err))
}

// Fields of the log's messages.

func zapDir(dir string) zap.Field {
	return zap.String("dir", dir)
}

func zapFile(name string) zap.Field {
	return zap.String("file", name)
}

func zapError(err error) zap.Field {
	return zap.Error(err)
}

func zapRetryIn(d time.Duration) zap.Field {
	return zap.Duration("retry_in", d)
}
