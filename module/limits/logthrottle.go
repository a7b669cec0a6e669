package limits

import (
	"sync/atomic"
	"time"
)

// LogThrottle lets one log entry through per interval and counts the ones it
// holds back, so that the next entry can say how many there were.
type LogThrottle struct {
	next atomic.Int64 // unix nanoseconds from which the next entry may go
	held atomic.Int64
}

// Allow reports whether an entry may be logged now and, if so, how many
// were held back since the last one.
func (l *LogThrottle) Allow(now time.Time, interval time.Duration) (bool, int64) {
	next := l.next.Load()
	if now.UnixNano() < next || !l.next.CompareAndSwap(next, now.Add(interval).UnixNano()) {
		l.held.Add(1)
		return false, 0
	}
	return true, l.held.Swap(0)
}
