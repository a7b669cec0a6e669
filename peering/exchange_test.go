package peering

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/herdstore"
)

func recordBy(server, client, time string) herdstore.Record {
	return herdstore.NewRecord(fmt.Sprintf("AT %s +0.000000001 %s +1+1 %s", server, client, time))
}

// linesUntil reads lines in the order they come until one equals last.
func linesUntil(t *testing.T, s *bufio.Scanner, conn net.Conn, last string) []string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []string
	for s.Scan() {
		got = append(got, s.Text())
		if s.Text() == last {
			return got
		}
	}
	t.Fatalf("read %q, then %v, before %q", got, s.Err(), last)
	return nil
}

// numberedServer returns a server whose table holds a, b and c, numbered
// 101, 102 and 103.
func numberedServer() *testServer {
	srv := newServer()
	srv.AdvanceSeq(100)
	for _, c := range []string{"a", "b", "c"} {
		srv.Put(record(c, "1"))
	}
	return srv
}

func TestLinkSendsWhatThePeerMissed(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   []string // the lines before the first THROUGH, in any order
	}{
		{"the peer holds up to b", "HERD 1 SINCE e1 102 others", []string{record("c", "1").Line()}},
		{"the peer holds everything, so no mark is news", "HERD 1 SINCE e1 103 others", nil},
		{"the peer knows another numbering", "HERD 1 SINCE e0 102 others", []string{record("a", "1").Line(), record("b", "1").Line(), record("c", "1").Line()}},
		{"the peer knows none", "HERD 1 SINCE - 0 all", []string{record("a", "1").Line(), record("b", "1").Line(), record("c", "1").Line()}},
		{"the peer claims numbers this server never gave", "HERD 1 SINCE e1 104 others", []string{record("a", "1").Line(), record("b", "1").Line(), record("c", "1").Line()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := numberedServer()
			p := listenAnswering(t, func(string) string { return tt.answer })
			l := NewLink("P", p.ln.Addr().String(), nil, srv, zap.NewNop())
			l.Start()
			defer l.Close()
			s, conn := p.next(t)
			if hello := <-p.hellos; hello != "HERD 1 HELLO S e1" {
				t.Errorf("HELLO = %q", hello)
			}
			if tt.want != nil {
				got := linesUntil(t, s, conn, "HERD 1 THROUGH 103")
				got = got[:len(got)-1]
				slices.Sort(got)
				if !slices.Equal(got, tt.want) {
					t.Errorf("catch-up = %q, want %q", got, tt.want)
				}
				// The link counts the mark once its write returned, which may
				// be after the peer read it.
				st := waitStatus(t, l, func(st Status) bool { return st.Through == 103 })
				if !st.Exchange || st.LastCatchUp == nil || st.LastCatchUp.Records != int64(len(tt.want)) {
					t.Errorf("status %+v, last catch-up %+v", st, st.LastCatchUp)
				}
			}

			// A live update, then the mark that covers it.
			live := record("d", "2")
			srv.Put(live)
			send(l, live)
			if got := linesUntil(t, s, conn, "HERD 1 THROUGH 104"); !slices.Equal(got, []string{live.Line(), "HERD 1 THROUGH 104"}) {
				t.Errorf("after a live update: %q", got)
			}
		})
	}
}

// A peer that asks for the records it did not make gets none of its own;
// one that asks for all gets them too.
func TestLinkSkipsThePeersOwnRecordsWhenAsked(t *testing.T) {
	for _, tt := range []struct {
		what string
		want []string
	}{
		{"others", []string{recordBy("S", "b", "1").Line()}},
		{"all", []string{recordBy("P", "a", "1").Line(), recordBy("S", "b", "1").Line()}},
	} {
		t.Run(tt.what, func(t *testing.T) {
			srv := newServer()
			srv.Put(recordBy("P", "a", "1"))
			srv.Put(recordBy("S", "b", "1"))
			p := listenAnswering(t, func(string) string { return "HERD 1 SINCE - 0 " + tt.what })
			l := NewLink("P", p.ln.Addr().String(), nil, srv, zap.NewNop())
			l.Start()
			defer l.Close()
			s, conn := p.next(t)
			got := linesUntil(t, s, conn, fmt.Sprint("HERD 1 THROUGH ", srv.Seq()))
			got = got[:len(got)-1]
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("catch-up = %q, want %q", got, tt.want)
			}
		})
	}
}

// A classic peer, which answers HELLO `? <line>`, and one that answers
// nothing, get the whole table and never a THROUGH.
func TestLinkSpeaksClassicToAClassicPeer(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func(string) string
	}{
		{"answers ?", func(hello string) string { return "? " + hello }},
		{"answers nothing", func(string) string { return "" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := numberedServer()
			p := listenAnswering(t, tt.answer)
			l := NewLink("P", p.ln.Addr().String(), nil, srv, zap.NewNop())
			l.helloTimeout = 50 * time.Millisecond
			l.Start()
			defer l.Close()
			s, conn := p.next(t)
			if got := readLines(t, s, conn, 3); !slices.Equal(got, []string{record("a", "1").Line(), record("b", "1").Line(), record("c", "1").Line()}) {
				t.Fatalf("catch-up = %q", got)
			}
			// Updates a mark apart: each is the next line, with no THROUGH.
			for i := range 3 {
				time.Sleep(2 * markEvery)
				live := record("d", fmt.Sprint(i+2))
				srv.Put(live)
				send(l, live)
				if got := readLines(t, s, conn, 1); got[0] != live.Line() {
					t.Fatalf("after update %d: %q", i, got)
				}
			}
			if st := l.Status(); st.Exchange || st.Through != 0 {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// Nothing numbered beyond the server's watermark is sent in a catch-up: those
// records are not on disk yet.
func TestCatchUpWaitsUntilRecordsAreStored(t *testing.T) {
	srv := numberedServer()
	srv.behind.Store(1)
	p := listenAnswering(t, func(string) string { return "HERD 1 SINCE e1 101 others" })
	l := NewLink("P", p.ln.Addr().String(), nil, srv, zap.NewNop())
	l.Start()
	defer l.Close()
	s, conn := p.next(t)
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if s.Scan() {
		t.Fatalf("the link sent %q before its records were stored", s.Text())
	}
	conn.Close()
	srv.behind.Store(0)
	s, conn = p.next(t)
	got := linesUntil(t, s, conn, "HERD 1 THROUGH 103")
	if want := []string{record("b", "1").Line(), record("c", "1").Line(), "HERD 1 THROUGH 103"}; !slices.Equal(sorted(got[:2]), want[:2]) || got[2] != want[2] {
		t.Errorf("catch-up once stored = %q, want %q", got, want)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// A peer that answers with the last THROUGH it read gets, after the link
// drops, only what was stored since.
func TestLinkResumesFromTheLastMark(t *testing.T) {
	srv := numberedServer()
	var last string
	marks := make(chan string, 16)
	p := listenAnswering(t, func(string) string {
		select {
		case last = <-marks:
		default:
		}
		if last == "" {
			return "HERD 1 SINCE - 0 all"
		}
		return "HERD 1 SINCE e1 " + strings.TrimPrefix(last, "HERD 1 THROUGH ") + " others"
	})
	l := NewLink("P", p.ln.Addr().String(), nil, srv, zap.NewNop())
	l.Start()
	defer l.Close()
	s, conn := p.next(t)
	linesUntil(t, s, conn, "HERD 1 THROUGH 103")
	marks <- "HERD 1 THROUGH 103"
	conn.Close()

	later := record("e", "1")
	srv.Put(later)
	s, conn = p.next(t)
	if got := linesUntil(t, s, conn, "HERD 1 THROUGH 104"); !slices.Equal(got, []string{later.Line(), "HERD 1 THROUGH 104"}) {
		t.Errorf("catch-up after the drop = %q", got)
	}
	if st := waitStatus(t, l, func(st Status) bool { return st.Through == 104 }); st.LastCatchUp == nil || st.LastCatchUp.After != 103 || st.LastCatchUp.Records != 1 {
		t.Errorf("last catch-up %+v", st.LastCatchUp)
	}
}

// Drain returns once the peer was told everything stored is sent.
func TestDrainMarksEverythingStored(t *testing.T) {
	srv := numberedServer()
	p := listenAnswering(t, func(string) string { return "HERD 1 SINCE - 0 all" })
	l := NewLink("P", p.ln.Addr().String(), nil, srv, zap.NewNop())
	l.Start()
	defer l.Close()
	s, conn := p.next(t)
	linesUntil(t, s, conn, "HERD 1 THROUGH 103")
	r := record("f", "1")
	srv.Put(r)
	send(l, r)
	if !l.Drain(5 * time.Second) {
		t.Fatal("Drain timed out")
	}
	if st := l.Status(); st.Through != srv.Seq() {
		t.Errorf("Through = %d after Drain, want %d", st.Through, srv.Seq())
	}
	if got := linesUntil(t, s, conn, "HERD 1 THROUGH 104"); got[len(got)-2] != r.Line() {
		t.Errorf("after Drain the peer read %q", got)
	}
}

// waitStatus waits until the link's status satisfies cond and returns it.
func waitStatus(t *testing.T, l *Link, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := l.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v never came", st)
		}
		time.Sleep(time.Millisecond)
	}
}
