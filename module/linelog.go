package module

import "go.uber.org/zap/zapcore"

// maxKeptLineLogBytes bounds the memory a connection keeps for its line log
// between entries.
const maxKeptLineLogBytes = 64 << 10

// lineLog collects the lines a connection received and the replies it sent
// to each, in order, until the replies are written: they are then logged as
// one debug entry, so that a busy connection costs one entry per write
// rather than several per line. It copies what it is given: the lines live
// in the read buffer and the replies in the write buffer, both reused.
type lineLog struct {
	buf []byte
	// ends holds, for each line, where its text and then its reply end in
	// buf.
	ends []int
	// lines is the reused view of buf that MarshalLogArray hands zap.
	lines []loggedLine
}

// add records a line and its reply, which may be empty.
func (l *lineLog) add(line, reply []byte) {
	l.buf = append(l.buf, line...)
	l.ends = append(l.ends, len(l.buf))
	l.buf = append(l.buf, reply...)
	l.ends = append(l.ends, len(l.buf))
}

func (l *lineLog) empty() bool { return len(l.ends) == 0 }

// reset forgets the lines once logged, keeping a little memory for the next.
func (l *lineLog) reset() {
	if cap(l.buf) > maxKeptLineLogBytes {
		*l = lineLog{}
		return
	}
	l.buf, l.ends = l.buf[:0], l.ends[:0]
}

// MarshalLogArray writes the lines as {"in": line, "out": reply} objects;
// "out" is left out for a line that had no reply.
func (l *lineLog) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	l.lines = l.lines[:0]
	start := 0
	for i := 0; i < len(l.ends); i += 2 {
		in, out := l.ends[i], l.ends[i+1]
		l.lines = append(l.lines, loggedLine{l.buf[start:in], l.buf[in:out]})
		start = out
	}
	for i := range l.lines {
		if err := enc.AppendObject(&l.lines[i]); err != nil {
			return err
		}
	}
	return nil
}

type loggedLine struct{ in, out []byte }

func (l *loggedLine) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddByteString("in", l.in)
	if len(l.out) > 0 {
		enc.AddByteString("out", l.out)
	}
	return nil
}
