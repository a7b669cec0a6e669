#!/usr/bin/env bash
# Runs the example five-server herd on 127.0.0.1:12000-12004 until Ctrl-C.
# Builds Caddy with the herd plugin first (with xcaddy) unless examples/bin/caddy
# exists or CADDY names a binary. Logs go to examples/logs/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
module=github.com/caddy-herd/caddy-herd
caddy=${CADDY:-$here/bin/caddy}
servers=(Farmar Gasol Hill Meeks Young)

if [ ! -x "$caddy" ]; then
	gobin=$(go env GOPATH)/bin
	export PATH="$PATH:$gobin"
	if ! command -v xcaddy >/dev/null; then
		echo "installing xcaddy..."
		go install github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5
	fi
	echo "building Caddy with the herd plugin into $caddy (a few minutes the first time)..."
	mkdir -p "$(dirname "$caddy")"
	# The placeholder version makes xcaddy use this checkout instead of
	# fetching the module.
	xcaddy build v2.11.9 --output "$caddy" \
		--with "$module@v0.0.0-00010101000000-000000000000=$root" \
		--with github.com/mholt/caddy-l4@v0.1.2
fi

cd "$here"
mkdir -p logs
pids=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "stopping the herd..."
	kill "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
	echo "stopped."
}
trap stop INT TERM EXIT

for name in "${servers[@]}"; do
	"$caddy" run --adapter caddyfile --config "$name.caddyfile" >"logs/$name.out" 2>&1 &
	pids+=($!)
done

# Wait until every server listens, or report the one that died.
for i in "${!servers[@]}"; do
	port=$((12000 + i))
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue 2
		fi
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			echo "${servers[$i]} failed to start; the end of logs/${servers[$i]}.out:" >&2
			tail -n 20 "logs/${servers[$i]}.out" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "${servers[$i]} did not start listening on $port; see logs/${servers[$i]}.out" >&2
	exit 1
done

echo "herd up: Farmar 12000, Gasol 12001, Hill 12002, Meeks 12003, Young 12004 (127.0.0.1)"
echo "try: printf 'IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 %s\n' \"\$(date +%s.%N)\" | nc -q1 127.0.0.1 12000"
echo "status pages: http://127.0.0.1:13000/ (Farmar) to http://127.0.0.1:13004/ (Young)"
echo "logs: $here/logs/; Ctrl-C stops all five."
wait
