// Package caddyfile adapts the `herd` global option of a Caddyfile into the
// JSON config of the herd app.
package caddyfile

import (
	"encoding/json"
	"net/netip"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/caddy-herd/caddy-herd/herdwal"
	"github.com/caddy-herd/caddy-herd/module"
	"github.com/caddy-herd/caddy-herd/protocol"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("herd", parseHerd)
}

// parseHerd sets up the herd app from Caddyfile tokens. Syntax:
//
//	herd {
//		name <name>
//		peer <name> <host:port>
//		places <provider> [<args...>] [{
//			<provider options>
//		}]
//		max_radius <km>
//		max_bound <places>
//		cache_ttl <duration>
//		limits {
//			<limits, see parseLimits>
//		}
//		peer_auth off|addresses|tls
//		trusted_networks <cidr...>
//		tls {
//			cert <file>
//			key  <file>
//			ca   <file>
//		}
//		storage <dir>|off
//		fsync always|everysec|off
//	}
//
// A second `herd` block adds to the first.
func parseHerd(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(module.App)
	if existing != nil {
		prev, ok := existing.(httpcaddyfile.App)
		if !ok {
			return nil, d.Errf("herd: unexpected earlier value of type %T", existing)
		}
		if err := json.Unmarshal(prev.Value, app); err != nil {
			return nil, d.Errf("herd: reading earlier herd block: %v", err)
		}
	}

	fsyncLine := 0
	d.Next() // consume option name
	if d.NextArg() {
		return nil, d.Errf("herd: unexpected argument %q (options go in a block)", d.Val())
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		directive := d.Val()
		switch directive {
		case "name":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return nil, d.Errf("name: want exactly one name, got %d arguments", len(args))
			}
			if app.Name != "" && app.Name != args[0] {
				return nil, d.Errf("name: already set to %q", app.Name)
			}
			app.Name = args[0]
			if err := module.ValidateName(app.Name); err != nil {
				return nil, d.Errf("name: %v", err)
			}

		case "peer":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("peer: want <name> <host:port>, got %d arguments", len(args))
			}
			peer := module.Peer{Name: args[0], Address: args[1]}
			if err := module.ValidatePeer(app.Name, app.Peers, peer); err != nil {
				return nil, d.Errf("peer %s: %v", peer.Name, err)
			}
			app.Peers = append(app.Peers, peer)

		case "places":
			if app.PlacesRaw != nil {
				return nil, d.Errf("places: a provider is already configured")
			}
			if !d.NextArg() {
				return nil, d.Errf("places: missing provider name (google_legacy, google or file)")
			}
			provider := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "herd.places."+provider)
			if err != nil {
				return nil, err
			}
			app.PlacesRaw = caddyconfig.JSONModuleObject(unm, "provider", provider, nil)

		case "max_radius":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return nil, d.Errf("max_radius: want one radius in kilometres")
			}
			km, ok := protocol.ParseRadius([]byte(args[0]))
			if !ok {
				return nil, d.Errf("max_radius: %q is not a radius within (0, %d] km", args[0], protocol.MaxRadiusKm)
			}
			app.MaxRadiusKm = km

		case "max_bound":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return nil, d.Errf("max_bound: want one number of places")
			}
			bound, ok := protocol.ParseBound([]byte(args[0]))
			if !ok {
				return nil, d.Errf("max_bound: %q is not a whole number within [0, %d]", args[0], protocol.MaxBound)
			}
			app.MaxBound = &bound

		case "cache_ttl":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return nil, d.Errf("cache_ttl: want one duration")
			}
			ttl, err := caddy.ParseDuration(args[0])
			if err != nil {
				return nil, d.Errf("cache_ttl: %q is not a duration: %v", args[0], err)
			}
			if ttl < 0 {
				return nil, d.Errf("cache_ttl: %q must not be negative", args[0])
			}
			app.CacheTTL = caddy.Duration(ttl)

		case "limits":
			if err := parseLimits(d, app); err != nil {
				return nil, err
			}
		case "peer_auth":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return nil, d.Errf("peer_auth: want one of off, addresses, tls")
			}
			switch args[0] {
			case module.PeerAuthOff, module.PeerAuthAddresses, module.PeerAuthTLS:
			default:
				return nil, d.Errf("peer_auth: %q is not one of off, addresses, tls", args[0])
			}
			if app.PeerAuth != "" && app.PeerAuth != args[0] {
				return nil, d.Errf("peer_auth: already set to %s", app.PeerAuth)
			}
			app.PeerAuth = args[0]

		case "trusted_networks":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Errf("trusted_networks: want one or more CIDRs")
			}
			for _, n := range args {
				if _, err := netip.ParsePrefix(n); err != nil {
					if _, err := netip.ParseAddr(n); err != nil {
						return nil, d.Errf("trusted_networks: %q is not a CIDR or an IP address", n)
					}
				}
			}
			app.TrustedNetworks = append(app.TrustedNetworks, args...)

		case "tls":
			if d.NextArg() {
				return nil, d.Errf("tls: unexpected argument %q (cert, key and ca go in a block)", d.Val())
			}
			if app.TLS != nil {
				return nil, d.Errf("tls: already configured")
			}
			files, err := parseTLS(d)
			if err != nil {
				return nil, err
			}
			app.TLS = files

		case "storage":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return nil, d.Errf("storage: want a directory, or off")
			}
			if app.Storage == nil {
				app.Storage = new(module.Storage)
			}
			if app.Storage.Off || app.Storage.Dir != "" {
				return nil, d.Errf("storage: already set")
			}
			if args[0] == "off" {
				app.Storage.Off = true
			} else {
				app.Storage.Dir = args[0]
			}

		case "fsync":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return nil, d.Errf("fsync: want one of always, everysec, off")
			}
			if _, err := herdwal.ParseFsync(args[0]); err != nil {
				return nil, d.Errf("fsync: %q is not one of always, everysec, off", args[0])
			}
			if app.Storage == nil {
				app.Storage = new(module.Storage)
			}
			if app.Storage.Fsync != "" {
				return nil, d.Errf("fsync: already set to %s", app.Storage.Fsync)
			}
			app.Storage.Fsync = args[0]
			fsyncLine = d.Line()

		default:
			return nil, d.Errf("herd: unknown subdirective %q", directive)
		}
	}
	if app.Name == "" {
		return nil, d.Errf("herd: missing `name` subdirective")
	}
	if app.Storage != nil && app.Storage.Off && app.Storage.Fsync != "" {
		return nil, d.Errf("fsync (line %d): has no effect with storage off", fsyncLine)
	}
	if app.PeerAuth == module.PeerAuthTLS && app.TLS == nil {
		return nil, d.Errf("peer_auth tls: needs a `tls` block with cert, key and ca")
	}
	if len(app.TrustedNetworks) > 0 && app.PeerAuth != module.PeerAuthAddresses {
		return nil, d.Errf("trusted_networks: only used with peer_auth addresses")
	}
	for _, p := range app.Peers {
		if p.Name == app.Name {
			return nil, d.Errf("peer %s: a peer cannot have this server's own name", p.Name)
		}
	}
	return httpcaddyfile.App{
		Name:  "herd",
		Value: caddyconfig.JSON(app, nil),
	}, nil
}

// parseTLS reads the `tls` block of the herd: this server's certificate and
// key, and the herd's CA. All three are required.
func parseTLS(d *caddyfile.Dispenser) (*module.PeerTLS, error) {
	files := new(module.PeerTLS)
	line := d.Line()
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		var field *string
		switch sub {
		case "cert":
			field = &files.CertFile
		case "key":
			field = &files.KeyFile
		case "ca":
			field = &files.CAFile
		default:
			return nil, d.Errf("tls: unknown subdirective %q (want cert, key, ca)", sub)
		}
		args := d.RemainingArgs()
		if len(args) != 1 {
			return nil, d.Errf("tls %s: want one file", sub)
		}
		if *field != "" {
			return nil, d.Errf("tls %s: already set", sub)
		}
		*field = args[0]
	}
	for _, f := range []struct{ name, value string }{{"cert", files.CertFile}, {"key", files.KeyFile}, {"ca", files.CAFile}} {
		if f.value == "" {
			return nil, d.Errf("tls (line %d): missing %s", line, f.name)
		}
	}
	return files, nil
}
