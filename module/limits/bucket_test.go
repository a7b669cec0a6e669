package limits

import (
	"testing"
	"time"
)

// TestTokenBucket drives a bucket through a script of takes and clock steps
// and checks each answer: the burst is available at once, tokens come back
// at the rate, a bucket never saves more than its burst, and a burst
// lowered by a reload applies at once.
func TestTokenBucket(t *testing.T) {
	type step struct {
		wait time.Duration // advance the clock first
		r    Allowance     // the rate in force at this step
		want bool          // whether the take succeeds
	}
	tenPerSecond := Allowance{PerSecond: 10, Burst: 3}
	onePerMinute := Allowance{PerSecond: 1.0 / 60, Burst: 1}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst then empty", []step{
			{0, tenPerSecond, true}, {0, tenPerSecond, true}, {0, tenPerSecond, true}, {0, tenPerSecond, false},
		}},
		{"refills at the rate", []step{
			{0, tenPerSecond, true}, {0, tenPerSecond, true}, {0, tenPerSecond, true},
			{99 * time.Millisecond, tenPerSecond, false},
			{time.Millisecond, tenPerSecond, true},
			{0, tenPerSecond, false},
		}},
		{"saves at most the burst", []step{
			{time.Hour, tenPerSecond, true}, {0, tenPerSecond, true}, {0, tenPerSecond, true}, {0, tenPerSecond, false},
		}},
		{"slow rate", []step{
			{0, onePerMinute, true}, {59 * time.Second, onePerMinute, false}, {time.Second, onePerMinute, true},
		}},
		{"lowered burst applies at once", []step{
			{0, tenPerSecond, true},
			{0, Allowance{PerSecond: 10, Burst: 1}, false},
			{100 * time.Millisecond, Allowance{PerSecond: 10, Burst: 1}, true},
		}},
		{"raised burst gives the difference", []step{
			{0, tenPerSecond, true}, {0, tenPerSecond, true}, {0, tenPerSecond, true},
			{0, Allowance{PerSecond: 10, Burst: 5}, true}, {0, Allowance{PerSecond: 10, Burst: 5}, true},
			{0, Allowance{PerSecond: 10, Burst: 5}, false},
		}},
		{"no rate limits nothing", []step{
			{0, Allowance{}, true}, {0, Allowance{}, true}, {0, Allowance{}, true}, {0, Allowance{}, true}, {0, Allowance{}, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Bucket
			now := time.Unix(1_700_000_000, 0)
			for i, s := range tt.steps {
				now = now.Add(s.wait)
				got := !s.r.Enabled() || b.Allow(s.r, now)
				if got != s.want {
					t.Errorf("step %d: take = %v, want %v (debt %v)", i, got, s.want, b.used)
				}
			}
		})
	}
}

// TestTokenBucketFullAt checks that a bucket is full exactly when fullAt
// says, which is what lets an idle IP be forgotten without losing anything.
func TestTokenBucketFullAt(t *testing.T) {
	for _, r := range []Allowance{{PerSecond: 10, Burst: 3}, {PerSecond: 1.0 / 60, Burst: 10}, {PerSecond: 3, Burst: 7}} {
		var b Bucket
		now := time.Unix(1_700_000_000, 0)
		if !b.Full(r, now) || !b.FullAt(r).Equal(b.last) {
			t.Fatalf("%+v: a new bucket is not full", r)
		}
		for b.Allow(r, now) {
		}
		at := b.FullAt(r)
		if b.Full(r, at.Add(-time.Millisecond)) {
			t.Errorf("%+v: full before %v", r, at)
		}
		if !b.Full(r, at) {
			t.Errorf("%+v: not full at %v (debt %v)", r, at, b.used)
		}
	}
}
