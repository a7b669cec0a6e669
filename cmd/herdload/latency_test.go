package main

import (
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/protocol"
)

func TestPercentileIsNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i + 1)
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"none", nil, 0.5, 0},
		{"one", []time.Duration{7}, 0.99, 7},
		{"p50 of 100", hundred, 0.50, 50},
		{"p99 of 100", hundred, 0.99, 99},
		{"p100 of 100", hundred, 1, 100},
		{"p0 of 100", hundred, 0, 1},
		{"p50 of 3", []time.Duration{1, 2, 3}, 0.50, 2},
		{"p99 of 3", []time.Duration{1, 2, 3}, 0.99, 3},
		{"p50 of 4", []time.Duration{1, 2, 3, 4}, 0.50, 2},
	}
	for _, tt := range tests {
		if got := percentile(tt.samples, tt.p); got != tt.want {
			t.Errorf("%s: percentile(%v) = %d, want %d", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestSummarizeSortsAndFindsTheMaximum(t *testing.T) {
	s := summarize([]time.Duration{5, 1, 9, 3, 7})
	if s.n != 5 || s.p50 != 5 || s.p99 != 9 || s.max != 9 {
		t.Errorf("summary %+v, want n 5, p50 5, p99 9, max 9", s)
	}
}

func TestAppendIndexLocationIsValidAndDistinct(t *testing.T) {
	seen := make(map[string]int)
	for _, i := range []int{0, 1, 9, 999999, 1000000, 1000001, 123456789012} {
		loc := string(appendIndexLocation(nil, i))
		if _, _, ok := protocol.ParseLocation([]byte(loc)); !ok {
			t.Errorf("client %d: location %q is not valid", i, loc)
		}
		if j, dup := seen[loc]; dup {
			t.Errorf("clients %d and %d share the location %q", j, i, loc)
		}
		seen[loc] = i
	}
	if got := string(appendIndexLocation(nil, 1000002)); got != "+34.000002-118.000001" {
		t.Errorf("client 1000002 is at %q, want +34.000002-118.000001", got)
	}
}
