package logwriter

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// destination records what the writer writes to it; while stalled is open,
// every write waits for it to close, as a full pipe's does.
type destination struct {
	mu      sync.Mutex
	data    bytes.Buffer
	writes  int
	stalled chan struct{}
	closed  bool
}

func (d *destination) Write(p []byte) (int, error) {
	if d.stalled != nil {
		<-d.stalled
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes++
	return d.data.Write(p)
}

func (d *destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

func (d *destination) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.data.String()
}

func testWriter(t *testing.T, dest *destination, size, backlog int) *writer {
	t.Helper()
	b := &Buffered{FlushInterval: caddy.Duration(time.Second), BufferSize: size, MaxBacklog: backlog, dest: caddy.StderrWriter{}}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	return b.newWriter(dest)
}

func entries(from, to int) string {
	var s strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&s, "{\"entry\":%d}\n", i)
	}
	return s.String()
}

func writeEntries(t *testing.T, w *writer, from, to int) {
	t.Helper()
	for line := range strings.Lines(entries(from, to)) {
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
}

func TestBufferedWritesEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dest := &destination{}
		w := testWriter(t, dest, 64<<10, 1<<20)
		defer w.Close()
		writeEntries(t, w, 0, 100)
		synctest.Wait()
		if got := dest.String(); got != "" {
			t.Fatalf("written before the flush interval: %q", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := dest.String(), entries(0, 100); got != want {
			t.Fatalf("after the flush interval the destination holds %d bytes, want the %d written, in order", len(got), len(want))
		}
		if dest.writes != 1 {
			t.Errorf("%d writes to the destination, want 1 for the whole interval", dest.writes)
		}
	})
}

func TestBufferedWritesAFullBufferAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dest := &destination{}
		w := testWriter(t, dest, 4096, 1<<20)
		defer w.Close()
		writeEntries(t, w, 0, 1000) // about 14 KiB
		synctest.Wait()
		got := dest.String()
		if len(got) < 3*4096-100 || !strings.HasPrefix(entries(0, 1000), got) {
			t.Fatalf("the destination holds %d bytes before the interval, want the first three buffers' worth, in order", len(got))
		}
	})
}

// TestBufferedDropsWhatAStalledDestinationCannotTake: writes never wait on a
// destination that takes nothing; past the backlog entries are dropped,
// counted and reported, and what was kept is written in order once the
// destination takes data again.
func TestBufferedDropsWhatAStalledDestinationCannotTake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dest := &destination{stalled: make(chan struct{})}
		w := testWriter(t, dest, 4096, 8192)
		core, warnings := observer.New(zap.WarnLevel)
		w.handoff.drops.logger = zap.New(core)
		defer w.Close()
		before := droppedEntries.Load()

		const total = 2000 // about 28 KiB: three times what buffer and backlog hold
		writeEntries(t, w, 0, total)
		if droppedEntries.Load() == before {
			t.Fatal("nothing was dropped by a destination that took nothing")
		}
		close(dest.stalled)
		if !w.flush(time.Minute) {
			t.Fatal("the flush did not end once the destination took data")
		}
		dropped := droppedEntries.Load() - before
		kept := strings.Count(dest.String(), "\n")
		if int64(kept)+dropped != total {
			t.Errorf("%d entries written and %d dropped, want %d in all", kept, dropped, total)
		}
		// What was kept is whole entries, in the order written.
		last := -1
		for line := range strings.Lines(dest.String()) {
			var n int
			if _, err := fmt.Sscanf(line, "{\"entry\":%d}\n", &n); err != nil || n <= last {
				t.Fatalf("entry %q after entry %d", line, last)
			}
			last = n
		}

		// Warnings: one at the first drop, then at most one per interval,
		// together saying how many were dropped.
		time.Sleep(dropWarnEvery)
		synctest.Wait()
		var warned int64
		for _, e := range warnings.All() {
			warned += e.ContextMap()["dropped"].(int64)
		}
		if warned != dropped {
			t.Errorf("warnings report %d dropped entries, want %d", warned, dropped)
		}
		if n := warnings.Len(); n < 1 || n > 2 {
			t.Errorf("%d warnings for one burst of drops, want one or two", n)
		}
		time.Sleep(dropWarnEvery) // the reporter ends after a quiet interval
	})
}

func TestBufferedCloseWritesEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dest := &destination{}
		w := testWriter(t, dest, 64<<10, 1<<20)
		writeEntries(t, w, 0, 50)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := dest.String(); got != entries(0, 50) || !dest.closed {
			t.Errorf("after Close the destination holds %d bytes, closed %v; want every entry and closed", len(got), dest.closed)
		}
		if err := w.Close(); err != nil {
			t.Errorf("a second Close: %v", err)
		}
	})
}

// TestBufferedCleanupFlushes: the config that used the writer is unloaded
// (a reload, a stop): what it logged is written then, not an interval later.
func TestBufferedCleanupFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dest := &destination{}
		b := &Buffered{FlushInterval: caddy.Duration(time.Hour), BufferSize: 64 << 10, MaxBacklog: 1 << 20, dest: caddy.StderrWriter{}}
		w := b.newWriter(dest)
		register(w)
		defer w.Close()
		writeEntries(t, w, 0, 10)
		if err := b.Cleanup(); err != nil {
			t.Fatal(err)
		}
		if got := dest.String(); got != entries(0, 10) {
			t.Errorf("after Cleanup the destination holds %q", got)
		}
	})
}

// TestBufferedWritesThroughOnExit: once the process exits, what comes after
// the flush is written at once, as there is no interval left to wait for.
func TestBufferedWritesThroughOnExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dest := &destination{}
		w := testWriter(t, dest, 64<<10, 1<<20)
		defer w.Close()
		writeEntries(t, w, 0, 10)
		w.exit(time.Minute)
		if got := dest.String(); got != entries(0, 10) {
			t.Fatalf("after exit the destination holds %q", got)
		}
		writeEntries(t, w, 10, 12)
		if got := dest.String(); got != entries(0, 12) {
			t.Errorf("an entry after exit was not written at once: %q", got)
		}
	})
}

func TestBufferedValidate(t *testing.T) {
	for _, tt := range []struct {
		b    Buffered
		want string
	}{
		{Buffered{FlushInterval: -1, BufferSize: 4096, MaxBacklog: 4096}, "flush_interval"},
		{Buffered{BufferSize: 100, MaxBacklog: 4096}, "buffer_size 100"},
		{Buffered{BufferSize: 8192, MaxBacklog: 4096}, "max_backlog 4096"},
		{Buffered{BufferSize: 4096, MaxBacklog: 4096}, ""},
	} {
		err := tt.b.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Validate(%+v) = %v, want an error naming %q", tt.b, err, tt.want)
		}
	}
}
