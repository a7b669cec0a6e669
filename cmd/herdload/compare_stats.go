package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// series is one figure measured once per round.
type series []float64

// median is the middle value, or the mean of the two middle ones; NaN when
// there is none.
func (s series) median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// sum adds the values up.
func (s series) sum() float64 {
	var total float64
	for _, v := range s {
		total += v
	}
	return total
}

// over divides each round's value by the same round's value in den: the
// ratio of a figure to its baseline, round by round. A round without a
// baseline (or with a zero one) gives NaN.
func (s series) over(den series) series {
	out := make(series, len(s))
	for i := range s {
		if i < len(den) {
			out[i] = ratio(s[i], den[i])
		} else {
			out[i] = math.NaN()
		}
	}
	return out
}

// overValue divides each value by v.
func (s series) overValue(v float64) series {
	out := make(series, len(s))
	for i := range s {
		out[i] = ratio(s[i], v)
	}
	return out
}

// ratio is a/b rounded to four decimals, as ratios are kept before they are
// summarized; NaN when b is zero or either is not a number.
func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Round(a/b*1e4) / 1e4
}

// spread formats ratios measured over rounds: the one ratio with two
// decimals, or with more than one round the median and, in parentheses,
// the range: "0.89 (0.86-1.02)". A missing figure is "-".
func (s series) spread() string {
	if len(s) == 0 || slices.ContainsFunc(s, math.IsNaN) {
		return "-"
	}
	if len(s) == 1 {
		return fmt.Sprintf("%.2f", s[0])
	}
	return fmt.Sprintf("%.2f (%.2f-%.2f)", s.median(), slices.Min(s), slices.Max(s))
}

// fixed formats v with the given decimals, "-" when it is not a number.
func fixed(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// number formats v as briefly as it is exact (a median of latencies in
// tenths of a microsecond stays in tenths), "-" when it is not a number.
func number(v float64) string {
	return fixed(v, -1)
}

// collectRounds runs round n times, for round 0 .. n-1: each round measures
// the herd and its baselines in turn, so that the ratios of a round compare
// runs made under the same conditions.
func collectRounds(n int, round func(i int) error) error {
	for i := range max(n, 1) {
		if err := round(i); err != nil {
			return fmt.Errorf("round %d: %w", i+1, err)
		}
	}
	return nil
}

// roundsNote is the comment line that says, with more than one round, how a
// table's rows were measured; empty with one round.
func roundsNote(rounds int, what string) string {
	if rounds <= 1 {
		return ""
	}
	return fmt.Sprintf("# each row: %d rounds of %s in turn; medians, and each ratio's range over the rounds", rounds, what)
}

// newTable returns a writer that aligns tab-separated cells in columns,
// right-aligned as figures read best. Flush it to print the table.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// writeRow writes one row of cells to a table, then note, free text outside
// the columns, when there is one.
func writeRow(w io.Writer, note string, cells ...string) {
	line := strings.Join(cells, "\t") + "\t"
	if note != "" {
		line += "   " + note
	}
	io.WriteString(w, line+"\n")
}
