package herdstore

// The table numbers the records it stores: every record that changes it gets
// the next number of one sequence, kept with the record. A peer that holds
// every record up to some number needs only the records numbered after it
// (RangeSince), and what a server writes to disk carries the numbers, so that
// they survive a restart (Restore).

// Seq returns the number of the record stored last: every record stored from
// now on gets a greater one.
func (s *Store) Seq() uint64 {
	return s.seq.Load()
}

// AdvanceSeq makes the sequence continue after n, if it is not already past
// it. A server calls it when it starts, with the time in nanoseconds, so that
// numbers given before a crash that lost them are never given again: no
// server stores more than a record a nanosecond, so its numbers stay behind
// the clock.
func (s *Store) AdvanceSeq(n uint64) {
	for {
		cur := s.seq.Load()
		if cur >= n || s.seq.CompareAndSwap(cur, n) {
			return
		}
	}
}
