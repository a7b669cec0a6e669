package peering

import (
	"math/rand/v2"
	"time"
)

// Redial limits: the first retry comes after about minBackoff, each failure
// doubles the delay up to maxBackoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// backoff returns the delay before redial number attempt (0 for the first):
// the exponential delay with jitter drawn from its upper half, so that servers
// which lost a peer together do not redial in lockstep.
func backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 16 {
		d = min(minBackoff<<attempt, maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}
