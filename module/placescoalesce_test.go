package module

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitFor receives from ch, failing the test if nothing comes within a
// generous bound; what it waits for is a condition, never a delay.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestFlightGroupSharesOneCall(t *testing.T) {
	const callers = 10
	var g flightGroup[string, int]
	joined := make(chan string, callers)
	g.onJoin = func(key string) { joined <- key }
	started := make(chan struct{}, callers)
	release := make(chan struct{})
	calls := 0 // only ever touched by the one call, if coalescing works
	fn := func() (int, error) {
		calls++
		started <- struct{}{}
		<-release
		return 42, nil
	}

	type result struct {
		val    int
		err    error
		shared bool
	}
	results := make(chan result, callers)
	for range callers {
		go func() {
			v, err, shared := g.do(context.Background(), "k", nil, fn)
			results <- result{v, err, shared}
		}()
	}
	waitFor(t, started, "the call to start")
	for range callers - 1 {
		if key := waitFor(t, joined, "a caller to join"); key != "k" {
			t.Errorf("joined %q", key)
		}
	}
	close(release)
	sharedCount := 0
	for range callers {
		r := waitFor(t, results, "a result")
		if r.val != 42 || r.err != nil {
			t.Errorf("got %d, %v; want 42, nil", r.val, r.err)
		}
		if r.shared {
			sharedCount++
		}
	}
	if calls != 1 || sharedCount != callers-1 {
		t.Errorf("%d calls and %d shared results, want 1 and %d", calls, sharedCount, callers-1)
	}
	if n := len(g.flights); n != 0 {
		t.Errorf("%d flights left after the call returned", n)
	}
}

func TestFlightGroupDifferentKeysDoNotShare(t *testing.T) {
	var g flightGroup[string, string]
	started := make(chan string, 2)
	release := make(chan struct{})
	results := make(chan string, 2)
	for _, key := range []string{"a", "b"} {
		go func() {
			v, _, _ := g.do(context.Background(), key, nil, func() (string, error) {
				started <- key
				<-release
				return key, nil
			})
			results <- v
		}()
	}
	// Both calls are running at once: neither waits for the other.
	waitFor(t, started, "the first call")
	waitFor(t, started, "the second call")
	close(release)
	got := map[string]bool{waitFor(t, results, "a result"): true, waitFor(t, results, "a result"): true}
	if !got["a"] || !got["b"] {
		t.Errorf("results %v, want a and b", got)
	}
}

// TestFlightGroupCallerLeavingCancelsNothing ends the starting caller's
// context while the call runs: that caller gives up at once, and the call
// goes on for the one still waiting.
func TestFlightGroupCallerLeavingCancelsNothing(t *testing.T) {
	var g flightGroup[string, string]
	joined := make(chan string, 1)
	g.onJoin = func(key string) { joined <- key }
	started := make(chan struct{})
	release := make(chan struct{})
	fn := func() (string, error) {
		close(started)
		<-release
		return "answer", nil
	}

	leaving, leave := context.WithCancel(context.Background())
	leaver := make(chan error, 1)
	go func() {
		_, err, _ := g.do(leaving, "k", nil, fn)
		leaver <- err
	}()
	waitFor(t, started, "the call to start")
	stayer := make(chan string, 1)
	go func() {
		v, _, _ := g.do(context.Background(), "k", nil, fn)
		stayer <- v
	}()
	waitFor(t, joined, "the second caller to join")

	leave()
	if err := waitFor(t, leaver, "the leaving caller"); !errors.Is(err, context.Canceled) {
		t.Errorf("the leaving caller got %v, want context.Canceled", err)
	}
	close(release)
	if v := waitFor(t, stayer, "the staying caller"); v != "answer" {
		t.Errorf("the staying caller got %q", v)
	}
}

func TestFlightGroupSharesErrorsAndForgetsThem(t *testing.T) {
	var g flightGroup[int, int]
	joined := make(chan int, 3)
	g.onJoin = func(key int) { joined <- key }
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	down := errors.New("down")
	fn := func() (int, error) {
		started <- struct{}{}
		<-release
		return 0, down
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err, _ := g.do(context.Background(), 1, nil, fn)
			errs <- err
		}()
	}
	waitFor(t, started, "the call to start")
	for range 3 {
		waitFor(t, joined, "a caller to join")
	}
	close(release)
	for range 4 {
		if err := waitFor(t, errs, "an error"); !errors.Is(err, down) {
			t.Errorf("got %v, want %v", err, down)
		}
	}
	// The failed call is forgotten: the next caller calls again.
	if _, err, shared := g.do(context.Background(), 1, nil, fn); !errors.Is(err, down) || shared {
		t.Errorf("the next call: %v, shared %v; want a call of its own", err, shared)
	}
	if len(started) != 1 {
		t.Errorf("the next caller did not call again")
	}
}
