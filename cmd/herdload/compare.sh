#!/usr/bin/env bash
# Runs the IAMAT throughput comparison in one go and prints a table:
#   herd   - a herd server with two live peers receiving its floods
#   raw    - herdload's minimal Go line server (the loopback ceiling)
#   redis  - redis-server with two live replicas, GEOADD of the same client IDs
#            through redis-benchmark with the same connections and pipelining
# Needs Go, and redis-server/redis-benchmark (Debian's redis-server package).
# Usage: cmd/herdload/compare.sh [seconds per run, default 5]
set -euo pipefail

seconds=${1:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	kill "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 1; }

echo "building..." >&2
(cd "$root" && go build -o "$work/caddy" ./cmd/caddy && go build -o "$work/herdload" ./cmd/herdload)

waitport() {
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on $1" >&2
	exit 1
}

# A herd of three: A floods every IAMAT to B and C. Logs at INFO: the
# per-message DEBUG entries of the examples are not part of the product's cost.
herd_server() { # name port peers...
	local name=$1 port=$2
	shift 2
	{
		echo "{"
		echo "	admin off"
		echo "	log {"
		echo "		level INFO"
		echo "	}"
		echo "	herd {"
		echo "		name $name"
		for p in "$@"; do echo "		peer ${p%%=*} 127.0.0.1:${p##*=}"; done
		echo "	}"
		echo "	layer4 {"
		echo "		127.0.0.1:$port {"
		echo "			route {"
		echo "				herd {"
		echo "					max_connections 20000"
		echo "				}"
		echo "			}"
		echo "		}"
		echo "	}"
		echo "}"
	} >"$work/$name.caddyfile"
	"$work/caddy" run --adapter caddyfile --config "$work/$name.caddyfile" >"$work/$name.log" 2>&1 &
	pids+=($!)
	waitport "$port"
}
herd_server B 14001 A=14000
herd_server C 14002 A=14000
herd_server A 14000 B=14001 C=14002

"$work/herdload" raw -addr 127.0.0.1:14100 >/dev/null &
pids+=($!)
waitport 14100

redis-server --port 16379 --dir "$work" --save '' --appendonly no >"$work/redis0.log" 2>&1 &
pids+=($!)
for port in 16380 16381; do
	redis-server --port "$port" --dir "$work" --save '' --appendonly no --replicaof 127.0.0.1 16379 >"$work/redis-$port.log" 2>&1 &
	pids+=($!)
done
waitport 16379
for _ in $(seq 100); do
	[ "$(redis-cli -p 16379 info replication | grep -c 'state=online')" = 2 ] && break
	sleep 0.1
done

ulimit -n 65536 2>/dev/null || true
printf "%-5s %-3s %12s %12s %12s %10s %10s   %s\n" C P herd/s raw/s redis/s herd/raw herd/redis "herd p50/p99 us"
for c in 1 10 50 1000; do
	for p in 1 16; do
		herd=$("$work/herdload" iamat -addr 127.0.0.1:14000 -c "$c" -p "$p" -d "${seconds}s" -prefix "h$c-$p")
		raw=$("$work/herdload" iamat -addr 127.0.0.1:14100 -c "$c" -p "$p" -d "${seconds}s")
		n=$((c * p * 2000))
		[ "$n" -lt 200000 ] && n=200000
		[ "$n" -gt 2000000 ] && n=2000000
		redis=$(redis-benchmark -p 16379 -c "$c" -P "$p" -n "$n" -r 100000 -q \
			GEOADD herd -118.445127 34.068930 client-__rand_int__ 2>/dev/null | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
		h=$(sed -E 's/.*ops_per_sec=([0-9]+).*/\1/' <<<"$herd")
		r=$(sed -E 's/.*ops_per_sec=([0-9]+).*/\1/' <<<"$raw")
		lat=$(sed -E 's/.*p50_us=([0-9.]+) p99_us=([0-9.]+).*/\1 \/ \2/' <<<"$herd")
		printf "%-5s %-3s %12s %12s %12.0f %10.2f %10.2f   %s\n" "$c" "$p" "$h" "$r" "$redis" \
			"$(echo "$h / $r" | bc -l)" "$(echo "$h / $redis" | bc -l)" "$lat"
	done
done
