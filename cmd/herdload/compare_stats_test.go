package main

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestSeriesMedian(t *testing.T) {
	for _, c := range []struct {
		in   series
		want float64
	}{
		{series{3}, 3},
		{series{3, 1, 2}, 2},
		{series{4, 1, 3, 2}, 2.5},
		{series{10, 10, 1, 1000, 10}, 10},
	} {
		if got := c.in.median(); got != c.want {
			t.Errorf("median of %v = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(series{}.median()) {
		t.Error("the median of nothing is a number")
	}
}

func TestMedianLeavesTheSeriesInOrder(t *testing.T) {
	s := series{3, 1, 2}
	s.median()
	if s[0] != 3 || s[1] != 1 || s[2] != 2 {
		t.Errorf("median reordered the rounds: %v", s)
	}
}

func TestRatioRoundsAndRefusesZero(t *testing.T) {
	if got := ratio(2, 3); got != 0.6667 {
		t.Errorf("ratio(2, 3) = %v, want 0.6667", got)
	}
	if !math.IsNaN(ratio(1, 0)) || !math.IsNaN(ratio(math.NaN(), 1)) {
		t.Error("a ratio to nothing is a number")
	}
}

func TestSpreadFormatsOneOrManyRounds(t *testing.T) {
	for _, c := range []struct {
		in   series
		want string
	}{
		{series{0.8912}, "0.89"},
		{series{0.89, 1.02, 0.86}, "0.89 (0.86-1.02)"},
		{series{1, 2}, "1.50 (1.00-2.00)"},
		{series{1, math.NaN()}, "-"},
		{nil, "-"},
	} {
		if got := c.in.spread(); got != c.want {
			t.Errorf("spread of %v = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestRoundsRatiosArePerRound checks the rounds logic: each round's herd
// figure is divided by the same round's baseline, and the row shows the
// median of those ratios with their range, not the ratio of the medians.
func TestRoundsRatiosArePerRound(t *testing.T) {
	herd := series{100, 200, 90}
	raw := series{200, 200, 100}
	var seen []int
	err := collectRounds(3, func(i int) error {
		seen = append(seen, i)
		return nil
	})
	if err != nil || len(seen) != 3 || seen[2] != 2 {
		t.Fatalf("collectRounds ran %v, %v", seen, err)
	}
	if got := herd.over(raw).spread(); got != "0.90 (0.50-1.00)" {
		t.Errorf("per-round ratios %q", got)
	}
	if got := herd.median() / raw.median(); got == 0.9 {
		t.Error("the test does not tell the two apart")
	}
	if got := herd.overValue(100).spread(); got != "1.00 (0.90-2.00)" {
		t.Errorf("ratios to a fixed figure %q", got)
	}
}

func TestCollectRoundsStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	runs := 0
	err := collectRounds(3, func(i int) error {
		runs++
		if i == 1 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || runs != 2 || !strings.Contains(err.Error(), "round 2") {
		t.Errorf("err %v after %d runs", err, runs)
	}
}

func TestRoundsNoteOnlyWithRounds(t *testing.T) {
	if roundsNote(1, "x") != "" {
		t.Error("a note for one round")
	}
	if got := roundsNote(3, "herd, raw"); got != "# each row: 3 rounds of herd, raw in turn; medians, and each ratio's range over the rounds" {
		t.Errorf("note %q", got)
	}
}

func TestNumberAndFixed(t *testing.T) {
	if number(1295.5) != "1295.5" || number(12) != "12" || number(math.NaN()) != "-" {
		t.Errorf("number: %s %s %s", number(1295.5), number(12), number(math.NaN()))
	}
	if fixed(2.345, 2) != "2.35" && fixed(2.345, 2) != "2.34" || fixed(math.Inf(1), 0) != "-" {
		t.Errorf("fixed: %s", fixed(2.345, 2))
	}
}

func TestTableAlignsColumns(t *testing.T) {
	var b strings.Builder
	tw := newTable(&b)
	writeRow(tw, "note", "C", "herd/s")
	writeRow(tw, "free text", "1", "12345")
	writeRow(tw, "", "10", "-")
	tw.Flush()
	want := "   C  herd/s   note\n   1   12345   free text\n  10       -\n"
	if b.String() != want {
		t.Errorf("table %q, want %q", b.String(), want)
	}
}
