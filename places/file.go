package places

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func init() {
	caddy.RegisterModule(File{})
}

// File answers nearby-places queries offline, from a JSON file of places
// loaded when the module is provisioned. It answers with the places within
// the query's radius, nearest first, at most 20, in the shape of a Nearby
// Search (legacy) response.
type File struct {
	// Path is the JSON file of places: either an object with a "results"
	// array, such as a saved Nearby Search (legacy) response, or an array of
	// places. Each place is an object in the shape of a Nearby Search
	// (legacy) result with a geometry.location of lat and lng in degrees;
	// it is answered as it is in the file. A relative path is relative to
	// Caddy's working directory. Known placeholders, such as {env.HOME},
	// are replaced. Required.
	Path string `json:"path,omitempty"`

	places []place
}

// CaddyModule returns the Caddy module information.
func (File) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "herd.places.file",
		New: func() caddy.Module { return new(File) },
	}
}

// Provision loads the places file.
func (f *File) Provision(ctx caddy.Context) error {
	if f.Path == "" {
		return errors.New("path is required")
	}
	path := caddy.NewReplacer().ReplaceKnown(f.Path, "")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("loading places: %w", err)
	}
	places, err := parsePlaces(data)
	if err != nil {
		return fmt.Errorf("loading places from %s: %w", path, err)
	}
	f.places = places
	return nil
}

// Validate checks the configuration.
func (f *File) Validate() error {
	if f.Path == "" {
		return errors.New("path is required")
	}
	return nil
}

// Nearby answers the places within q's radius, nearest first, at most 20
// whatever q.MaxResults is. Places equally near keep the file's order.
func (f *File) Nearby(ctx context.Context, q Query) ([]byte, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	type hit struct {
		index    int
		distance float64
	}
	var hits []hit
	for i, p := range f.places {
		if d := distanceMeters(q.Latitude, q.Longitude, p.lat, p.lng); d <= q.RadiusMeters {
			hits = append(hits, hit{index: i, distance: d})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		return cmp.Compare(a.distance, b.distance)
	})
	hits = hits[:min(len(hits), maxResults)]

	results := make([]json.RawMessage, len(hits))
	for i, h := range hits {
		results[i] = f.places[h.index].raw
	}
	return legacyDocument(results)
}

// UnmarshalCaddyfile sets up the provider from Caddyfile tokens. Syntax:
//
//	file <path>
//
// or
//
//	file {
//		path <path>
//	}
func (f *File) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume the provider name
	name := d.Val()
	if d.NextArg() {
		f.Path = d.Val()
		if d.NextArg() {
			return d.Errf("%s: expected one path, got extra %q", name, d.Val())
		}
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "path":
			if f.Path != "" {
				return d.Errf("%s: path is already set", name)
			}
			val, err := oneArg(d)
			if err != nil {
				return err
			}
			f.Path = val
		default:
			return d.Errf("%s: unrecognized subdirective %q", name, d.Val())
		}
	}
	if f.Path == "" {
		return d.Errf("%s: path is required", name)
	}
	return nil
}

// Interface guards
var (
	_ caddy.Module          = (*File)(nil)
	_ caddy.Provisioner     = (*File)(nil)
	_ caddy.Validator       = (*File)(nil)
	_ caddyfile.Unmarshaler = (*File)(nil)
	_ Provider              = (*File)(nil)
)
