package logwriter

import (
	"context"
	"sync"

	"github.com/caddyserver/caddy/v2"
)

// The open writers, by key: a config's Cleanup flushes its writer, and the
// process flushes them all when it exits, since Caddy keeps log writers
// open for as long as the process runs.
var (
	openMu sync.Mutex
	open   = map[string]*writer{}
)

func init() {
	caddy.OnExit(func(context.Context) {
		openMu.Lock()
		writers := make([]*writer, 0, len(open))
		for _, w := range open {
			writers = append(writers, w)
		}
		openMu.Unlock()
		for _, w := range writers {
			w.exit(flushTimeout)
		}
	})
}

func register(w *writer) {
	openMu.Lock()
	defer openMu.Unlock()
	open[w.key] = w
}

func unregister(w *writer) {
	openMu.Lock()
	defer openMu.Unlock()
	if open[w.key] == w {
		delete(open, w.key)
	}
}

func lookup(key string) *writer {
	openMu.Lock()
	defer openMu.Unlock()
	return open[key]
}
