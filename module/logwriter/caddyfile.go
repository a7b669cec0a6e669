package logwriter

import (
	"fmt"
	"math"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// UnmarshalCaddyfile sets up the writer from Caddyfile tokens:
//
//	output herd_buffered {
//	    output         <writer_module> ...
//	    flush_interval <duration>
//	    buffer_size    <size>
//	    max_backlog    <size>
//	}
//
// The inner output takes a log writer as the log directive's output does,
// with its own block: `output file /var/log/herd.log { roll_size 1GiB }`.
func (b *Buffered) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the writer's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "output":
			if b.WriterRaw != nil {
				return d.Err("output: the destination is already set")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			var wo caddy.WriterOpener
			switch name {
			case "stdout":
				wo = caddy.StdoutWriter{}
			case "stderr":
				wo = caddy.StderrWriter{}
			case "discard":
				wo = caddy.DiscardWriter{}
			default:
				unm, err := caddyfile.UnmarshalModule(d, "caddy.logging.writers."+name)
				if err != nil {
					return err
				}
				var ok bool
				if wo, ok = unm.(caddy.WriterOpener); !ok {
					return d.Errf("output: module %s (%T) is not a log writer", name, unm)
				}
			}
			b.WriterRaw = caddyconfig.JSONModuleObject(wo, "output", name, nil)
		case "flush_interval":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("flush_interval: %v", err)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			b.FlushInterval = caddy.Duration(dur)
		case "buffer_size", "max_backlog":
			opt := d.Val()
			if !d.NextArg() {
				return d.ArgErr()
			}
			size, err := parseSize(d.Val())
			if err != nil {
				return d.Errf("%s: %v", opt, err)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if opt == "buffer_size" {
				b.BufferSize = size
			} else {
				b.MaxBacklog = size
			}
		default:
			return d.Errf("unrecognized subdirective '%s'", d.Val())
		}
	}
	return nil
}

// parseSize reads a size as the file writer's roll_size does: 256KiB, 16MB.
func parseSize(s string) (int, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("size %q: at most 2 GiB", s)
	}
	return int(n), nil
}

var _ caddyfile.Unmarshaler = (*Buffered)(nil)
