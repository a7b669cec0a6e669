package caddyfile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/logging"
	_ "github.com/mholt/caddy-l4"

	_ "github.com/caddy-herd/caddy-herd/module/logwriter"
	_ "github.com/caddy-herd/caddy-herd/places"
)

var update = flag.Bool("update", false, "rewrite the golden JSON files")

func adapt(t *testing.T, filename, body string) ([]byte, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, _, err := adapter.Adapt([]byte(body), map[string]any{"filename": filename})
	return out, err
}

// TestGoldenAdapt adapts every shipped Caddyfile, and those in testdata that
// use what the shipped ones do not, and compares the JSON with
// testdata/<name>.json (go test -update rewrites them).
func TestGoldenAdapt(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.caddyfile")
	multiHost, _ := filepath.Glob("../examples/multi-host/*.caddyfile")
	extra, _ := filepath.Glob("testdata/*.caddyfile")
	files = append(append(append(files, multiHost...), extra...), "../Caddyfile.example")
	if len(files) < 12 {
		t.Fatalf("found only %v", files)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".caddyfile")
		if strings.Contains(file, "multi-host") {
			name = "multi-host-" + name
		}
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out, err := adapt(t, "Caddyfile", string(body))
			if err != nil {
				t.Fatalf("adapting %s: %v", file, err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run go test -update once): %v", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("%s adapts to\n%s\nwant (%s)\n%s", file, pretty.Bytes(), golden, want)
			}
		})
	}
}

func TestAdaptErrorsNameDirectiveAndLine(t *testing.T) {
	tests := []struct {
		name, body, line, message string
	}{
		{"missing name", "{\n\therd {\n\t\tpeer A 127.0.0.1:1\n\t}\n}", "at Caddyfile:", "herd: missing `name` subdirective"},
		{"name twice", "{\n\therd {\n\t\tname A\n\t\tname B\n\t}\n}", "at Caddyfile:4", "name: already set"},
		{"name with extra args", "{\n\therd {\n\t\tname A B\n\t}\n}", "at Caddyfile:3", "name:"},
		{"peer missing address", "{\n\therd {\n\t\tname A\n\t\tpeer B\n\t}\n}", "at Caddyfile:4", "peer:"},
		{"peer bad address", "{\n\therd {\n\t\tname A\n\t\tpeer B 127.0.0.1\n\t}\n}", "at Caddyfile:4", "peer B: address"},
		{"peer bad port", "{\n\therd {\n\t\tname A\n\t\tpeer B 127.0.0.1:99999\n\t}\n}", "at Caddyfile:4", "peer B: address"},
		{"duplicate peer name", "{\n\therd {\n\t\tname A\n\t\tpeer B 127.0.0.1:1\n\t\tpeer B 127.0.0.1:2\n\t}\n}", "at Caddyfile:5", "peer B: listed twice"},
		{"duplicate peer address", "{\n\therd {\n\t\tname A\n\t\tpeer B 127.0.0.1:1\n\t\tpeer C 127.0.0.1:1\n\t}\n}", "at Caddyfile:5", "peer C: address 127.0.0.1:1 is already peer B's"},
		{"peer named like self", "{\n\therd {\n\t\tname A\n\t\tpeer A 127.0.0.1:1\n\t}\n}", "at Caddyfile:4", "peer A: a peer cannot have this server's own name"},
		{"peer named like self, name after", "{\n\therd {\n\t\tpeer A 127.0.0.1:1\n\t\tname A\n\t}\n}", "at Caddyfile:", "peer A: a peer cannot have this server's own name"},
		{"max_radius too large", "{\n\therd {\n\t\tname A\n\t\tmax_radius 50.5\n\t}\n}", "at Caddyfile:4", "max_radius: \"50.5\" is not a radius within (0, 50] km"},
		{"max_radius zero", "{\n\therd {\n\t\tname A\n\t\tmax_radius 0\n\t}\n}", "at Caddyfile:4", "max_radius:"},
		{"max_bound too large", "{\n\therd {\n\t\tname A\n\t\tmax_bound 21\n\t}\n}", "at Caddyfile:4", "max_bound: \"21\" is not a whole number within [0, 20]"},
		{"max_bound negative", "{\n\therd {\n\t\tname A\n\t\tmax_bound -1\n\t}\n}", "at Caddyfile:4", "max_bound:"},
		{"cache_ttl without duration", "{\n\therd {\n\t\tname A\n\t\tcache_ttl\n\t}\n}", "at Caddyfile:4", "cache_ttl: want one duration"},
		{"cache_ttl two durations", "{\n\therd {\n\t\tname A\n\t\tcache_ttl 1m 2m\n\t}\n}", "at Caddyfile:4", "cache_ttl: want one duration"},
		{"cache_ttl not a duration", "{\n\therd {\n\t\tname A\n\t\tcache_ttl soon\n\t}\n}", "at Caddyfile:4", "cache_ttl: \"soon\" is not a duration"},
		{"cache_ttl negative", "{\n\therd {\n\t\tname A\n\t\tcache_ttl -5s\n\t}\n}", "at Caddyfile:4", "cache_ttl: \"-5s\" must not be negative"},
		{"unknown subdirective", "{\n\therd {\n\t\tname A\n\t\tfrobnicate\n\t}\n}", "at Caddyfile:4", "herd: unknown subdirective \"frobnicate\""},
		{"unknown provider", "{\n\therd {\n\t\tname A\n\t\tplaces bing\n\t}\n}", "at Caddyfile:4", "herd.places.bing"},
		{"places without provider", "{\n\therd {\n\t\tname A\n\t\tplaces\n\t}\n}", "at Caddyfile:4", "places: missing provider"},
		{"two providers", "{\n\therd {\n\t\tname A\n\t\tplaces file a.json\n\t\tplaces file b.json\n\t}\n}", "at Caddyfile:5", "places: a provider is already configured"},
		{"limits with an argument", "{\n\therd {\n\t\tname A\n\t\tlimits 5\n\t}\n}", "at Caddyfile:4", "limits: unexpected argument \"5\""},
		{"limits unknown subdirective", "{\n\therd {\n\t\tname A\n\t\tlimits {\n\t\t\tfrobnicate 1\n\t\t}\n\t}\n}", "at Caddyfile:5", "limits: unknown subdirective \"frobnicate\""},
		{"connections_per_ip zero", "{\n\therd {\n\t\tname A\n\t\tlimits {\n\t\t\tconnections_per_ip 0\n\t\t}\n\t}\n}", "at Caddyfile:5", "connections_per_ip: \"0\" is not a whole number of at least 1"},
		{"connections_per_ip missing", "{\n\therd {\n\t\tname A\n\t\tlimits {\n\t\t\tconnections_per_ip\n\t\t}\n\t}\n}", "at Caddyfile:5", "connections_per_ip: want one number"},
		{"messages_per_ip without a slash", "{\n\therd {\n\t\tname A\n\t\tlimits {\n\t\t\tmessages_per_ip 50\n\t\t}\n\t}\n}", "at Caddyfile:5", "messages_per_ip: \"50\" is not a rate"},
		{"messages_per_ip zero events", "{\n\therd {\n\t\tname A\n\t\tlimits {\n\t\t\tmessages_per_ip 0/s\n\t\t}\n\t}\n}", "at Caddyfile:5", "messages_per_ip: \"0\" is not a whole number of at least 1"},
		{"whatsat_per_ip bad unit", "{\n\therd {\n\t\tname A\n\t\tlimits {\n\t\t\twhatsat_per_ip 10/fortnight\n\t\t}\n\t}\n}", "at Caddyfile:5", "whatsat_per_ip: \"fortnight\" is not s, m, h or a positive duration"},
		{"whatsat_global bad burst", "{\n\therd {\n\t\tname A\n\t\tlimits {\n\t\t\twhatsat_global 600/m burst 0\n\t\t}\n\t}\n}", "at Caddyfile:5", "whatsat_global: burst \"0\" is not a whole number of at least 1"},
		{"whatsat_global stray word", "{\n\therd {\n\t\tname A\n\t\tlimits {\n\t\t\twhatsat_global 600/m bursts 5\n\t\t}\n\t}\n}", "at Caddyfile:5", "whatsat_global: unexpected \"bursts\""},
		{"whatsat_global missing rate", "{\n\therd {\n\t\tname A\n\t\tlimits {\n\t\t\twhatsat_global\n\t\t}\n\t}\n}", "at Caddyfile:5", "whatsat_global: want a rate"},
		{"peer_auth unknown mode", "{\n\therd {\n\t\tname A\n\t\tpeer_auth password\n\t}\n}", "at Caddyfile:4", "peer_auth: \"password\" is not one of off, addresses, tls"},
		{"peer_auth without mode", "{\n\therd {\n\t\tname A\n\t\tpeer_auth\n\t}\n}", "at Caddyfile:4", "peer_auth: want one of off, addresses, tls"},
		{"peer_auth twice", "{\n\therd {\n\t\tname A\n\t\tpeer_auth off\n\t\tpeer_auth addresses\n\t}\n}", "at Caddyfile:5", "peer_auth: already set to off"},
		{"peer_auth tls without tls", "{\n\therd {\n\t\tname A\n\t\tpeer_auth tls\n\t}\n}", "at Caddyfile:", "peer_auth tls: needs a `tls` block"},
		{"trusted_networks empty", "{\n\therd {\n\t\tname A\n\t\tpeer_auth addresses\n\t\ttrusted_networks\n\t}\n}", "at Caddyfile:5", "trusted_networks: want one or more CIDRs"},
		{"trusted_networks bad CIDR", "{\n\therd {\n\t\tname A\n\t\tpeer_auth addresses\n\t\ttrusted_networks 10.0.0.0/8 10.0.0.0/33\n\t}\n}", "at Caddyfile:5", "trusted_networks: \"10.0.0.0/33\" is not a CIDR or an IP address"},
		{"trusted_networks without addresses", "{\n\therd {\n\t\tname A\n\t\ttrusted_networks 10.0.0.0/8\n\t}\n}", "at Caddyfile:", "trusted_networks: only used with peer_auth addresses"},
		{"tls with an argument", "{\n\therd {\n\t\tname A\n\t\ttls a.crt\n\t}\n}", "at Caddyfile:4", "tls: unexpected argument \"a.crt\""},
		{"tls missing ca", "{\n\therd {\n\t\tname A\n\t\ttls {\n\t\t\tcert a.crt\n\t\t\tkey a.key\n\t\t}\n\t}\n}", "at Caddyfile:7", "tls (line 4): missing ca"},
		{"tls unknown subdirective", "{\n\therd {\n\t\tname A\n\t\ttls {\n\t\t\tcertificate a.crt\n\t\t}\n\t}\n}", "at Caddyfile:5", "tls: unknown subdirective \"certificate\""},
		{"tls cert twice", "{\n\therd {\n\t\tname A\n\t\ttls {\n\t\t\tcert a.crt\n\t\t\tcert b.crt\n\t\t}\n\t}\n}", "at Caddyfile:6", "tls cert: already set"},
		{"tls key without file", "{\n\therd {\n\t\tname A\n\t\ttls {\n\t\t\tkey\n\t\t}\n\t}\n}", "at Caddyfile:5", "tls key: want one file"},
		{"tls twice", "{\n\therd {\n\t\tname A\n\t\ttls {\n\t\t\tcert a\n\t\t\tkey b\n\t\t\tca c\n\t\t}\n\t\ttls {\n\t\t}\n\t}\n}", "at Caddyfile:9", "tls: already configured"},
		{"storage without a directory", "{\n\therd {\n\t\tname A\n\t\tstorage\n\t}\n}", "at Caddyfile:4", "storage: want a directory, or off"},
		{"storage twice", "{\n\therd {\n\t\tname A\n\t\tstorage /a\n\t\tstorage off\n\t}\n}", "at Caddyfile:5", "storage: already set"},
		{"storage with two directories", "{\n\therd {\n\t\tname A\n\t\tstorage /a /b\n\t}\n}", "at Caddyfile:4", "storage: want a directory, or off"},
		{"fsync unknown level", "{\n\therd {\n\t\tname A\n\t\tfsync sometimes\n\t}\n}", "at Caddyfile:4", "fsync: \"sometimes\" is not one of always, everysec, off"},
		{"fsync twice", "{\n\therd {\n\t\tname A\n\t\tfsync always\n\t\tfsync off\n\t}\n}", "at Caddyfile:5", "fsync: already set to always"},
		{"fsync with storage off", "{\n\therd {\n\t\tname A\n\t\tfsync always\n\t\tstorage off\n\t}\n}", "at Caddyfile:", "fsync (line 4): has no effect with storage off"},
		{"handler bad max_line_bytes", "{\n\therd {\n\t\tname A\n\t}\n\tlayer4 {\n\t\t:1 {\n\t\t\troute {\n\t\t\t\therd {\n\t\t\t\t\tmax_line_bytes lots\n\t\t\t\t}\n\t\t\t}\n\t\t}\n\t}\n}", "at Caddyfile:9", "max_line_bytes"},
		{"handler bad idle_timeout", "{\n\therd {\n\t\tname A\n\t}\n\tlayer4 {\n\t\t:1 {\n\t\t\troute {\n\t\t\t\therd {\n\t\t\t\t\tidle_timeout soon\n\t\t\t\t}\n\t\t\t}\n\t\t}\n\t}\n}", "at Caddyfile:9", "idle_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, "Caddyfile", tt.body)
			if err == nil || !strings.Contains(err.Error(), tt.line) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %v, want one containing %q and %q", err, tt.message, tt.line)
			}
		})
	}
}

func TestTwoHerdBlocksMerge(t *testing.T) {
	out, err := adapt(t, "Caddyfile", "{\n\therd {\n\t\tname A\n\t\tpeer B 127.0.0.1:1\n\t}\n\therd {\n\t\tpeer C 127.0.0.1:2\n\t}\n}")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			Herd struct {
				Name  string
				Peers []struct{ Name, Address string }
			}
		}
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Apps.Herd.Name != "A" || len(cfg.Apps.Herd.Peers) != 2 {
		t.Errorf("merged config %s", out)
	}
}
