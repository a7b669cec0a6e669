package module

import (
	"math"
	"time"
)

// roundingSlack is how far from empty a bucket's debt may be and still
// count as nothing, so that float rounding never keeps a bucket that is full
// by the clock from being forgotten.
const roundingSlack = 1e-9

// rate is what a token bucket allows: perSecond tokens come back each
// second, and at most burst are saved up. A zero rate limits nothing.
type rate struct {
	perSecond float64
	burst     float64
}

// enabled reports whether r limits anything.
func (r rate) enabled() bool { return r.perSecond > 0 }

// tokenBucket is a token bucket's state, kept as the tokens it lacks to be
// full rather than the tokens it holds: its zero value is a full bucket, so
// state is made only for those who spend, and a burst lowered by a reload
// applies at once. Its rate is passed in at each use, so a reload changes
// it without touching any bucket. A tokenBucket is not safe for concurrent
// use; its owner locks it.
type tokenBucket struct {
	used float64   // tokens taken and not yet given back
	last time.Time // when used was last brought up to date
}

// refill gives back the tokens earned since the last update.
func (b *tokenBucket) refill(r rate, now time.Time) {
	if !r.enabled() {
		b.used = 0
		return
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.used = b.used - elapsed.Seconds()*r.perSecond
		if b.used < roundingSlack {
			b.used = 0
		}
		b.last = now
	}
}

// available reports whether a token can be taken now, without taking it.
func (b *tokenBucket) available(r rate, now time.Time) bool {
	b.refill(r, now)
	return b.used+1 <= r.burst
}

// take spends one token; the caller has just seen available.
func (b *tokenBucket) take() { b.used++ }

// allow takes a token if one is available and reports whether it did.
func (b *tokenBucket) allow(r rate, now time.Time) bool {
	if !b.available(r, now) {
		return false
	}
	b.take()
	return true
}

// full reports whether the bucket holds its whole burst, so that forgetting
// it loses nothing.
func (b *tokenBucket) full(r rate, now time.Time) bool {
	b.refill(r, now)
	return b.used == 0
}

// fullAt returns when the bucket will hold its whole burst again if nothing
// is taken meanwhile.
func (b *tokenBucket) fullAt(r rate) time.Time {
	if b.used == 0 || !r.enabled() {
		return b.last
	}
	wait := math.Ceil(b.used / r.perSecond * float64(time.Second))
	return b.last.Add(time.Duration(min(wait, math.MaxInt64/2)))
}
