package logwriter

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// maxSpareChunks bounds the written chunks kept for reuse: a burst that
// queued many leaves no more than this much memory behind.
const maxSpareChunks = 4

// handoff passes chunks of log entries to one goroutine that writes them to
// the destination, so that a caller never waits on the destination. Past
// maxBacklog bytes waiting, a chunk is dropped whole and its entries
// counted. It never returns an error: the buffer in front of it would keep
// the error and stop writing for good.
type handoff struct {
	dest       io.Writer
	maxBacklog int
	drops      *dropCounter

	mu      sync.Mutex
	queue   [][]byte
	queued  int
	spare   [][]byte
	writing bool // the goroutine holds chunks taken off the queue
	direct  bool // writes go to dest at once, from the caller
	closed  bool
	idle    *sync.Cond // broadcast when the queue is empty and nothing is being written

	// destMu orders the goroutine's writes with the direct ones.
	destMu sync.Mutex
	wake   chan struct{}
	done   chan struct{}
}

func newHandoff(dest io.Writer, maxBacklog int, drops *dropCounter) *handoff {
	h := &handoff{
		dest:       dest,
		maxBacklog: maxBacklog,
		drops:      drops,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	h.idle = sync.NewCond(&h.mu)
	go h.run()
	return h
}

// Write queues a copy of p for the destination, or drops it when the
// backlog is full.
func (h *handoff) Write(p []byte) (int, error) {
	h.mu.Lock()
	if h.direct {
		h.mu.Unlock()
		// A destination that stalled the goroutine would stall the caller.
		if !h.destMu.TryLock() {
			h.drops.add(entriesIn(p))
			return len(p), nil
		}
		defer h.destMu.Unlock()
		if _, err := h.dest.Write(p); err != nil {
			h.drops.failed(entriesIn(p), err)
		}
		return len(p), nil
	}
	if h.queued+len(p) > h.maxBacklog {
		h.mu.Unlock()
		h.drops.add(entriesIn(p))
		return len(p), nil
	}
	chunk := append(h.takeSpare(), p...)
	h.queue = append(h.queue, chunk)
	h.queued += len(p)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Sync does nothing: the goroutine writes what is queued as soon as it can,
// and waiting for it is what a caller must not do.
func (h *handoff) Sync() error { return nil }

func (h *handoff) takeSpare() []byte {
	if n := len(h.spare); n > 0 {
		chunk := h.spare[n-1]
		h.spare = h.spare[:n-1]
		return chunk[:0]
	}
	return nil
}

func (h *handoff) run() {
	defer close(h.done)
	var chunks [][]byte
	for {
		h.mu.Lock()
		for len(h.queue) == 0 && !h.closed {
			h.writing = false
			h.idle.Broadcast()
			h.mu.Unlock()
			<-h.wake
			h.mu.Lock()
		}
		if len(h.queue) == 0 {
			h.writing = false
			h.idle.Broadcast()
			h.mu.Unlock()
			return
		}
		h.writing = true
		chunks, h.queue = h.queue, chunks[:0]
		h.mu.Unlock()

		h.destMu.Lock()
		for _, c := range chunks {
			if _, err := h.dest.Write(c); err != nil {
				h.drops.failed(entriesIn(c), err)
			}
		}
		h.destMu.Unlock()

		h.mu.Lock()
		for i, c := range chunks {
			h.queued -= len(c)
			if len(h.spare) < maxSpareChunks {
				h.spare = append(h.spare, c)
			}
			chunks[i] = nil
		}
		h.mu.Unlock()
	}
}

// drain waits until everything queued so far is written, or until timeout,
// and reports whether it was.
func (h *handoff) drain(timeout time.Duration) bool {
	expired := false
	timer := time.AfterFunc(timeout, func() {
		h.mu.Lock()
		expired = true
		h.idle.Broadcast()
		h.mu.Unlock()
	})
	defer timer.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for (len(h.queue) > 0 || h.writing) && !expired {
		h.idle.Wait()
	}
	return len(h.queue) == 0 && !h.writing
}

// writeThrough makes later writes go to the destination from the caller,
// once what is queued was written: a process about to exit has no time left
// for the goroutine.
func (h *handoff) writeThrough(timeout time.Duration) {
	h.drain(timeout)
	h.mu.Lock()
	h.direct = true
	h.mu.Unlock()
}

// close writes what is queued, within timeout, and stops the goroutine;
// later writes go through.
func (h *handoff) close(timeout time.Duration) {
	h.writeThrough(timeout)
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// entriesIn counts the entries in a chunk: every encoder ends an entry with
// a newline.
func entriesIn(p []byte) int64 {
	if n := bytes.Count(p, []byte{'\n'}); n > 0 {
		return int64(n)
	}
	return 1
}
