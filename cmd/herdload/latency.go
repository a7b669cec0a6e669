package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// summary is the distribution of a set of latency samples.
type summary struct {
	n             int
	p50, p99, max time.Duration
}

// summarize sorts samples in place and returns their distribution.
func summarize(samples []time.Duration) summary {
	slices.Sort(samples)
	s := summary{n: len(samples), p50: percentile(samples, 0.50), p99: percentile(samples, 0.99)}
	if len(samples) > 0 {
		s.max = samples[len(samples)-1]
	}
	return s
}

// percentile returns the nearest-rank p-th percentile of sorted samples: the
// smallest sample that at least a fraction p of all samples do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps 0.99*100, which is 99.00000000000001 in floating
	// point, at rank 99.
	rank := int(math.Ceil(p*float64(len(sorted))-1e-9)) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// micros formats d in microseconds with one decimal.
func micros(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d.Nanoseconds())/1e3)
}

// microsValue is d in microseconds, rounded to a tenth as micros prints it.
func microsValue(d time.Duration) float64 {
	return math.Round(float64(d.Nanoseconds())/1e2) / 10
}
