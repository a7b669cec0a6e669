package module

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-herd/caddy-herd/herdstore"
)

// TestLookAhead reads lines as the handler does and checks that the client
// of every IAMAT and AT line is looked up exactly once, in order, at the
// latest when its line is read: all at the first line when the input is
// buffered whole, batch by batch when the buffer holds only a few lines.
func TestLookAhead(t *testing.T) {
	input := "IAMAT kiwi +34.068930-118.445127 1\n" +
		"WHATSAT kiwi 10 5\n" +
		"AT Farmar +0.1 lime +34.068930-118.445127 2\n" +
		"IAMAT fig +34.068930-118.445127 3\n" +
		"IAMAT plum +34.068930-118.445127 4\n" +
		"IAMAT cut +34" // never completed
	want := []string{"kiwi", "lime", "fig", "plum"}
	lineClients := []string{"kiwi", "", "lime", "fig", "plum"}
	h := &Handler{node: newTestNode(t, nil)}
	small := &session{h: h}
	small.lookAhead([]byte("IAMAT kiwi +34.068930-118.445127 1\n"), bufio.NewReader(strings.NewReader(input)))
	if len(small.clients) != 0 {
		t.Errorf("looked up %q in a table small enough to stay cached", small.clients)
	}
	for i := 0; h.node.store.Cached(); i++ {
		h.node.store.Put(herdstore.NewRecord(fmt.Sprintf("AT Test +0.1 filler-%d +34.068930-118.445127 1", i)))
	}
	for _, size := range []int{4096, 100, 48} {
		c := &session{h: h}
		r := bufio.NewReaderSize(strings.NewReader(input), size)
		var looked []string
		for i, client := range lineClients {
			line, err := r.ReadSlice('\n')
			if err != nil {
				t.Fatalf("buffer %d, line %d: %v", size, i, err)
			}
			c.clients = c.clients[:0]
			c.lookAhead(line, r)
			for _, b := range c.clients {
				looked = append(looked, string(b))
			}
			if client != "" && !slices.Contains(looked, client) {
				t.Errorf("buffer %d: line %d read before its client %s was looked up", size, i, client)
			}
			if size == 4096 && i == 0 && len(c.clients) != len(want) {
				t.Errorf("buffer %d: the first line looked up %d clients, want all %d", size, len(c.clients), len(want))
			}
		}
		if !slices.Equal(looked, want) {
			t.Errorf("buffer %d: looked up %q, want %q", size, looked, want)
		}
		if c.ahead != 0 {
			t.Errorf("buffer %d: %d lines ahead after the last complete one", size, c.ahead)
		}
	}
}
