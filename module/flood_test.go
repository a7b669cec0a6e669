package module

import (
	"strings"
	"testing"
	"unsafe"
)

// TestShareOf checks which lines of a read's updates go to each link: all
// but those the link's peer made or sent.
func TestShareOf(t *testing.T) {
	updates := []struct{ line, from string }{
		{"AT Alpha +0.1 a +1+1 1", ""},
		{"AT Bravo +0.1 b +1+1 1", "Charlie"},
		{"AT Charlie +0.1 c +1+1 1", "Charlie"},
		{"AT Alpha +0.1 d +1+1 1", "Bravo"},
		{"AT Al +0.1 e +1+1 1", ""}, // a name that is a prefix of another
	}
	tests := []struct {
		peer string
		want []int // indexes into updates
	}{
		{"Alpha", []int{1, 2, 4}},
		{"Bravo", []int{0, 2, 4}},
		{"Charlie", []int{0, 3, 4}},
		{"Al", []int{0, 1, 2, 3}},
		{"Delta", []int{0, 1, 2, 3, 4}},
	}
	var f floods
	for _, u := range updates {
		f.lines = append(f.lines, u.line+"\n"...)
		origin := strings.Fields(u.line)[1]
		f.updates = append(f.updates, update{end: len(f.lines), originLen: len(origin), from: u.from})
	}
	for _, tt := range tests {
		var want strings.Builder
		for _, i := range tt.want {
			want.WriteString(updates[i].line + "\n")
		}
		if got := f.shareOf(tt.peer); string(got) != want.String() {
			t.Errorf("shareOf(%q) = %q, want %q", tt.peer, got, want.String())
		}
	}
	if got := f.shareOf("Delta"); unsafe.SliceData(got) != unsafe.SliceData(f.lines) {
		t.Error("a link that takes every line got a copy of them")
	}
}

// TestFloodKeepsLittleMemory floods a burst larger than a connection keeps
// between reads: its memory is let go.
func TestFloodKeepsLittleMemory(t *testing.T) {
	n := newTestNode(t, nil)
	var f floods
	line := []byte("AT Test +0.1 " + strings.Repeat("k", 200) + " +1+1 1")
	for len(f.lines) <= maxKeptFloodBytes {
		f.lines = append(f.lines, line...)
		f.lines = append(f.lines, '\n')
		f.updates = append(f.updates, update{end: len(f.lines), originLen: len("Test")})
		f.changed = true
	}
	n.flood(&f)
	if cap(f.lines) > maxKeptFloodBytes || len(f.updates) != 0 || f.changed {
		t.Errorf("after a flood: %d bytes kept, %d updates, changed %v", cap(f.lines), len(f.updates), f.changed)
	}
}
