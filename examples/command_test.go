package examples

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// herdCommand runs `caddy herd <args>` and returns its output and whether it
// exited with status 0.
func herdCommand(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, err := exec.Command(caddyBinary, append([]string{"herd"}, args...)...).CombinedOutput()
	if err != nil {
		if _, exited := err.(*exec.ExitError); !exited {
			t.Fatalf("running caddy herd: %v", err)
		}
	}
	return string(out), err == nil
}

func TestHerdCommand(t *testing.T) {
	h := startHerd(t)
	farmarServer, youngServer := h.servers[farmar], h.servers[young]

	out, ok := herdCommand(t, "iamat", "--server", farmarServer.addr(), "--time", "1520023934.918963997", "kiwi", "34.068930", "-118.445127")
	m := atReply.FindStringSubmatch(strings.TrimSpace(out))
	if !ok || m == nil || m[1] != "Farmar" || m[4] != "+34.068930-118.445127" || m[5] != "1520023934.918963997" {
		t.Fatalf("caddy herd iamat: ok=%v, output %q", ok, out)
	}
	at := strings.TrimSpace(out)
	h.waitStored("kiwi", at, youngServer)

	out, ok = herdCommand(t, "whatsat", "--server", youngServer.addr(), "kiwi", "10", "2")
	first, doc, _ := strings.Cut(out, "\n")
	var places struct{ Results []any }
	if !ok || first != at || json.Unmarshal([]byte(doc), &places) != nil || len(places.Results) != 2 || !strings.Contains(doc, "\n  ") {
		t.Errorf("caddy herd whatsat: ok=%v, output %q", ok, out)
	}

	for _, args := range [][]string{
		{"whatsat", "--server", youngServer.addr(), "nobody", "10", "2"},
		{"iamat", "--server", farmarServer.addr(), "kiwi", "91", "0"},
		{"iamat", "--server", "127.0.0.1:1", "kiwi", "1", "1"},
		{"peers", "--address", "127.0.0.1:1"},
	} {
		if out, ok := herdCommand(t, args...); ok {
			t.Errorf("caddy herd %v succeeded: %q", args, out)
		}
	}

	admin := farmarServer.adminURL("")[len("http://"):]
	out, ok = herdCommand(t, "peers", "--address", admin)
	if !ok || !strings.Contains(out, "Meeks") || !strings.Contains(out, "Young") || !strings.Contains(out, "PEER") {
		t.Errorf("caddy herd peers: ok=%v, output %q", ok, out)
	}
	out, ok = herdCommand(t, "storage", "--address", admin, "--snapshot")
	for _, want := range []string{"directory", "data/Farmar", "fsync", "everysec", "records", "last snapshot", "knows Meeks", "knows Young"} {
		if !ok || !strings.Contains(out, want) {
			t.Errorf("caddy herd storage --snapshot: ok=%v, output %q lacks %q", ok, out, want)
		}
	}
	if strings.Contains(out, "last snapshot  never") {
		t.Errorf("caddy herd storage --snapshot shows no snapshot: %q", out)
	}
	out, ok = herdCommand(t, "dump", "--address", admin)
	var rec tableRecord
	if !ok || json.Unmarshal([]byte(strings.TrimSpace(out)), &rec) != nil || rec.AT != at {
		t.Errorf("caddy herd dump: ok=%v, output %q", ok, out)
	}

	out, _ = herdCommand(t, "--help")
	for _, sub := range []string{"iamat", "whatsat", "peers", "storage", "dump"} {
		if !strings.Contains(out, sub) {
			t.Errorf("caddy herd --help does not list %s: %q", sub, out)
		}
	}
}
