package herdstore

// Scratch makes records in memory it reuses, for a caller that only puts
// them in a table, which copies what it keeps: a peer's update that no other
// peer needs then costs no allocation. A record it returns is valid until
// the next call on the same Scratch; Clone keeps one for longer. The zero
// Scratch is ready to use.
type Scratch struct {
	buf []byte
}

// maxScratchBytes bounds the memory a Scratch keeps between calls: one very
// long line does not pin its size for the life of the connection.
const maxScratchBytes = 4 << 10

// MakeRecord is MakeRecord in s's memory.
func (s *Scratch) MakeRecord(line []byte, o Origin) Record {
	return s.borrow(appendRecord(s.reset(), line, o))
}

// MakeRecordOfFields is MakeRecordOfFields in s's memory.
func (s *Scratch) MakeRecordOfFields(fields [][]byte, o Origin) Record {
	return s.borrow(appendRecordOfFields(s.reset(), fields, o))
}

func (s *Scratch) reset() []byte {
	if cap(s.buf) > maxScratchBytes {
		s.buf = nil
	}
	return s.buf[:0]
}

func (s *Scratch) borrow(b []byte) Record {
	s.buf = b
	return recordOf(b)
}
