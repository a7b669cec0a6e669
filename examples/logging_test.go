package examples

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loggedServer starts one server whose per-message log (the herd handler's
// DEBUG entries) goes through the buffered writer with the given options to
// the file at path; everything else goes to its output.
func loggedServer(t *testing.T, path, writerOptions, handlerOptions string) (*herd, *server, func(string) string) {
	t.Helper()
	places, err := filepath.Abs("places.json")
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2)
	config := func(handlerOptions string) string {
		return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	log messages {
		output herd_buffered {
			output file %s {
				roll_disabled
			}
			%s
		}
		level DEBUG
		include layer4.handlers.herd
	}
	log default {
		exclude layer4.handlers.herd
	}
	herd {
		name Logged
		places file %s
	}
	layer4 {
		127.0.0.1:%d {
			route {
				herd {
					%s
				}
			}
		}
	}
}
`, ports[1], path, writerOptions, places, ports[0], handlerOptions)
	}
	h := startOne(t, "Logged", "caddyfile", config(handlerOptions), ports[0], ports[1])
	return h, h.servers[0], config
}

// exchange is a line a client sent and the reply it read.
type exchange struct{ In, Out string }

// loggedLines reads the "lines" entries of a herd log, by the remote
// address of their connection, and checks that each has its time and
// connection id.
func loggedLines(t *testing.T, path string) map[string][]exchange {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	byRemote := map[string][]exchange{}
	for line := range strings.Lines(string(data)) {
		var e struct {
			Msg, Remote string
			TS          float64
			Conn        uint64
			Lines       []exchange
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log entry %q: %v", line, err)
		}
		if e.Msg != "lines" {
			continue
		}
		if e.Conn == 0 || e.Remote == "" || e.TS == 0 {
			t.Errorf("entry %q lacks its time, connection id or remote address", line)
		}
		byRemote[e.Remote] = append(byRemote[e.Remote], e.Lines...)
	}
	return byRemote
}

// chat sends each line on c and reads its whole reply, recording both.
func chat(c *client, sent *[]exchange, lines ...string) {
	c.t.Helper()
	for _, l := range lines {
		c.send(l + "\n")
		out := c.line() + "\n"
		if strings.HasPrefix(l, "WHATSAT") && !strings.HasPrefix(out, "? ") {
			out += c.whatsatReply(out) + "\n"
		}
		*sent = append(*sent, exchange{l, out})
	}
}

// TestLogHoldsEveryLineAfterReloadAndStop: with a flush interval of an hour,
// only the flushes on a reload and on a graceful stop can put the lines in
// the file. Each connection's lines and replies are there, whole and in
// order, with its remote address.
func TestLogHoldsEveryLineAfterReloadAndStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "messages.log")
	h, s, config := loggedServer(t, path, "flush_interval 1h", "")
	c1, c2 := dial(t, s), dial(t, s)
	sent := map[*client]*[]exchange{c1: {}, c2: {}}
	for i := range 20 {
		chat(c1, sent[c1], fmt.Sprintf("IAMAT one-%d +34.068930-118.445127 %d.5", i, 1700000000+i), "not a message "+strconv.Itoa(i))
		chat(c2, sent[c2], fmt.Sprintf("IAMAT two-%d -33.8+151.2 %d", i, 1700000000+i), fmt.Sprintf("WHATSAT one-%d 10 2", i))
	}
	check := func(when string, clients ...*client) {
		t.Helper()
		logged := loggedLines(t, path)
		for _, c := range clients {
			remote := c.conn.LocalAddr().String()
			if got := logged[remote]; !slices.Equal(got, *sent[c]) {
				t.Errorf("%s: the log holds %d lines of %s, want the %d it sent, in order with their replies; first lines logged: %q",
					when, len(got), remote, len(*sent[c]), got[:min(len(got), 3)])
			}
		}
	}

	h.reload(s, config("idle_timeout 1h"))
	check("after a reload", c1, c2)

	c3 := dial(t, s)
	sent[c3] = &[]exchange{}
	chat(c1, sent[c1], "IAMAT one-after +1+1 1800000000")
	chat(c3, sent[c3], "WHATSAT one-after 5 1", "IAMAT three +2+2 1800000000", "bad")
	h.gracefulStop(s)
	check("after a graceful stop", c1, c2, c3)
}

// TestLogThatBlocksDoesNotStallClients sends the per-message log to a pipe
// nobody reads: the server answers every line, drops entries, counts them
// in /metrics and warns; once the pipe is read again, entries flow again.
func TestLogThatBlocksDoesNotStallClients(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "stalled.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Held open and not read: the server can open the pipe, and fills it.
	reader, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	h, s, _ := loggedServer(t, fifo, "buffer_size 4KiB\nmax_backlog 16KiB", "")

	c := dial(t, s)
	defer c.close()
	const batches, perBatch = 200, 100
	for b := range batches {
		var batch strings.Builder
		for i := range perBatch {
			fmt.Fprintf(&batch, "IAMAT stall-%d +1+1 %d\n", i, 1700000000+b)
		}
		c.send(batch.String())
		for range perBatch {
			if reply := c.line(); !strings.HasPrefix(reply, "AT Logged ") {
				t.Fatalf("reply %q, want an AT", reply)
			}
		}
	}

	dropped := regexp.MustCompile(`(?m)^caddy_herd_log_dropped_entries_total (\d+)$`)
	m := dropped.FindStringSubmatch(h.adminText(s, "/metrics"))
	if m == nil || m[1] == "0" {
		t.Fatalf("caddy_herd_log_dropped_entries_total is %q, want some dropped entries", m)
	}
	h.waitUntil("a warning says entries were dropped", func() bool {
		out, _ := os.ReadFile(s.output)
		return strings.Contains(string(out), "log entries dropped")
	})

	// Read the pipe again: what was kept, then later entries, come out
	// whole.
	found := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(reader)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				found <- fmt.Errorf("an entry cut short: %q", sc.Text())
				return
			}
			if strings.Contains(sc.Text(), "after-drain") {
				found <- nil
				return
			}
		}
		found <- fmt.Errorf("the pipe ended: %v", sc.Err())
	}()
	chat(c, &[]exchange{}, "IAMAT after-drain +1+1 1800000000")
	select {
	case err := <-found:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the entries after the pipe was read again did not reach it")
	}
	go io.Copy(io.Discard, reader) // the stop flushes the rest
	h.gracefulStop(s)
}

// TestLogSurvivesAKill: entries reach the file every flush interval without
// a stop, so a server killed with SIGKILL loses at most the last interval:
// after the kill the file holds what was flushed, whole and in order, and
// of what came after at most a part, never a torn entry.
func TestLogSurvivesAKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "messages.log")
	h, s, _ := loggedServer(t, path, "flush_interval 100ms", "")
	c := dial(t, s)
	remote := c.conn.LocalAddr().String()
	var sent []exchange
	chat(c, &sent, "IAMAT killed +1+1 1700000000", "WHATSAT killed 1 1", "nonsense")
	h.waitUntil("the lines are in the file", func() bool {
		return slices.Equal(loggedLines(t, path)[remote], sent)
	})
	flushed := len(sent)
	chat(c, &sent, "IAMAT killed +2+2 1700000001", "still more")
	h.kill(s)
	got := loggedLines(t, path)[remote] // fails on an entry that is not whole JSON
	if len(got) < flushed || len(got) > len(sent) || !slices.Equal(got, sent[:len(got)]) {
		t.Errorf("after the kill the log holds %q, want the %d lines flushed before it, then at most %q in order",
			got, flushed, sent[flushed:])
	}
}
