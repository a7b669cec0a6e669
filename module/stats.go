package module

import (
	"sync/atomic"
	"time"

	"github.com/caddy-herd/caddy-herd/module/limits"
	"github.com/caddy-herd/caddy-herd/protocol"
)

// results of a message.
const (
	resultOK = iota
	resultInvalid
	resultCount
)

// commandCount is the number of protocol.Command values, Invalid included:
// an invalid message is counted under the command its first word names, or
// under Invalid when it names none.
const commandCount = int(protocol.HERD) + 1

// stats counts what a node has done since it started. Every field is updated
// with one atomic add on the message path.
type stats struct {
	started        time.Time
	messages       [commandCount][resultCount]atomic.Int64
	applied, stale atomic.Int64
	rejected       [rejectionCount]atomic.Int64
	placesOK       atomic.Int64
	placesFailed   atomic.Int64
	placesUpstream upstreamCounters
}

// upstreamCounters count what WHATSAT cost the places provider: the requests
// sent to it, and the queries answered without one.
type upstreamCounters struct {
	requests  atomic.Int64 // sent to the provider
	coalesced atomic.Int64 // shared an identical request in flight
	cached    atomic.Int64 // served from the cache
}

// countMessage counts one message: a valid one under its command, an
// invalid one under the command its first word names.
func (s *stats) countMessage(fields [][]byte, cmd protocol.Command, ok bool) {
	if !ok {
		s.messages[namedCommand(fields)][resultInvalid].Add(1)
		return
	}
	s.messages[cmd][resultOK].Add(1)
}

func namedCommand(fields [][]byte) protocol.Command {
	if len(fields) > 0 {
		for _, cmd := range []protocol.Command{protocol.IAMAT, protocol.WHATSAT, protocol.AT, protocol.HERD} {
			if string(fields[0]) == cmd.String() {
				return cmd
			}
		}
	}
	return protocol.Invalid
}

// statsView is GET /herd/stats.
type statsView struct {
	Clients       int                         `json:"clients"`
	RecordBytes   int                         `json:"record_bytes"`
	UptimeSeconds float64                     `json:"uptime_seconds"`
	Messages      map[string]map[string]int64 `json:"messages"`
	Records       map[string]int64            `json:"records"`
	Places        map[string]int64            `json:"places_requests"`
	Limited       map[string]int64            `json:"limited"`
	TrackedIPs    int                         `json:"tracked_ips"`
	Rejected      map[string]int64            `json:"rejected"`
}

func (n *node) statsView() statsView {
	v := statsView{
		Clients:       n.store.Len(),
		RecordBytes:   n.store.RecordBytes(),
		UptimeSeconds: time.Since(n.stats.started).Seconds(),
		Messages:      make(map[string]map[string]int64),
		Records:       map[string]int64{"applied": n.stats.applied.Load(), "stale": n.stats.stale.Load()},
		Places: map[string]int64{
			"ok":        n.stats.placesOK.Load(),
			"error":     n.stats.placesFailed.Load(),
			"upstream":  n.stats.placesUpstream.requests.Load(),
			"coalesced": n.stats.placesUpstream.coalesced.Load(),
			"cached":    n.stats.placesUpstream.cached.Load(),
		},
		Limited:    make(map[string]int64, limits.KindCount),
		TrackedIPs: n.clients.ips.Tracked(),
		Rejected:   make(map[string]int64),
	}
	for l := range limits.KindCount {
		v.Limited[l.String()] = n.clients.limited[l].Load()
	}
	for r := admitted + 1; r < rejectionCount; r++ {
		v.Rejected[r.String()] = n.stats.rejected[r].Load()
	}
	for cmd := range commandCount {
		v.Messages[protocol.Command(cmd).String()] = map[string]int64{
			"ok":      n.stats.messages[cmd][resultOK].Load(),
			"invalid": n.stats.messages[cmd][resultInvalid].Load(),
		}
	}
	return v
}
