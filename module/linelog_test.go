package module

import (
	"fmt"
	"testing"

	"go.uber.org/zap/zapcore"
)

// TestLogOffDoesNotAllocate: with the handler's log at INFO, as Caddy's
// default log is, handling a line builds no entry and allocates nothing;
// at DEBUG the same lines are collected for the log.
func TestLogOffDoesNotAllocate(t *testing.T) {
	for _, tt := range []struct {
		level  zapcore.Level
		logged bool
	}{{zapcore.InfoLevel, false}, {zapcore.DebugLevel, true}} {
		n := newTestNode(t, nil)
		h := testHandler(n)
		h.logger = discardingLogger(tt.level)
		c := &session{h: h, log: h.logger}
		c.debug = c.log.Core().Enabled(zapcore.DebugLevel)
		var lines [][]byte
		for i := range 300 {
			lines = append(lines, fmt.Appendf(nil, "IAMAT client-%d +34.068930-118.445127 1520023934.%09d\n", i%10, i))
		}
		next := 0
		handle := func() {
			c.handleLine(lines[next])
			next++
			c.out = c.out[:0]
		}
		for range 10 { // the session's buffers reach their size
			handle()
		}
		c.logLines()
		allocs := testing.AllocsPerRun(200, handle)
		if !tt.logged && allocs != 0 {
			t.Errorf("handling a line with the log at %s allocates %v times, want 0", tt.level, allocs)
		}
		if got := !c.lines.empty(); got != tt.logged {
			t.Errorf("log at %s: lines collected for the log %v, want %v", tt.level, got, tt.logged)
		}
	}
}
