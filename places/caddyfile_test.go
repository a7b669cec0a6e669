package places

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		want     caddyfile.Unmarshaler // nil: an error is expected
		wantErr  string
		wantLine int
	}{
		{
			name: "google_legacy",
			input: `google_legacy {
				api_key {env.GOOGLE_PLACES_API_KEY}
				endpoint http://127.0.0.1:18080
				timeout 5s
			}`,
			want: &GoogleLegacy{APIKey: "{env.GOOGLE_PLACES_API_KEY}", Endpoint: "http://127.0.0.1:18080", Timeout: caddy.Duration(5 * time.Second)},
		},
		{
			name:  "google_legacy with only a key",
			input: "google_legacy {\n\tapi_key AIzaSyExample\n}",
			want:  &GoogleLegacy{APIKey: "AIzaSyExample"},
		},
		{
			name: "google",
			input: `google {
				api_key "{env.GOOGLE_PLACES_API_KEY}"
				endpoint https://places.googleapis.com
				field_mask places.displayName,places.location
				timeout 3s
			}`,
			want: &Google{APIKey: "{env.GOOGLE_PLACES_API_KEY}", Endpoint: "https://places.googleapis.com", FieldMask: "places.displayName,places.location", Timeout: caddy.Duration(3 * time.Second)},
		},
		{
			name:  "file inline",
			input: "file ./examples/places.json",
			want:  &File{Path: "./examples/places.json"},
		},
		{
			name:  "file block",
			input: "file {\n\tpath ./examples/places.json\n}",
			want:  &File{Path: "./examples/places.json"},
		},

		{name: "google_legacy without key", input: "google_legacy", want: nil, wantErr: "google_legacy: api_key is required", wantLine: 1},
		{name: "google_legacy with an argument", input: "google_legacy AIza {\n\tapi_key k\n}", wantErr: `google_legacy: unexpected argument "AIza"`, wantLine: 1},
		{name: "api_key without value", input: "google_legacy {\n\tapi_key\n}", wantErr: "api_key: expected one argument", wantLine: 2},
		{name: "api_key with two values", input: "google_legacy {\n\tapi_key a b\n}", wantErr: `api_key: expected one argument, got extra "b"`, wantLine: 2},
		{name: "endpoint without value", input: "google_legacy {\n\tapi_key k\n\tendpoint\n}", wantErr: "endpoint: expected one argument", wantLine: 3},
		{name: "bad timeout", input: "google_legacy {\n\tapi_key k\n\ttimeout soon\n}", wantErr: `timeout: invalid duration "soon"`, wantLine: 3},
		{name: "negative timeout", input: "google {\n\tapi_key k\n\n\ttimeout -5s\n}", wantErr: `timeout: must be positive, got "-5s"`, wantLine: 4},
		{name: "timeout with a block", input: "google {\n\tapi_key k\n\ttimeout {\n\t}\n}", wantErr: "timeout: expected one argument", wantLine: 3},
		{name: "unknown subdirective", input: "google_legacy {\n\tapi_key k\n\tcolour blue\n}", wantErr: `google_legacy: unrecognized subdirective "colour"`, wantLine: 3},
		{name: "field_mask in google_legacy", input: "google_legacy {\n\tfield_mask *\n}", wantErr: `google_legacy: unrecognized subdirective "field_mask"`, wantLine: 2},
		{name: "google without key", input: "google {\n\tfield_mask *\n}", wantErr: "google: api_key is required", wantLine: 3},
		{name: "google unknown subdirective", input: "google {\n\tradius 5\n}", wantErr: `google: unrecognized subdirective "radius"`, wantLine: 2},
		{name: "field_mask without value", input: "google {\n\tapi_key k\n\tfield_mask\n}", wantErr: "field_mask: expected one argument", wantLine: 3},
		{name: "file without path", input: "file", wantErr: "file: path is required", wantLine: 1},
		{name: "file with two paths", input: "file a.json b.json", wantErr: `file: expected one path, got extra "b.json"`, wantLine: 1},
		{name: "file with both forms", input: "file a.json {\n\tpath b.json\n}", wantErr: "file: path is already set", wantLine: 2},
		{name: "file path without value", input: "file {\n\tpath\n}", wantErr: "path: expected one argument", wantLine: 2},
		{name: "file unknown subdirective", input: "file {\n\tpath a.json\n\turl http://x\n}", wantErr: `file: unrecognized subdirective "url"`, wantLine: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got caddyfile.Unmarshaler
			switch provider, _, _ := strings.Cut(tt.input, " "); strings.TrimSpace(provider) {
			case "google_legacy":
				got = new(GoogleLegacy)
			case "google":
				got = new(Google)
			case "file":
				got = new(File)
			default:
				t.Fatalf("no provider in %q", tt.input)
			}
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("UnmarshalCaddyfile: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("UnmarshalCaddyfile succeeded with %+v, want error %q", got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if line := "Testfile:" + strconv.Itoa(tt.wantLine); !strings.Contains(err.Error(), line) {
				t.Errorf("error %q does not point at %s", err, line)
			}
		})
	}
}

// TestUnmarshalModule parses a provider as a parent directive such as
// "places" does, through caddyfile.UnmarshalModule.
func TestUnmarshalModule(t *testing.T) {
	d := caddyfile.NewTestDispenser(`places google {
		api_key k
		field_mask places.id
	}`)
	d.Next() // the places directive
	if !d.NextArg() {
		t.Fatal("no provider name")
	}
	unm, err := caddyfile.UnmarshalModule(d, "herd.places."+d.Val())
	if err != nil {
		t.Fatalf("UnmarshalModule: %v", err)
	}
	want := &Google{APIKey: "k", FieldMask: "places.id"}
	if !reflect.DeepEqual(unm, want) {
		t.Errorf("got %+v, want %+v", unm, want)
	}
}
