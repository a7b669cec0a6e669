package module

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("herd_status", parseStatusCaddyfile)
	// Where a site has no route of its own around it, the page goes before
	// respond, as file_server's neighbours do.
	httpcaddyfile.RegisterDirectiveOrder("herd_status", httpcaddyfile.Before, "respond")
}

func parseStatusCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(StatusHandler)
	return s, s.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	herd_status [<matcher>] {
//		max_points <n>
//	}
func (h *StatusHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "max_points":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil {
				return d.Errf("parsing max_points: %v", err)
			}
			h.MaxPoints = n
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown herd_status option: %s", d.Val())
		}
	}
	return nil
}

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

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*StatusHandler)(nil)
)
