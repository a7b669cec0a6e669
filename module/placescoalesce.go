package module

import (
	"context"
	"sync"
)

// flightGroup coalesces concurrent calls for the same key into one call,
// whose result every caller shares. A call is forgotten as soon as it
// returns, so the group holds only the calls in progress: the next caller
// for that key starts a new one.
type flightGroup[K comparable, V any] struct {
	mu      sync.Mutex
	flights map[K]*flight[V]

	// onJoin, if set, is called with the key each time a caller joins a
	// call already in progress. Tests use it to know that callers overlap.
	onJoin func(K)
}

// flight is one call in progress and, once done is closed, its result.
type flight[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do returns the result of fn for key: it starts fn unless a call for key is
// already in progress, and waits for that call either way. fn runs in a
// goroutine of its own, so a caller whose ctx ends returns ctx.Err() at once
// and the call goes on for the callers still waiting: a context for the
// call itself is fn's to choose. shared reports whether the result came from a call
// another caller started.
//
// start, if not nil, is called under the group's lock when no call for key
// is in progress, just before one would start, so that no call for key can
// begin or end meanwhile: it may answer without a call (done), refuse with
// an error, or let the call start. Either of the first two answers only
// this caller.
func (g *flightGroup[K, V]) do(ctx context.Context, key K, start func() (val V, done bool, err error), fn func() (V, error)) (val V, err error, shared bool) {
	g.mu.Lock()
	f, joined := g.flights[key]
	if !joined && start != nil {
		if val, done, err := start(); done || err != nil {
			g.mu.Unlock()
			return val, err, false
		}
	}
	if !joined {
		if g.flights == nil {
			g.flights = make(map[K]*flight[V])
		}
		f = &flight[V]{done: make(chan struct{})}
		g.flights[key] = f
		go g.run(key, f, fn)
	}
	g.mu.Unlock()
	if joined && g.onJoin != nil {
		g.onJoin(key)
	}

	select {
	case <-f.done:
		return f.val, f.err, joined
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err(), false
	}
}

// run calls fn, forgets the flight, then hands its result to the waiters.
// The flight is forgotten first, so that a caller arriving after the result
// is out starts afresh rather than sharing a finished call.
func (g *flightGroup[K, V]) run(key K, f *flight[V], fn func() (V, error)) {
	f.val, f.err = fn()
	g.mu.Lock()
	delete(g.flights, key)
	g.mu.Unlock()
	close(f.done)
}
