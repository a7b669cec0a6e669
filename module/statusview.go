package module

import (
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/peering"
	"github.com/caddy-herd/caddy-herd/protocol"
)

// recentUpdates is how many of the records that changed the table last the
// status page lists and highlights.
const recentUpdates = 20

// statusView is the status page's JSON: what the page draws, bounded so that
// a server with a million clients serves it in milliseconds.
type statusView struct {
	Server        string    `json:"server"`
	Now           time.Time `json:"now"`
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Clients       int       `json:"clients"`
	// Rates are per second, over the last second or two of samples: null
	// until the server has been asked twice.
	Rates *statusRates `json:"rates"`
	// Totals are the counters the rates are computed from, since the start.
	Totals  statusTotals  `json:"totals"`
	Peers   []statusPeer  `json:"peers"`
	Storage *storageView  `json:"storage"`
	Map     statusMapView `json:"map"`
}

// statusTotals are counters since the server started.
type statusTotals struct {
	IAMAT        int64 `json:"iamat"`
	ATReceived   int64 `json:"at_received"`
	RecordsSent  int64 `json:"records_sent"`
	Applied      int64 `json:"applied"`
	Stale        int64 `json:"stale"`
	WHATSAT      int64 `json:"whatsat"`
	InvalidLines int64 `json:"invalid"`
}

// statusRates are counters per second.
type statusRates struct {
	// IAMAT is valid IAMAT messages answered.
	IAMAT float64 `json:"iamat_per_second"`
	// FloodedIn is AT records received from peers.
	FloodedIn float64 `json:"flooded_in_per_second"`
	// FloodedOut is records sent to peers, over all links.
	FloodedOut float64 `json:"flooded_out_per_second"`
	// Over is the span the rates were measured over, in seconds.
	Over float64 `json:"over_seconds"`
}

// statusPeer is one peer link as the page shows it.
type statusPeer struct {
	Name    string    `json:"name"`
	Address string    `json:"address"`
	Up      bool      `json:"up"`
	Since   time.Time `json:"since"`
	// LastError is why the link is down; empty while it is up.
	LastError     string `json:"last_error,omitempty"`
	Pending       int    `json:"pending"`
	Connects      int64  `json:"connects"`
	RecordsSent   int64  `json:"records_sent"`
	BytesSent     int64  `json:"bytes_sent"`
	BytesReceived int64  `json:"bytes_received"`
	// Exchange is whether the peer takes part in the catch-up exchange on
	// the current connection, and Through the last of this server's
	// numbers it was told it holds every record up to.
	Exchange bool   `json:"exchange"`
	Through  uint64 `json:"through,omitempty"`
	// CatchingUp is set while the link, up, has not yet finished the
	// catch-up it sends on connecting.
	CatchingUp  bool             `json:"catching_up"`
	LastCatchUp *peering.CatchUp `json:"last_catch_up,omitempty"`
	// CatchUp is the catch-up being written, with what it wrote so far.
	CatchUp *peering.CatchUp `json:"catch_up,omitempty"`
}

// catchingUp reports whether a link is up and still sending the catch-up
// that begins every connection: its last catch-up, if any, began before the
// connection did.
func catchingUp(st peering.Status) bool {
	return st.Up && (st.LastCatchUp == nil || st.LastCatchUp.At.Before(st.Since))
}

// statusMapView is a bounded sample of the clients' locations and the
// records that changed the table last.
type statusMapView struct {
	// Sampled is set when Points holds only some of the clients.
	Sampled   bool          `json:"sampled"`
	MaxPoints int           `json:"max_points"`
	Points    []statusPoint `json:"points"`
	// Recent are the records that changed the table last, newest first.
	Recent []statusRecent `json:"recent"`
}

// statusPoint is a client's last known location.
type statusPoint struct {
	Client string  `json:"client"`
	Lat    float64 `json:"lat"`
	Lon    float64 `json:"lon"`
}

// statusRecent is one of the records that changed the table last.
type statusRecent struct {
	statusPoint
	// Server is the server that answered the client's IAMAT.
	Server     string    `json:"server"`
	Seq        uint64    `json:"seq"`
	ReceivedAt time.Time `json:"received_at"`
}

// statusViewOf builds the JSON of n's status page, with at most maxPoints
// clients on the map.
func statusViewOf(n *node, maxPoints int) statusView {
	now := time.Now()
	name := ""
	if p := n.name.Load(); p != nil {
		name = *p
	}
	seq := n.store.Seq()
	links := *n.links.Load()
	v := statusView{
		Server:        name,
		Now:           now.UTC(),
		Started:       n.stats.started.UTC(),
		UptimeSeconds: now.Sub(n.stats.started).Seconds(),
		Clients:       n.store.Len(),
		Peers:         make([]statusPeer, 0, len(links)),
	}
	v.Totals = statusTotals{
		IAMAT:      n.stats.messages[protocol.IAMAT][resultOK].Load(),
		ATReceived: n.stats.messages[protocol.AT][resultOK].Load(),
		Applied:    n.stats.applied.Load(),
		Stale:      n.stats.stale.Load(),
		WHATSAT:    n.stats.messages[protocol.WHATSAT][resultOK].Load(),
	}
	for cmd := range commandCount {
		v.Totals.InvalidLines += n.stats.messages[cmd][resultInvalid].Load()
	}
	for _, l := range links {
		st := l.Status()
		p := statusPeer{
			Name: st.Name, Address: st.Address, Up: st.Up, Since: st.Since.UTC(),
			Pending: st.Pending, Connects: st.Connects, RecordsSent: st.Sent,
			BytesSent: st.BytesSent, BytesReceived: st.BytesReceived,
			Exchange: st.Exchange, Through: st.Through, LastCatchUp: st.LastCatchUp,
			CatchingUp: catchingUp(st), CatchUp: st.CatchUp,
		}
		// The link keeps its last error after it reconnects: shown then, it
		// would read as a current fault.
		if !st.Up {
			p.LastError = st.LastError
		}
		v.Totals.RecordsSent += st.Sent
		v.Peers = append(v.Peers, p)
	}
	if sv := n.storageView(); sv.On {
		v.Storage = &sv
	}
	v.Rates = rateSamples.observe(n, now, v.Totals)
	v.Map = mapSample(n.store, seq, maxPoints)
	return v
}

// mapSample returns up to maxPoints clients' locations and the records that
// changed the table last.
//
// The table is sharded by a hash of the client ID, so the clients of the
// first shards are a uniform sample of all of them: the walk stops once it
// has maxPoints, having copied a shard or two, whatever the table's size. The
// sample stays the same from one request to the next while the table does.
//
// The records that changed the table last are the ones numbered after the
// table's last number minus recentUpdates: RangeSince reads the numbers of
// the others, not the records, and the message path pays nothing for it.
func mapSample(store *herdstore.Store, seq uint64, maxPoints int) statusMapView {
	m := statusMapView{MaxPoints: maxPoints, Points: make([]statusPoint, 0, min(maxPoints, store.Len()))}
	if maxPoints > 0 {
		store.Range(func(r herdstore.Record) bool {
			if len(m.Points) == maxPoints {
				m.Sampled = true
				return false
			}
			if p, ok := pointOf(r); ok {
				m.Points = append(m.Points, p)
			}
			return true
		})
	}
	m.Recent = make([]statusRecent, 0, recentUpdates)
	after := uint64(0)
	if seq > recentUpdates {
		after = seq - recentUpdates
	}
	store.RangeSince(after, seq, func(r herdstore.Record, s uint64) bool {
		if p, ok := pointOf(r); ok {
			m.Recent = append(m.Recent, statusRecent{
				statusPoint: p, Server: r.Server(), Seq: s,
				ReceivedAt: time.Unix(0, r.Origin().Arrived).UTC(),
			})
		}
		return true
	})
	sort.Slice(m.Recent, func(i, j int) bool { return m.Recent[i].Seq > m.Recent[j].Seq })
	return m
}

// pointOf returns the client and location of a record: the fourth field of
// its AT line.
func pointOf(r herdstore.Record) (statusPoint, bool) {
	fields := strings.Fields(r.Line())
	if len(fields) != 6 {
		return statusPoint{}, false
	}
	lat, lon, ok := protocol.ParseLocation([]byte(fields[4]))
	if !ok {
		return statusPoint{}, false
	}
	return statusPoint{Client: r.Client(), Lat: round(lat, 1e5), Lon: round(lon, 1e5)}, true
}

// round rounds x to 1/scale: a metre is plenty for a map, and the JSON is
// shorter.
func round(x, scale float64) float64 { return math.Round(x*scale) / scale }

// rateSamples keeps the counters the status page's rates are computed from.
var rateSamples rateRing

// rateRing is a small ring of counter samples of one node, taken when the
// status JSON is asked for. A node that changes (a new process's, in tests)
// starts it afresh; a reload keeps the node, and the samples.
type rateRing struct {
	mu      sync.Mutex
	node    *node
	samples [16]rateSample
	next    int
	count   int
}

type rateSample struct {
	at     time.Time
	totals statusTotals
}

// rateSpacing is the least time between two samples kept: many pages open at
// once do not fill the ring with samples a few milliseconds apart.
const rateSpacing = 200 * time.Millisecond

// rateOver is the span a rate is measured over, when samples that old exist.
const rateOver = time.Second

// observe records a sample of n's counters taken at now and returns the
// rates since the newest sample at least rateOver old (or the oldest there
// is), or nil if there is none yet.
func (r *rateRing) observe(n *node, now time.Time, t statusTotals) *statusRates {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.node != n {
		r.node, r.next, r.count = n, 0, 0
	}
	var base *rateSample
	for i := 1; i <= r.count; i++ {
		s := &r.samples[(r.next-i+len(r.samples))%len(r.samples)]
		base = s
		if now.Sub(s.at) >= rateOver {
			break
		}
	}
	if r.count == 0 || now.Sub(r.samples[(r.next-1+len(r.samples))%len(r.samples)].at) >= rateSpacing {
		r.samples[r.next] = rateSample{at: now, totals: t}
		r.next = (r.next + 1) % len(r.samples)
		r.count = min(r.count+1, len(r.samples))
	}
	if base == nil {
		return nil
	}
	over := now.Sub(base.at).Seconds()
	if over < rateSpacing.Seconds()/2 {
		return nil
	}
	per := func(now, then int64) float64 {
		// A link removed by a reload takes its count with it: a total that
		// went down is not a negative rate.
		if now < then {
			return 0
		}
		return round(float64(now-then)/over, 100)
	}
	return &statusRates{
		IAMAT:      per(t.IAMAT, base.totals.IAMAT),
		FloodedIn:  per(t.ATReceived, base.totals.ATReceived),
		FloodedOut: per(t.RecordsSent, base.totals.RecordsSent),
		Over:       round(over, 1000),
	}
}
