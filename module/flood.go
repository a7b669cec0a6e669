package module

import (
	"sync/atomic"

	"github.com/caddy-herd/caddy-herd/herdstore"
	"github.com/caddy-herd/caddy-herd/herdwal"
)

// floods collects the records one connection changed the table with until
// they are stored and its links are flushed, so that the log is written and
// each link's queue locked once per read rather than once per record.
type floods struct {
	lines   []byte   // the records' AT lines, each ended by '\n'
	updates []update // one per line, in order
	batch   []byte   // reused for the share of a link that takes only some
	// entries are the log entries of every record that changed the table,
	// when it is kept on disk.
	entries []byte
	// changed is set when the table changed, whether or not a link needs
	// the record.
	changed bool
	// answered is set when a reply waits for a record among them (an
	// IAMAT's AT): then they are written before it goes, as the fsync
	// level says.
	answered bool
	// floor is what the node's sessions know of the connection: set before
	// the first record of a read is numbered, cleared once the read's
	// records are stored and handed to the links.
	floor atomic.Uint64
	// pending is set while floor is.
	pending bool
}

// maxKeptFloodBytes is the most memory a connection's floods keep between
// reads, in each of its buffers: a burst's does not stay with the connection.
const maxKeptFloodBytes = 64 << 10

// update is where a record's line ends in floods.lines, and what says which
// peers do not need it: the origin server's name, the second field of the
// line, and the peer it came from.
type update struct {
	end       int
	originLen int
	from      string // "" when not known
}

// atPrefix is the length of what every AT line starts with, before the
// origin's name.
const atPrefix = len("AT ")

// apply stores r and, if it is newer than what the table held, adds its line
// to f for every peer but the record's origin server and the peer it came
// from (from, "" when not known); r itself may be a Scratch's. It reports
// whether the table changed; the caller then calls flood, once for all the
// records it applies in a row.
//
// Neither of those two needs the record: the origin made it, and the sender
// just stored it. Sending it back would only make them read, look up and drop
// one echo per peer for every update, which in a star of three servers is as
// much work as the update itself. A restarted origin relearns its own records
// from the catch-up every link sends on connecting.
func (n *node) apply(r herdstore.Record, from string, f *floods) bool {
	if !f.pending {
		f.floor.Store(n.store.Seq() + 1)
		f.pending = true
	}
	seq, ok := n.store.PutSeq(r)
	if !ok {
		n.stats.stale.Add(1)
		return false
	}
	n.stats.applied.Add(1)
	f.changed = true
	if n.log.Load() != nil {
		o := r.Origin()
		f.entries = herdwal.AppendRecord(f.entries, seq, o.Arrived, o.From, unsafeBytes(r.Line()))
	}
	if origin := r.Server(); n.floodsTo(origin, from) {
		f.lines = append(f.lines, r.Line()...)
		f.lines = append(f.lines, '\n')
		f.updates = append(f.updates, update{end: len(f.lines), originLen: len(origin), from: from})
	}
	return true
}

// floodsTo reports whether a record made by origin and sent by from goes to
// any link. In a star, a record from the hub goes nowhere: the table's copy
// is then the only one made.
func (n *node) floodsTo(origin, from string) bool {
	for _, l := range *n.links.Load() {
		if name := l.Name(); name != origin && name != from {
			return true
		}
	}
	return false
}

// flood stores what apply collected in f, then queues it on the links and
// has them write it: nothing reaches a peer, or a client as a reply, before
// it is on disk. Records that neither a reply nor a link waits for (in a
// star, all that the hub floods to the others) are appended without waiting,
// for the log to write with others. Every link is flushed, also one that got
// nothing, so that it knows when the server last had updates for it.
func (n *node) flood(f *floods) {
	if len(f.entries) > 0 {
		n.storeEntries(f.entries, f.awaited())
	}
	if f.changed {
		for _, l := range *n.links.Load() {
			l.Push(f.shareOf(l.Name()))
			l.Flush()
		}
	}
	f.floor.Store(0)
	f.pending = false
	f.updates = f.updates[:0]
	f.lines = f.lines[:0]
	f.batch = f.batch[:0]
	f.entries = f.entries[:0]
	f.changed = false
	f.answered = false
	if cap(f.lines) > maxKeptFloodBytes || cap(f.batch) > maxKeptFloodBytes || cap(f.entries) > maxKeptFloodBytes {
		f.lines, f.updates, f.batch, f.entries = nil, nil, nil, nil
	}
}

// awaited reports whether a reply or a link waits for the records in f.
func (f *floods) awaited() bool {
	return f.answered || len(f.lines) > 0
}

// shareOf returns the lines of f that go to the link to peer: all but the
// ones peer made or sent. Until the first such line it shares f.lines; from
// there on it copies to f.batch.
func (f *floods) shareOf(peer string) []byte {
	copying := false
	start := 0
	for _, u := range f.updates {
		line := f.lines[start:u.end]
		skipped := string(line[atPrefix:atPrefix+u.originLen]) == peer || u.from == peer
		switch {
		case skipped && !copying:
			f.batch = append(f.batch[:0], f.lines[:start]...)
			copying = true
		case !skipped && copying:
			f.batch = append(f.batch, line...)
		}
		start = u.end
	}
	if copying {
		return f.batch
	}
	return f.lines
}
