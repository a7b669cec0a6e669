package limits

import (
	"math"
	"time"
)

// roundingSlack is how far from empty a bucket's debt may be and still
// count as nothing, so that float rounding never keeps a bucket that is full
// by the clock from being forgotten.
const roundingSlack = 1e-9

// Allowance is what a token bucket allows: PerSecond tokens come back each
// second, and at most Burst are saved up. A zero Allowance limits nothing.
type Allowance struct {
	PerSecond float64
	Burst     float64
}

// Enabled reports whether a limits anything.
func (a Allowance) Enabled() bool { return a.PerSecond > 0 }

// Bucket is a token bucket's state, kept as the tokens it lacks to be
// full rather than the tokens it holds: its zero value is a full bucket, so
// state is made only for those who spend, and a burst lowered by a reload
// applies at once. Its rate is passed in at each use, so a reload changes
// it without touching any bucket. A Bucket is not safe for concurrent
// use; its owner locks it.
type Bucket struct {
	used float64   // tokens taken and not yet given back
	last time.Time // when used was last brought up to date
}

// refill gives back the tokens earned since the last update.
func (b *Bucket) refill(r Allowance, now time.Time) {
	if !r.Enabled() {
		b.used = 0
		return
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.used = b.used - elapsed.Seconds()*r.PerSecond
		if b.used < roundingSlack {
			b.used = 0
		}
		b.last = now
	}
}

// Available reports whether a token can be taken now, without taking it.
func (b *Bucket) Available(r Allowance, now time.Time) bool {
	b.refill(r, now)
	return b.used+1 <= r.Burst
}

// Take spends one token; the caller has just seen Available.
func (b *Bucket) Take() { b.used++ }

// Allow takes a token if one is available and reports whether it did.
func (b *Bucket) Allow(r Allowance, now time.Time) bool {
	if !b.Available(r, now) {
		return false
	}
	b.Take()
	return true
}

// Full reports whether the bucket holds its whole burst, so that forgetting
// it loses nothing.
func (b *Bucket) Full(r Allowance, now time.Time) bool {
	b.refill(r, now)
	return b.used == 0
}

// FullAt returns when the bucket will hold its whole burst again if nothing
// is taken meanwhile.
func (b *Bucket) FullAt(r Allowance) time.Time {
	if b.used == 0 || !r.Enabled() {
		return b.last
	}
	wait := math.Ceil(b.used / r.PerSecond * float64(time.Second))
	return b.last.Add(time.Duration(min(wait, math.MaxInt64/2)))
}
