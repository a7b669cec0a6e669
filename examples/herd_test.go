package examples

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

const kiwiLocation = "+34.068930-118.445127"

var atReply = regexp.MustCompile(`^AT (\S+) ([+-]\d+\.\d{9}) (\S+) (\S+) (\S+)$`)

func TestIAMATReplyFormat(t *testing.T) {
	h := startHerd(t)
	c := dial(t, h.servers[farmar])
	defer c.close()
	sent := time.Now()
	clientTime := fmt.Sprintf("%d.%09d", sent.Unix(), sent.Nanosecond())
	reply := c.iamat("kiwi.cs.ucla.edu", kiwiLocation, clientTime)
	m := atReply.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("reply %q is not `AT <server> <skew> <client> <location> <time>`", reply)
	}
	if m[1] != "Farmar" || m[3] != "kiwi.cs.ucla.edu" || m[4] != kiwiLocation || m[5] != clientTime {
		t.Errorf("reply %q: want server Farmar and the request's last three fields byte for byte", reply)
	}
	skew, _ := strconv.ParseFloat(m[2], 64)
	if elapsed := time.Since(sent).Seconds(); skew < 0 || skew > elapsed {
		t.Errorf("skew %s: want within [0, %f] for a client with our clock", m[2], elapsed)
	}

	// A client whose clock runs ahead gets a negative skew, fields copied as sent.
	future := fmt.Sprintf("%d.5", time.Now().Unix()+3600)
	reply = c.iamat("ahead", "+0-0", future)
	m = atReply.FindStringSubmatch(reply)
	if m == nil || m[5] != future || m[4] != "+0-0" {
		t.Fatalf("reply %q: want the location +0-0 and the time %s", reply, future)
	}
	if skew, _ := strconv.ParseFloat(m[2], 64); skew < -3600.5 || skew > -3599.5+time.Since(sent).Seconds() {
		t.Errorf("skew %s for a client an hour ahead: want within (-3600.5, -3599.5]", m[2])
	}
}

func TestFloodAndWhatsatAcrossTheHerd(t *testing.T) {
	h := startHerd(t)
	c := dial(t, h.servers[hill])
	defer c.close()
	at := c.iamat("kiwi.cs.ucla.edu", kiwiLocation, now())

	// Young is three hops from Hill (Hill-Meeks-Farmar-Young): it answers with
	// Hill's line, origin name and skew unchanged.
	h.waitStored("kiwi.cs.ucla.edu", at, h.servers...)

	for _, tt := range []struct {
		server *server
		bound  int
		api    string
	}{
		{h.servers[hill], 3, "legacy"},
		{h.servers[young], 2, "new"},
		{h.servers[meeks], 4, "file"},
		{h.servers[farmar], 0, "legacy"},
	} {
		t.Run(tt.server.name, func(t *testing.T) {
			c := dial(t, tt.server)
			defer c.close()
			c.send(fmt.Sprintf("WHATSAT kiwi.cs.ucla.edu 10 %d\n", tt.bound))
			gotAT := c.line()
			if gotAT != at {
				t.Fatalf("first line %q, want Hill's AT line %q", gotAT, at)
			}
			doc := c.whatsatReply(gotAT)
			checkPlaces(t, doc, tt.bound)
		})
	}
	if h.places.Requests() == 0 {
		t.Error("the fake Google got no request")
	}
}

// checkPlaces checks a WHATSAT JSON document: valid, folded, the legacy shape,
// results cut to bound.
func checkPlaces(t *testing.T, doc string, bound int) {
	t.Helper()
	if strings.Contains(doc, "\n\n") {
		t.Errorf("JSON has a blank line:\n%s", doc)
	}
	var places struct {
		HTMLAttributions []any            `json:"html_attributions"`
		Results          []map[string]any `json:"results"`
		Status           string           `json:"status"`
	}
	if err := json.Unmarshal([]byte(doc), &places); err != nil {
		t.Fatalf("reply JSON: %v\n%s", err, doc)
	}
	if places.Status != "OK" || places.HTMLAttributions == nil {
		t.Errorf("status %q, html_attributions %v: want OK and an array", places.Status, places.HTMLAttributions)
	}
	if len(places.Results) != bound {
		t.Errorf("%d results, want the bound %d", len(places.Results), bound)
	}
	for _, r := range places.Results {
		if r["name"] == nil && r["displayName"] == nil {
			t.Errorf("result without a name: %v", r)
		}
	}
}

func TestOlderIAMATNeverWins(t *testing.T) {
	h := startHerd(t)
	newer := fmt.Sprintf("%d.000000002", time.Now().Unix())
	older := strings.TrimSuffix(newer, "2") + "1"

	c := dial(t, h.servers[farmar])
	defer c.close()
	at := c.iamat("kiwi", kiwiLocation, newer)
	h.waitStored("kiwi", at, h.servers...)

	y := dial(t, h.servers[young])
	defer y.close()
	reply := y.iamat("kiwi", "+1.0-1.0", older)
	if m := atReply.FindStringSubmatch(reply); m == nil || m[1] != "Young" || m[5] != older {
		t.Errorf("the older IAMAT still gets its own AT reply; got %q", reply)
	}
	// A marker sent after the older update reaches every server only after
	// anything the older one could have flooded.
	marker := y.iamat("marker", kiwiLocation, now())
	h.waitStored("marker", marker, h.servers...)
	for _, s := range h.servers {
		if got := h.stored(s, "kiwi"); got != at {
			t.Errorf("%s holds %q, want the newer %q", s.name, got, at)
		}
	}
}

func TestEqualTimesTieBreakTheSameEverywhere(t *testing.T) {
	h := startHerd(t)
	same := now()
	f := dial(t, h.servers[farmar])
	defer f.close()
	g := dial(t, h.servers[gasol])
	defer g.close()
	fromFarmar := f.iamat("twin", kiwiLocation, same)
	fromGasol := g.iamat("twin", kiwiLocation, same)
	want := max(fromFarmar, fromGasol) // byte-wise greater line wins
	h.waitStored("twin", want, h.servers...)
}

func TestInvalidMessagesKeepTheConnection(t *testing.T) {
	h := startHerd(t)
	c := dial(t, h.servers[gasol])
	defer c.close()
	for _, tt := range []struct{ send, want string }{
		{"IAMAT kiwi +34.068930-118.445127", "? IAMAT kiwi +34.068930-118.445127"},
		{"  IAMAT kiwi 34.068930-118.445127 1  \r", "? IAMAT kiwi 34.068930-118.445127 1"},
		{"IAMAT kiwi +91-118 1", "? IAMAT kiwi +91-118 1"},
		{"IAMAT kiwi +34-118 1.0000000001", "? IAMAT kiwi +34-118 1.0000000001"},
		{"iamat kiwi +34-118 1", "? iamat kiwi +34-118 1"},
		{"WHATSAT nobody 10 5", "? WHATSAT nobody 10 5"},
		{"WHATSAT kiwi 51 5", "? WHATSAT kiwi 51 5"},
		{"WHATSAT kiwi 10 21", "? WHATSAT kiwi 10 21"},
		{"AT Farmar +0.1 kiwi +34-118", "? AT Farmar +0.1 kiwi +34-118"},
		{"HELLO\tworld", "? HELLO\tworld"},
		{"\x00\xff\xfe", "? \x00\xff\xfe"},
		{"IAMAT\u00a0kiwi +34-118 1", "? IAMAT\u00a0kiwi +34-118 1"},
	} {
		c.send(tt.send + "\n")
		if got := c.line(); got != tt.want {
			t.Errorf("sent %q: got %q, want %q", tt.send, got, tt.want)
		}
	}
	// A blank line gets no reply, a valid AT gets none either; the next
	// reply belongs to the next IAMAT.
	c.send(" \t\n")
	c.send("AT Farmar +0.100000000 peer-sent +34-118 1\n")
	if got := c.iamat("kiwi", kiwiLocation, now()); !strings.HasPrefix(got, "AT Gasol ") {
		t.Errorf("after invalid lines: %q, want an AT reply", got)
	}
	if got := h.stored(h.servers[gasol], "peer-sent"); got != "AT Farmar +0.100000000 peer-sent +34-118 1" {
		t.Errorf("the AT sent on a client connection was stored as %q", got)
	}
}

func TestManyCommandsInOneByteWrites(t *testing.T) {
	h := startHerd(t)
	c := dial(t, h.servers[young])
	defer c.close()
	var script strings.Builder
	const n = 30
	for i := 0; i < n; i++ {
		fmt.Fprintf(&script, "IAMAT client-%d %s %d.%09d\n", i, kiwiLocation, time.Now().Unix(), i)
	}
	script.WriteString("bogus\nWHATSAT client-7 5 1\n")
	for _, b := range []byte(script.String()) {
		c.send(string(b))
	}
	for i := 0; i < n; i++ {
		m := atReply.FindStringSubmatch(c.line())
		if m == nil || m[3] != fmt.Sprintf("client-%d", i) {
			t.Fatalf("reply %d: %v, want the AT for client-%d in order", i, m, i)
		}
	}
	if got := c.line(); got != "? bogus" {
		t.Errorf("got %q, want ? bogus", got)
	}
	at := c.line()
	if m := atReply.FindStringSubmatch(at); m == nil || m[3] != "client-7" {
		t.Fatalf("WHATSAT reply starts %q", at)
	}
	checkPlaces(t, c.whatsatReply(at), 1)
}

func TestHalfClosedClientIsAnswered(t *testing.T) {
	h := startHerd(t)
	c := dial(t, h.servers[farmar])
	defer c.close()
	t0 := now()
	// The last message has no newline: it still counts.
	c.send("IAMAT half " + kiwiLocation + " " + t0 + "\nnonsense\nWHATSAT half 10 2")
	if err := c.conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, err := io.ReadAll(c.r)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(string(all), "\n", 4)
	if len(parts) < 4 {
		t.Fatalf("reply %q: want an AT, a ?, and a WHATSAT reply", all)
	}
	if m := atReply.FindStringSubmatch(parts[0]); m == nil || m[5] != t0 {
		t.Errorf("first reply %q", parts[0])
	}
	if parts[1] != "? nonsense" {
		t.Errorf("second reply %q", parts[1])
	}
	if parts[2] != parts[0] {
		t.Errorf("WHATSAT reply starts %q, want the stored %q", parts[2], parts[0])
	}
	if !strings.HasSuffix(parts[3], "}\n\n") {
		t.Errorf("WHATSAT JSON does not end with }\\n\\n: %q", parts[3])
	}
	checkPlaces(t, strings.TrimSuffix(parts[3], "\n"), 2)
}

func TestPlacesProviderFailures(t *testing.T) {
	h := startHerd(t)
	c := dial(t, h.servers[farmar])
	defer c.close()
	at := c.iamat("kiwi", kiwiLocation, now())

	h.places.SetLegacyStatus("ZERO_RESULTS")
	c.send("WHATSAT kiwi 10 5\n")
	if got := c.line(); got != at {
		t.Fatalf("got %q, want %q", got, at)
	}
	if doc := c.whatsatReply(at); !strings.Contains(doc, `"ZERO_RESULTS"`) {
		t.Errorf("a non-OK Google status is not passed through: %q", doc)
	}
	h.places.SetLegacyStatus("")

	for _, status := range []int{500, 403} {
		h.places.SetFailure(status)
		c.send("WHATSAT kiwi 10 5\n")
		if got := c.line(); got != "? WHATSAT kiwi 10 5" {
			t.Errorf("provider answering HTTP %d: got %q", status, got)
		}
	}
	h.places.SetFailure(0)
	if got, _ := c.whatsat("kiwi", "10", "1"); got != at {
		t.Errorf("after the provider recovered: %q", got)
	}
	// The key never reaches the logs, written out whole by a stop.
	h.gracefulStop(h.servers[farmar])
	log, _ := os.ReadFile(h.dir + "/Farmar.log")
	out, _ := os.ReadFile(h.servers[farmar].output)
	for _, data := range [][]byte{log, out} {
		if strings.Contains(string(data), fakeplaces.APIKey) {
			t.Errorf("the API key appears in a log")
		}
	}
}

func TestKilledServerRejoinsAndConverges(t *testing.T) {
	h := startHerd(t)
	early := dial(t, h.servers[farmar]).iamat("early", kiwiLocation, now())
	h.waitStored("early", early, h.servers...)

	// Meeks is Hill's only peer: with Meeks dead, Hill is cut off.
	h.kill(h.servers[meeks])
	hillSide := dial(t, h.servers[hill]).iamat("hill-side", kiwiLocation, now())
	farSide := dial(t, h.servers[young]).iamat("far-side", "-33.8688+151.2093", now())
	h.waitStored("far-side", farSide, h.servers[farmar], h.servers[gasol], h.servers[young])
	if got := h.stored(h.servers[farmar], "hill-side"); got != "" {
		t.Fatalf("Farmar learned %q with Meeks down", got)
	}

	h.start(h.servers[meeks])
	took := h.waitUntil("everyone converges", func() bool {
		for _, s := range h.servers {
			if h.stored(s, "hill-side") != hillSide || h.stored(s, "far-side") != farSide || h.stored(s, "early") != early {
				return false
			}
		}
		return true
	})
	t.Logf("converged %v after the restart", took)
}

func TestReloadAddingAPeerKeepsTheTable(t *testing.T) {
	h := startHerd(t)
	hillServer := h.servers[hill]
	before := dial(t, hillServer).iamat("before", kiwiLocation, now())
	h.waitStored("before", before, h.servers...)

	// Without Meeks, Hill reaches Young only over the link the reload adds.
	h.kill(h.servers[meeks])
	config, err := os.ReadFile(hillServer.config)
	if err != nil {
		t.Fatal(err)
	}
	withYoung := strings.Replace(string(config), "\t\tplaces ", fmt.Sprintf("\t\tpeer Young %s\n\t\tplaces ", h.servers[young].addr()), 1)
	h.reload(hillServer, withYoung)

	if got := h.stored(hillServer, "before"); got != before {
		t.Errorf("after the reload Hill holds %q, want %q", got, before)
	}
	after := dial(t, hillServer).iamat("after", kiwiLocation, now())
	h.waitStored("after", after, h.servers[young], h.servers[farmar], h.servers[gasol])
}

func TestReloadKeepsOpenConnections(t *testing.T) {
	h := startHerd(t)
	s := h.servers[gasol]
	c := dial(t, s)
	defer c.close()
	first := c.iamat("kept", kiwiLocation, now())
	config, _ := os.ReadFile(s.config)
	h.reload(s, strings.Replace(string(config), "name Gasol", "name Gasol2", 1))
	second := c.iamat("kept", kiwiLocation, now())
	if !strings.HasPrefix(first, "AT Gasol ") || !strings.HasPrefix(second, "AT Gasol2 ") {
		t.Errorf("replies %q then %q: want the open connection to work and use the new name", first, second)
	}
}

func TestSkewIsExactForFarFutureAndEpoch(t *testing.T) {
	h := startHerd(t)
	c := dial(t, h.servers[farmar])
	defer c.close()
	for _, clientTime := range []string{"0", "0.000000001", "99999999999999999999999.999999999"} {
		m := atReply.FindStringSubmatch(c.iamat("edge", "+90.0-180.0", clientTime))
		if m == nil || m[5] != clientTime {
			t.Fatalf("IAMAT at %s: %v", clientTime, m)
		}
		skew, _ := strconv.ParseFloat(m[2], 64)
		want := float64(time.Now().UnixNano())/1e9 - mustFloat(clientTime)
		if math.Abs(skew-want) > 60 && math.Abs(skew-want)/math.Abs(want) > 1e-9 {
			t.Errorf("skew %s for time %s, want about %f", m[2], clientTime, want)
		}
	}
}

func mustFloat(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}
