package logwriter

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/logging"
)

func TestBufferedCaddyfile(t *testing.T) {
	for _, tt := range []struct {
		name, input string
		want        string // the JSON, or the error it must contain
		err         bool
	}{
		{"defaults", `herd_buffered`, `{}`, false},
		{"a file", `herd_buffered {
			output file /var/log/herd.log {
				roll_size 1GiB
			}
			flush_interval 250ms
			buffer_size 64KiB
			max_backlog 32MiB
		}`, `{"writer":{"filename":"/var/log/herd.log","output":"file","roll_size_mb":1024},"flush_interval":250000000,"buffer_size":65536,"max_backlog":33554432}`, false},
		{"a standard stream", `herd_buffered {
			output stdout
		}`, `{"writer":{"output":"stdout"}}`, false},
		{"an argument", `herd_buffered /var/log/herd.log`, "wrong argument count", true},
		{"two outputs", `herd_buffered {
			output stdout
			output stderr
		}`, "already set", true},
		{"an unknown writer", `herd_buffered {
			output nowhere
		}`, "caddy.logging.writers.nowhere", true},
		{"a bad size", `herd_buffered {
			buffer_size lots
		}`, "buffer_size", true},
		{"a bad interval", `herd_buffered {
			flush_interval soon
		}`, "flush_interval", true},
		{"an unknown option", `herd_buffered {
			fsync always
		}`, "unrecognized subdirective 'fsync'", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b Buffered
			err := b.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.err {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "Testfile:") {
					t.Fatalf("error %v, want one naming %q and the line", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(b)
			if string(got) != tt.want {
				t.Errorf("JSON %s, want %s", got, tt.want)
			}
		})
	}
}
