package places

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// oneArg returns the single argument of the subdirective at d's cursor.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	name := d.Val()
	if !d.NextArg() {
		return "", d.Errf("%s: expected one argument", name)
	}
	val := d.Val()
	if d.NextArg() {
		return "", d.Errf("%s: expected one argument, got extra %q", name, d.Val())
	}
	return val, nil
}

// parseTimeout parses the argument of the timeout subdirective at d's
// cursor, a positive duration such as 5s or 1m30s.
func parseTimeout(d *caddyfile.Dispenser) (caddy.Duration, error) {
	val, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(val)
	if err != nil {
		return 0, d.Errf("timeout: invalid duration %q: %w", val, err)
	}
	if dur <= 0 {
		return 0, d.Errf("timeout: must be positive, got %q", val)
	}
	return caddy.Duration(dur), nil
}

// subdirective parses the subdirective at d's cursor, with its arguments.
type subdirective func(d *caddyfile.Dispenser) error

// stringArg returns a subdirective that takes one argument and stores it in
// *dst. On error *dst is left as it was.
func stringArg(dst *string) subdirective {
	return func(d *caddyfile.Dispenser) error {
		val, err := oneArg(d)
		if err != nil {
			return err
		}
		*dst = val
		return nil
	}
}

// timeoutArg returns a subdirective that takes one positive duration, as
// parseTimeout does, and stores it in *dst. On error *dst is left as it was.
func timeoutArg(dst *caddy.Duration) subdirective {
	return func(d *caddyfile.Dispenser) error {
		val, err := parseTimeout(d)
		if err != nil {
			return err
		}
		*dst = val
		return nil
	}
}
