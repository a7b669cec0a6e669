package module

import "github.com/caddy-herd/caddy-herd/herdstore"

// floods collects the records one connection changed the table with until
// its links are flushed, so that each link's queue is locked once per read
// rather than once per record.
type floods struct {
	updates []update
	batch   []herdstore.Record // reused for each link's share
	// changed is set when the table changed, whether or not a link needs
	// the record.
	changed bool
}

// update is a record to flood and the two peers that do not need it.
type update struct {
	record herdstore.Record
	origin string // the origin server's name, from the record
	from   string // the peer it came from, "" when not known
}

// apply stores r and, if it is newer than what the table held, adds a copy
// of it to f for every peer but the record's origin server and the peer it
// came from (from, "" when not known); r itself may be a Scratch's. It
// reports whether the table changed; the caller then calls flood, once for
// all the records it applies in a row.
//
// Neither of those two needs the record: the origin made it, and the sender
// just stored it. Sending it back would only make them read, look up and drop
// one echo per peer for every update, which in a star of three servers is as
// much work as the update itself. A restarted origin relearns its own records
// from the catch-up every link sends on connecting.
func (n *node) apply(r herdstore.Record, from string, f *floods) bool {
	if !n.store.Put(r) {
		n.stats.stale.Add(1)
		return false
	}
	n.stats.applied.Add(1)
	f.changed = true
	if origin := r.Server(); n.floodsTo(origin, from) {
		kept := r.Clone()
		f.updates = append(f.updates, update{record: kept, origin: kept.Server(), from: from})
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

// flood queues what apply collected in f on the links and has them write
// it. Every link is flushed, also one that got nothing, so that it knows
// when the server last had updates for it.
func (n *node) flood(f *floods) {
	for _, l := range *n.links.Load() {
		name := l.Name()
		f.batch = f.batch[:0]
		for _, u := range f.updates {
			if name != u.origin && name != u.from {
				f.batch = append(f.batch, u.record)
			}
		}
		l.Push(f.batch...)
		l.Flush()
	}
	clear(f.updates)
	f.updates = f.updates[:0]
	clear(f.batch)
	f.changed = false
}
