package module

import "github.com/caddy-herd/caddy-herd/herdstore"

// linkServer is the node as its links see it: a table numbered as it is
// stored, a name and an epoch to introduce it by, and how far its records
// are on disk.
type linkServer struct{ n *node }

// RangeSince is what a link's catch-up reads: records the node stored
// without waiting, if any, are made durable first, as a flood's are before
// a link takes them.
func (s linkServer) RangeSince(after, through uint64, fn func(herdstore.Record, uint64) bool) {
	s.n.flushLog()
	s.n.store.RangeSince(after, through, fn)
}

func (s linkServer) Len() int      { return s.n.store.Len() }
func (s linkServer) Seq() uint64   { return s.n.store.Seq() }
func (s linkServer) Name() string  { return *s.n.name.Load() }
func (s linkServer) Epoch() string { return s.n.numbering() }

func (s linkServer) Watermark() uint64 {
	return s.n.sessions.watermark(s.n.store.Seq())
}
