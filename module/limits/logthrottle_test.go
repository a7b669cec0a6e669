package limits

import (
	"testing"
	"time"
)

func TestLogThrottle(t *testing.T) {
	var l LogThrottle
	start := time.Now()
	if ok, held := l.Allow(start, time.Second); !ok || held != 0 {
		t.Fatalf("first entry: %v, %d", ok, held)
	}
	for range 5 {
		if ok, _ := l.Allow(start.Add(500*time.Millisecond), time.Second); ok {
			t.Fatal("an entry within the interval was let through")
		}
	}
	if ok, held := l.Allow(start.Add(time.Second), time.Second); !ok || held != 5 {
		t.Errorf("after the interval: %v, held %d; want true, 5", ok, held)
	}
}
