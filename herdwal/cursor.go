package herdwal

// Cursor is how far a peer's numbering is known: every record that peer
// numbered up to Seq, in its epoch Epoch. A peer whose storage was lost starts
// a new epoch, and numbers from the start again.
type Cursor struct {
	Epoch string
	Seq   uint64
}

// Advances reports whether c replaces old, the stored cursor of the same peer
// (known is false when there is none): when there is none, when the peer's
// epoch changed, or when c is further in the same epoch. Every place that
// keeps cursors uses this rule, so that recovery replays them to the same
// result the live log had.
func (c Cursor) Advances(old Cursor, known bool) bool {
	return !known || c.Epoch != old.Epoch || c.Seq > old.Seq
}
