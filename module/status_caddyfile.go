package module

import (
	"strconv"

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

var _ caddyfile.Unmarshaler = (*StatusHandler)(nil)
