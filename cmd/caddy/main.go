// Command caddy is Caddy's standard distribution with caddy-l4 and the herd
// plugin compiled in, for running the example herd and the end-to-end tests
// without xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-l4"

	_ "github.com/caddy-herd/caddy-herd"
)

func main() {
	caddycmd.Main()
}
