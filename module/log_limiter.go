package module

import (
	"sync/atomic"
	"time"
)

// logLimiter lets one log entry through per interval and counts the ones it
// holds back, so that the next entry can say how many there were.
type logLimiter struct {
	next atomic.Int64 // unix nanoseconds from which the next entry may go
	held atomic.Int64
}

// allow reports whether an entry may be logged now and, if so, how many
// were held back since the last one.
func (l *logLimiter) allow(now time.Time, interval time.Duration) (bool, int64) {
	next := l.next.Load()
	if now.UnixNano() < next || !l.next.CompareAndSwap(next, now.Add(interval).UnixNano()) {
		l.held.Add(1)
		return false, 0
	}
	return true, l.held.Swap(0)
}
