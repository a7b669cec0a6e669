package caddyfile

import (
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-herd/caddy-herd/module"
	"github.com/caddy-herd/caddy-herd/module/limits"
)

// parseLimits reads a `limits` block into app.Limits. Syntax:
//
//	limits {
//		connections_per_ip <count>
//		messages_per_ip    <events>/<per> [burst <count>]
//		whatsat_per_ip     <events>/<per> [burst <count>]
//		whatsat_global     <events>/<per> [burst <count>]
//	}
//
// <per> is s, m, h or a duration such as 10s. A limit set again, here or in
// a second herd block, replaces the first.
func parseLimits(d *caddyfile.Dispenser, app *module.App) error {
	if d.NextArg() {
		return d.Errf("limits: unexpected argument %q (limits go in a block)", d.Val())
	}
	if app.Limits == nil {
		app.Limits = new(limits.Limits)
	}
	l := app.Limits
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		directive := d.Val()
		switch directive {
		case "connections_per_ip":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.Errf("connections_per_ip: want one number of connections")
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return d.Errf("connections_per_ip: %q is not a whole number of at least 1", args[0])
			}
			l.ConnectionsPerIP = n

		case "messages_per_ip", "whatsat_per_ip", "whatsat_global":
			r, err := parseRate(d.RemainingArgs())
			if err != nil {
				return d.Errf("%s: %v", directive, err)
			}
			switch directive {
			case "messages_per_ip":
				l.MessagesPerIP = r
			case "whatsat_per_ip":
				l.WhatsatPerIP = r
			default:
				l.WhatsatGlobal = r
			}

		default:
			return d.Errf("limits: unknown subdirective %q", directive)
		}
	}
	return nil
}

// rateError says what is wrong with a rate, and what a rate looks like.
type rateError string

func (e rateError) Error() string {
	return string(e) + " (want <events>/<per> [burst <count>], e.g. 10/s, 600/m burst 60, 5/10s)"
}

// parseRate reads `<events>/<per> [burst <count>]`.
func parseRate(args []string) (*limits.Rate, error) {
	if len(args) != 1 && len(args) != 3 {
		return nil, rateError("want a rate")
	}
	eventsText, perText, ok := strings.Cut(args[0], "/")
	if !ok {
		return nil, rateError(strconv.Quote(args[0]) + " is not a rate")
	}
	events, err := strconv.Atoi(eventsText)
	if err != nil || events < 1 {
		return nil, rateError(strconv.Quote(eventsText) + " is not a whole number of at least 1")
	}
	var per time.Duration
	switch perText {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		per, err = caddy.ParseDuration(perText)
		if err != nil || per <= 0 {
			return nil, rateError(strconv.Quote(perText) + " is not s, m, h or a positive duration")
		}
	}
	r := &limits.Rate{Events: events, Per: caddy.Duration(per)}
	if len(args) == 3 {
		if args[1] != "burst" {
			return nil, rateError("unexpected " + strconv.Quote(args[1]))
		}
		burst, err := strconv.Atoi(args[2])
		if err != nil || burst < 1 {
			return nil, rateError("burst " + strconv.Quote(args[2]) + " is not a whole number of at least 1")
		}
		r.Burst = burst
	}
	return r, nil
}
