package protocol

import (
	"bytes"
	"cmp"
	"math/big"
	"strings"
	"testing"
)

func fields(s string) [][]byte { return Fields(nil, []byte(s)) }

func TestFields(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{"", nil},
		{" \t\r\n\f\v", nil},
		{"IAMAT a +1+1 1", []string{"IAMAT", "a", "+1+1", "1"}},
		{"\t IAMAT\v\fa  +1+1\r\n1 \r\n", []string{"IAMAT", "a", "+1+1", "1"}},
		// Unicode spaces are not protocol whitespace.
		{"IAMAT\u00a0a x", []string{"IAMAT\u00a0a", "x"}},
		{"a\u2003b", []string{"a\u2003b"}},
		{"a\x00b c", []string{"a\x00b", "c"}},
	}
	for _, tt := range tests {
		got := fields(tt.line)
		if len(got) != len(tt.want) {
			t.Errorf("Fields(%q) = %q, want %q", tt.line, got, tt.want)
			continue
		}
		for i := range got {
			if string(got[i]) != tt.want[i] {
				t.Errorf("Fields(%q)[%d] = %q, want %q", tt.line, i, got[i], tt.want[i])
			}
		}
	}
}

func TestUpdatedClient(t *testing.T) {
	tests := []struct {
		line string
		want string // "" for nil
	}{
		{"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997", "kiwi.cs.ucla.edu"},
		{"AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997", "kiwi.cs.ucla.edu"},
		{" \tIAMAT\v kiwi \r\n", "kiwi"},
		{"AT  Farmar\t+0.1   kiwi", "kiwi"},
		// Only the shape up to the client field matters: the line is not validated.
		{"IAMAT kiwi", "kiwi"},
		{"AT Farmar +0.1", ""},
		{"IAMAT", ""},
		{"IAMAT \t ", ""},
		{"WHATSAT kiwi 10 5", ""},
		{"IAMATkiwi x y z", ""},
		{"iamat kiwi +1+1 1", ""},
		{"AT\u00a0Farmar +0.1 kiwi x y", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := UpdatedClient([]byte(tt.line))
		if (got == nil) != (tt.want == "") || string(got) != tt.want {
			t.Errorf("UpdatedClient(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestTrimSpace(t *testing.T) {
	if got := string(TrimSpace([]byte("\v\f IAMAT  x \r\n"))); got != "IAMAT  x" {
		t.Errorf("TrimSpace = %q", got)
	}
	if got := TrimSpace([]byte(" \t ")); len(got) != 0 {
		t.Errorf("TrimSpace of blanks = %q", got)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		line string
		want Command
	}{
		{"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997", IAMAT},
		{"IAMAT k +34-118 1520023934", IAMAT},
		{"IAMAT k +90-180 0", IAMAT},
		{"IAMAT k -90.000+180.0000 0.1", IAMAT},
		{"IAMAT k +90.0000001-118 1", Invalid},
		{"IAMAT k +34-180.000000001 1", Invalid},
		{"IAMAT k +091-118 1", Invalid},
		{"IAMAT k +0090-0180 1", IAMAT},
		{"IAMAT k 34.06-118.44 1", Invalid},
		{"IAMAT k +34.06118.44 1", Invalid},
		{"IAMAT k +34.-118.44 1", Invalid},
		{"IAMAT k +.5-118.44 1", Invalid},
		{"IAMAT k +34.06-118.44+1 1", Invalid},
		{"IAMAT k +34.06-118.44 1.1234567890", Invalid},
		{"IAMAT k +34.06-118.44 1.123456789", IAMAT},
		{"IAMAT k +34.06-118.44 99999999999999999999999999.5", IAMAT},
		{"IAMAT k +34.06-118.44 -1", Invalid},
		{"IAMAT k +34.06-118.44 +1", Invalid},
		{"IAMAT k +34.06-118.44 1e9", Invalid},
		{"IAMAT k +34.06-118.44 inf", Invalid},
		{"IAMAT k +34.06-118.44 nan", Invalid},
		{"IAMAT k +34.06-118.44 1_000", Invalid},
		{"IAMAT k +34.06-118.44 1.", Invalid},
		{"IAMAT k +34.06-118.44", Invalid},
		{"IAMAT k +34.06-118.44 1 extra", Invalid},
		{"iamat k +34.06-118.44 1", Invalid},
		{"IAMAT k +٣٤-118 1", Invalid},
		{"WHATSAT kiwi 10 5", WHATSAT},
		{"WHATSAT kiwi 50 20", WHATSAT},
		{"WHATSAT kiwi 50.0000000 0", WHATSAT},
		{"WHATSAT kiwi 50.0000001 5", Invalid},
		{"WHATSAT kiwi 50.00000000000000000001 5", Invalid},
		{"WHATSAT kiwi 0.001 5", WHATSAT},
		{"WHATSAT kiwi 0 5", Invalid},
		{"WHATSAT kiwi 0.000 5", Invalid},
		{"WHATSAT kiwi -1 5", Invalid},
		{"WHATSAT kiwi 10 21", Invalid},
		{"WHATSAT kiwi 10 020", WHATSAT},
		{"WHATSAT kiwi 10 -1", Invalid},
		{"WHATSAT kiwi 10 1.0", Invalid},
		{"WHATSAT kiwi 1e1 5", Invalid},
		{"WHATSAT kiwi 10", Invalid},
		{"AT Farmar +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997", AT},
		{"AT Farmar -12 kiwi +34.068930-118.445127 1520023934", AT},
		{"AT Farmar 0.26 kiwi +34.068930-118.445127 1520023934", Invalid},
		{"AT Farmar +0.26 kiwi +34.068930-118.445127", Invalid},
		{"AT Farmar +0.26 kiwi +94.068930-118.445127 1", Invalid},
		{"", Invalid},
		{"HELLO", Invalid},
	}
	for _, tt := range tests {
		if got := Classify(fields(tt.line)); got != tt.want {
			t.Errorf("Classify(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

func TestCompareTime(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "1", 0},
		{"1", "1.000000000", 0},
		{"001", "1.0", 0},
		{"1.1", "1.09", 1},
		{"1.000000001", "1", 1},
		{"9", "10", -1},
		{"1520023934.918963997", "1520023934.918963998", -1},
		{"99999999999999999999999", "99999999999999999999998.999999999", 1},
		{"0", "0.000000001", -1},
	}
	for _, tt := range tests {
		if got := CompareTime(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareTime(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareTime([]byte(tt.b), []byte(tt.a)); got != -tt.want {
			t.Errorf("CompareTime(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
		ka, kb := TimeKey(tt.a), TimeKey(tt.b)
		if ka != 0 && kb != 0 && cmp.Compare(ka, kb) != tt.want {
			t.Errorf("TimeKey(%q) = %d, TimeKey(%q) = %d: they order unlike the times", tt.a, ka, tt.b, kb)
		}
	}
}

func TestTimeKey(t *testing.T) {
	tests := []struct {
		time string
		want uint64
	}{
		{"0", 1},
		{"0.000000001", 2},
		{"1.5", 1_500_000_001},
		{"001.50", 1_500_000_001},
		{"1520023934.918963997", 1_520_023_934_918_963_998},
		{"9999999999.999999999", 10_000_000_000_000_000_000},
		{"10000000000", 0},
		{"99999999999999999999999", 0},
		{"1.0000000001", 0},
		{"1e9", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := TimeKey(tt.time); got != tt.want {
			t.Errorf("TimeKey(%q) = %d, want %d", tt.time, got, tt.want)
		}
		if got := TimeKey([]byte(tt.time)); got != tt.want {
			t.Errorf("TimeKey([]byte(%q)) = %d, want %d", tt.time, got, tt.want)
		}
	}
}

func TestAppendSkew(t *testing.T) {
	const received = 1520023935*1e9 + 182837383 // 1520023935.182837383
	tests := []struct {
		client string
		want   string
	}{
		{"1520023934.918963997", "+0.263873386"},
		{"1520023935.182837383", "+0.000000000"},
		{"1520023935.182957383", "-0.000120000"},
		{"1520023935.2", "-0.017162617"},
		{"1520023936", "-0.817162617"},
		{"0", "+1520023935.182837383"},
		{"0000.5", "+1520023934.682837383"},
		{"99999999999999999999", "-99999999998479976063.817162617"},
		{"1000000000000000000", "-999999998479976064.817162617"},
	}
	for _, tt := range tests {
		if got := string(AppendSkew(nil, received, []byte(tt.client))); got != tt.want {
			t.Errorf("AppendSkew(%q) = %q, want %q", tt.client, got, tt.want)
		}
	}
}

func TestParseNumbers(t *testing.T) {
	if km, ok := ParseRadius([]byte("12.5")); !ok || km != 12.5 {
		t.Errorf("ParseRadius(12.5) = %v, %v", km, ok)
	}
	if b, ok := ParseBound([]byte("007")); !ok || b != 7 {
		t.Errorf("ParseBound(007) = %v, %v", b, ok)
	}
	if _, ok := ParseBound([]byte("99999999999999999999999")); ok {
		t.Error("ParseBound accepted a huge bound")
	}
	lat, lng, ok := ParseLocation([]byte("+34.068930-118.445127"))
	if !ok || lat != 34.06893 || lng != -118.445127 {
		t.Errorf("ParseLocation = %v, %v, %v", lat, lng, ok)
	}
}

func TestReplies(t *testing.T) {
	f := fields("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997")
	got := string(AppendIAMATReply(nil, "Farmar", 1520023935*1e9+182837383, f))
	want := "AT Farmar +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997"
	if got != want {
		t.Errorf("AppendIAMATReply = %q, want %q", got, want)
	}
	if got := string(AppendInvalidReply(nil, []byte("IAMAT x"))); got != "? IAMAT x\n" {
		t.Errorf("AppendInvalidReply = %q", got)
	}
}

func TestHotPathAllocations(t *testing.T) {
	line := []byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997")
	var f [][]byte
	out := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		f = Fields(f, line)
		if Classify(f) != IAMAT {
			t.Fatal("not IAMAT")
		}
		out = AppendIAMATReply(out[:0], "Farmar", 1520023935e9, f)
		if UpdatedClient(line) == nil {
			t.Fatal("no client")
		}
	})
	if allocs != 0 {
		t.Errorf("IAMAT parse and reply allocate %v times, want 0", allocs)
	}
}

// FuzzLine checks the parser's promises on any input: no panic, a command
// only for a line of the right shape, and a skew that adds back up to the
// receive time exactly.
func FuzzLine(f *testing.F) {
	for _, seed := range []string{
		"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997",
		"WHATSAT kiwi.cs.ucla.edu 10 5",
		"AT Farmar +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997",
		"IAMAT k +90-180 99999999999999999999999999.123456789",
		"IAMAT k -90.0+180.00 0",
		"WHATSAT k 50.0000001 21",
		"\x00\xff IAMAT\u00a0k",
		"",
		"HERD 1 HELLO Farmar 3f9a2c71d04e8b65",
		"HERD 1 SINCE 3f9a2c71d04e8b65 1795633160797134656 others",
		"HERD 1 THROUGH 18446744073709551615",
	} {
		f.Add(seed, int64(1520023935182837383))
	}
	f.Fuzz(func(t *testing.T, line string, received int64) {
		if received < 0 {
			received = -received
		}
		if received < 0 {
			received = 0
		}
		fs := Fields(nil, []byte(line))
		for _, field := range fs {
			if len(field) == 0 || bytes.ContainsAny(field, " \t\r\n\f\v") {
				t.Fatalf("bad field %q", field)
			}
		}
		cmd := Classify(fs)
		// UpdatedClient names the client field of any IAMAT- or AT-shaped line.
		var updated []byte
		switch {
		case len(fs) > IAMATClient && string(fs[0]) == "IAMAT":
			updated = fs[IAMATClient]
		case len(fs) > ATClient && string(fs[0]) == "AT":
			updated = fs[ATClient]
		}
		if got := UpdatedClient([]byte(line)); (got == nil) != (updated == nil) || !bytes.Equal(got, updated) {
			t.Fatalf("UpdatedClient = %q, want %q", got, updated)
		}
		if cmd == HERD {
			// A line of the exchange formats back to its own fields.
			m, _ := ParseSync(fs)
			var again []byte
			switch m.Kind {
			case SyncHello:
				again = AppendHello(nil, string(m.Name), string(m.Epoch))
			case SyncSince:
				again = AppendSince(nil, string(m.Epoch), m.Seq, m.All)
			case SyncThrough:
				again = AppendThrough(nil, m.Seq)
			}
			if got := bytes.Join(fs, []byte(" ")); !bytes.Equal(append(got, '\n'), again) {
				t.Fatalf("%q parsed as %+v formats as %q", line, m, again)
			}
			return
		}
		want := map[Command]int{IAMAT: 4, WHATSAT: 4, AT: 6}
		if cmd != Invalid && len(fs) != want[cmd] {
			t.Fatalf("%v with %d fields", cmd, len(fs))
		}
		if cmd != IAMAT {
			return
		}
		reply := string(AppendIAMATReply(nil, "S", received, fs))
		rf := Fields(nil, []byte(reply))
		if Classify(rf) != AT {
			t.Fatalf("reply %q is not a valid AT", reply)
		}
		// client time + skew == received, exactly.
		skew := new(big.Rat)
		if _, ok := skew.SetString(strings.TrimPrefix(string(rf[ATSkew]), "+")); !ok {
			t.Fatalf("skew %q", rf[ATSkew])
		}
		client, _ := new(big.Rat).SetString(string(fs[IAMATTime]))
		sum := new(big.Rat).Add(client, skew)
		recv := new(big.Rat).SetFrac(big.NewInt(received), big.NewInt(1e9))
		if sum.Cmp(recv) != 0 {
			t.Fatalf("time %s + skew %s = %s, want %s", fs[IAMATTime], rf[ATSkew], sum.FloatString(9), recv.FloatString(9))
		}
	})
}

func BenchmarkParseIAMAT(b *testing.B) {
	line := []byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997")
	var f [][]byte
	b.ReportAllocs()
	for b.Loop() {
		f = Fields(f, line)
		if Classify(f) != IAMAT {
			b.Fatal("not IAMAT")
		}
	}
}

func BenchmarkFormatIAMATReply(b *testing.B) {
	f := Fields(nil, []byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997"))
	out := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		out = AppendIAMATReply(out[:0], "Farmar", 1520023935182837383, f)
	}
}

// FuzzTimeKey checks that keys order valid times exactly as CompareTime does.
func FuzzTimeKey(f *testing.F) {
	f.Add("1520023934.918963997", "1520023934.918963998")
	f.Add("001.5", "1.50")
	f.Add("9999999999.999999999", "10000000000")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !ValidTime([]byte(a)) || !ValidTime([]byte(b)) {
			return
		}
		ka, kb := TimeKey(a), TimeKey(b)
		if ka == 0 || kb == 0 {
			return
		}
		if got, want := cmp.Compare(ka, kb), CompareTime(a, b); got != want {
			t.Fatalf("keys %d, %d of %q, %q compare %d; the times compare %d", ka, kb, a, b, got, want)
		}
	})
}
