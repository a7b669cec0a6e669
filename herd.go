// Package caddyherd is the herd plugin for Caddy: import it (or build with
// `xcaddy build --with github.com/caddy-herd/caddy-herd`) to register the
// `herd` app, the `layer4.handlers.herd` handler, the `herd.places.*`
// providers, the `herd_buffered` log writer and the `herd` Caddyfile global
// option.
package caddyherd

import (
	_ "github.com/caddy-herd/caddy-herd/caddyfile"
	_ "github.com/caddy-herd/caddy-herd/herdcmd"
	_ "github.com/caddy-herd/caddy-herd/module"
	_ "github.com/caddy-herd/caddy-herd/module/logwriter"
	_ "github.com/caddy-herd/caddy-herd/places"
)
