package protocol

import (
	"bytes"
	"testing"
)

func TestParseSync(t *testing.T) {
	tests := []struct {
		line string
		want Sync
		ok   bool
	}{
		{"HERD 1 HELLO Farmar 3f9a2c71d04e8b65", Sync{Kind: SyncHello, Name: []byte("Farmar"), Epoch: []byte("3f9a2c71d04e8b65")}, true},
		{"HERD 1 SINCE 3f9a2c71d04e8b65 1795633160797134656 others", Sync{Kind: SyncSince, Epoch: []byte("3f9a2c71d04e8b65"), Seq: 1795633160797134656}, true},
		{"HERD 1 SINCE - 0 all", Sync{Kind: SyncSince, Epoch: []byte("-"), All: true}, true},
		{"HERD 1 THROUGH 18446744073709551615", Sync{Kind: SyncThrough, Seq: 18446744073709551615}, true},
		{"HERD\t1  THROUGH 7\r", Sync{Kind: SyncThrough, Seq: 7}, true},
		{"HERD 1 THROUGH 18446744073709551616", Sync{}, false}, // over 64 bits
		{"HERD 1 THROUGH 007", Sync{}, false},
		{"HERD 1 THROUGH -1", Sync{}, false},
		{"HERD 1 THROUGH", Sync{}, false},
		{"HERD 1 THROUGH 1 2", Sync{}, false},
		{"HERD 2 THROUGH 1", Sync{}, false}, // another version
		{"herd 1 THROUGH 1", Sync{}, false},
		{"HERD 1 HELLO Farmar -", Sync{}, false}, // a sender always has an epoch
		{"HERD 1 HELLO Farmar", Sync{}, false},
		{"HERD 1 HELLO Farmar ab/cd", Sync{}, false},
		{"HERD 1 HELLO Farmar " + string(bytes.Repeat([]byte("a"), 65)), Sync{}, false},
		{"HERD 1 SINCE abc 12 some", Sync{}, false},
		{"HERD 1 SINCE abc x others", Sync{}, false},
		{"HERD 1 BYE", Sync{}, false},
		{"HERD", Sync{}, false},
	}
	for _, tt := range tests {
		fields := Fields(nil, []byte(tt.line))
		got, ok := ParseSync(fields)
		if ok != tt.ok || got.Kind != tt.want.Kind || !bytes.Equal(got.Name, tt.want.Name) || !bytes.Equal(got.Epoch, tt.want.Epoch) || got.Seq != tt.want.Seq || got.All != tt.want.All {
			t.Errorf("ParseSync(%q) = %+v, %v, want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
		if cmd := Classify(fields); (cmd == HERD) != tt.ok {
			t.Errorf("Classify(%q) = %v", tt.line, cmd)
		}
	}
}

func TestAppendSyncLines(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{string(AppendHello(nil, "Farmar", "3f9a2c71d04e8b65")), "HERD 1 HELLO Farmar 3f9a2c71d04e8b65\n"},
		{string(AppendSince(nil, "3f9a2c71d04e8b65", 42, false)), "HERD 1 SINCE 3f9a2c71d04e8b65 42 others\n"},
		{string(AppendSince(nil, NoEpoch, 0, true)), "HERD 1 SINCE - 0 all\n"},
		{string(AppendThrough([]byte("x"), 18446744073709551615)), "xHERD 1 THROUGH 18446744073709551615\n"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestValidEpoch(t *testing.T) {
	for epoch, want := range map[string]bool{"3f9a2c71d04e8b65": true, "a-b_C9": true, "-": false, "": false, "a b": false, "é": false} {
		if got := ValidEpoch(epoch); got != want {
			t.Errorf("ValidEpoch(%q) = %v, want %v", epoch, got, want)
		}
	}
}
