package module

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	herd {
//		max_line_bytes  <bytes>
//		idle_timeout    <duration>
//		write_timeout   <duration>
//		max_connections <count>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume handler name
	if d.NextArg() {
		return d.Errf("herd handler: unexpected argument %q (options go in a block)", d.Val())
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		directive := d.Val()
		switch directive {
		case "max_line_bytes":
			if !d.NextArg() {
				return d.Errf("max_line_bytes: missing value")
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < minMaxLineBytes {
				return d.Errf("max_line_bytes: %q is not a whole number of at least %d", d.Val(), minMaxLineBytes)
			}
			h.MaxLineBytes = n
		case "idle_timeout", "write_timeout":
			if !d.NextArg() {
				return d.Errf("%s: missing value", directive)
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur < 0 {
				return d.Errf("%s: %q is not a duration such as 5m", directive, d.Val())
			}
			if directive == "idle_timeout" {
				h.IdleTimeout = caddy.Duration(dur)
			} else {
				h.WriteTimeout = caddy.Duration(dur)
			}
		case "max_connections":
			if !d.NextArg() {
				return d.Errf("max_connections: missing value")
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < 1 {
				return d.Errf("max_connections: %q is not a whole number of at least 1", d.Val())
			}
			h.MaxConnections = n
		default:
			return d.Errf("herd handler: unknown subdirective %q", directive)
		}
		if d.NextArg() {
			return d.Errf("%s: unexpected argument %q", directive, d.Val())
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
