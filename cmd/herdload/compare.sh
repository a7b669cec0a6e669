#!/usr/bin/env bash
# Measures the herd against baselines run on the same machine in the same
# run, and prints one table per measurement with the ratio to its baseline:
#
#   iamat      IAMAT throughput: a herd server with two live peers vs herdload's
#              raw line server vs Redis with two replicas (GEOADD and SET
#              through redis-benchmark), same connections and pipelining
#   propagate  IAMAT at A until the flood reaches a fake peer three hops away
#              (A -> B -> C -> herdload), quiescent and under an open-loop load
#              at half A's measured maximum; vs three raw relays
#   memory     RSS and heap growth per stored client at 1k, 100k and 1M clients,
#              and RSS once every client has been updated three more times;
#              vs Redis storing the same records (SET client "AT ...")
#   catchup    a server killed (-9) and restarted at once relearns a 1M-client
#              table from its peer: time and bytes; vs a Redis replica's full
#              resync of the same records, and vs the table's own size
#   whatsat    WHATSAT throughput against a local fake Google provider, beside
#              the provider's own throughput, with upstream requests per WHATSAT
#   scale      IAMAT throughput as the table grows (1k, 100k, 1M) and as
#              connections grow (10, 100, 1000); vs the smallest, vs raw, and
#              vs Redis + 2 replicas updating as many keys
#   durability IAMAT throughput of the star with storage off, fsync everysec
#              and fsync always, vs Redis + 2 replicas with AOFs (everysec,
#              always); IAMAT latency while a snapshot of 1M clients is written
#   restart    a server holding 1M clients killed (-9) and restarted: time
#              until it answers for the last one, disk bytes per client; vs
#              Redis loading its AOF and its RDB. Catch-up after 1,000 and
#              100,000 of 1M clients changed while a peer was down: bytes and
#              seconds, vs the whole table and vs a Redis replica's PSYNC
#   logging    IAMAT throughput with every line in and out logged (DEBUG) to a
#              file through the herd_buffered writer, and through Caddy's file
#              writer alone, vs the same herd logging at INFO to a file: the
#              star of three and the five servers of the example herd
#
# Needs Go, curl, awk, and redis-server/redis-benchmark/redis-cli (Debian's
# redis-server package). Every process it starts is stopped when it ends,
# however it ends.
#
# Usage: cmd/herdload/compare.sh [-s section,...] [seconds per run, default 5]
#   e.g. cmd/herdload/compare.sh -s propagate,catchup 3
# Environment: PORT_BASE (default 14000; ports PORT_BASE .. PORT_BASE+2400 are
# used), PROBES (propagation probes per phase, default 1000),
# MEMORY_SIZES (default "1000 100000 1000000"), CATCHUP_CLIENTS (default
# 1000000; also the clients of the durability section's snapshot and of the
# restart section), SCALE_SIZES (default "1000 100000 1000000"),
# SCALE_CONNS (default "10 100 1000"), ROUNDS (default 1: how many times each
# IAMAT and scale row measures the herd and its baselines in turn, and the
# propagation probes run on the herd and the raw relays in turn; with more,
# the rows show medians and the range of each ratio over the rounds).
set -euo pipefail

command_line="$0 $*"
sections=iamat,propagate,memory,catchup,whatsat,scale,durability,restart,logging
while getopts "s:h" opt; do
	case $opt in
	s) sections=$OPTARG ;;
	*)
		sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
seconds=${1:-5}
base=${PORT_BASE:-14000}
probes=${PROBES:-1000}
memory_sizes=${MEMORY_SIZES:-"1000 100000 1000000"}
catchup_clients=${CATCHUP_CLIENTS:-1000000}
scale_sizes=${SCALE_SIZES:-"1000 100000 1000000"}
scale_conns=${SCALE_CONNS:-"10 100 1000"}
rounds=${ROUNDS:-1}
for s in ${sections//,/ }; do
	case $s in
	iamat | propagate | memory | catchup | whatsat | scale | durability | restart | logging) ;;
	*)
		echo "unknown section $s (iamat, propagate, memory, catchup, whatsat, scale, durability, restart, logging)" >&2
		exit 2
		;;
	esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
# Caddy's autosaved config and data stay in the run's folder.
export XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/data
# 1000 client connections, plus peers, Redis and the load generator.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

pids=()
declare -A pid_of
stop_all() {
	[ ${#pids[@]} -gt 0 ] || return 0
	kill "${pids[@]}" 2>/dev/null || true
	for _ in $(seq 100); do
		local alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.05
	done
	kill -9 "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
	pids=()
	pid_of=()
}
cleanup() {
	local rc=$?
	stop_all
	if [ $rc != 0 ] && [ -d "$work" ]; then
		for f in "$work"/*.log; do
			[ -s "$f" ] || continue
			echo "--- last lines of $(basename "$f")" >&2
			tail -n 5 "$f" >&2
		done
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for cmd in go curl awk redis-server redis-cli redis-benchmark; do
	command -v $cmd >/dev/null || {
		echo "needs $cmd (redis-*: apt-get install redis-server)" >&2
		exit 1
	}
done

echo "building..." >&2
(cd "$root" && go build -o "$work/caddy" ./cmd/caddy && go build -o "$work/herdload" ./cmd/herdload)
herdload=$work/herdload

# --- helpers -----------------------------------------------------------------

# start NAME COMMAND...: runs COMMAND in the background, output in NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	pid_of[$name]=$!
}

# alive NAME: fails the run if the process started as NAME has exited.
alive() {
	kill -0 "${pid_of[$1]}" 2>/dev/null || {
		echo "$1 exited" >&2
		exit 1
	}
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

waitport() {
	for _ in $(seq 400); do
		port_open "$1" && return 0
		sleep 0.05
	done
	echo "nothing listens on $1" >&2
	exit 1
}

# wait_until SECONDS COMMAND...: polls COMMAND every 20 ms until it succeeds.
wait_until() {
	local deadline=$(($(date +%s) + $1))
	shift
	until "$@"; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "timed out waiting for: $*" >&2
			exit 1
		fi
		sleep 0.02
	done
}

now_ns() { date +%s%N; }

# field KEY LINE: the value of KEY=value in a line of herdload output.
field() { sed -E "s/(^|.* )$1=([^ ]*).*/\2/" <<<"$2"; }

# calc FORMAT EXPRESSION: awk arithmetic; "-" when it fails (a division by
# zero, a figure missing).
calc() { awk "BEGIN { printf \"$1\", $2 }" 2>/dev/null || echo -; }
# median VALUE...: the median of the values.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# over FIELD FUNCTION LINE...: FUNCTION (median or sum) of FIELD in each line.
over() {
	local name=$1 fn=$2 line values=()
	shift 2
	for line in "$@"; do values+=("$(field "$name" "$line")"); done
	if [ "$fn" = sum ]; then
		printf '%s\n' "${values[@]}" | awk '{ s += $1 } END { print s }'
	else
		median "${values[@]}"
	fi
}
# spread VALUE...: the median, and the range when there is more than one value.
spread() {
	if [ $# -gt 1 ]; then
		printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2); printf "%.2f (%.2f-%.2f)", m, v[1], v[NR] }'
	else
		printf '%.2f' "$1"
	fi
}

# spread_of FIELD BASE LINE...: spread of FIELD in each line divided by BASE.
spread_of() {
	local name=$1 base=$2 line ratios=()
	shift 2
	for line in "$@"; do ratios+=("$(calc %.4f "$(field "$name" "$line") / $base")"); done
	spread "${ratios[@]}"
}
# rounds_note WHAT: says, with ROUNDS above 1, how a row was measured.
rounds_note() {
	if [ "$rounds" -gt 1 ]; then
		echo "# each row: $rounds rounds of $1 in turn; medians, and each ratio's range over the rounds"
	fi
}

# json_int URL KEY: the sum of every "KEY": <integer> in the JSON at URL; 0
# when nothing answers.
json_int() {
	{ curl -fsS "$1" 2>/dev/null || true; } | { grep -o "\"$2\": *[0-9]*" || true; } | awk -F: '{ s += $2 } END { print s + 0 }'
}

rss_bytes() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"; }

# herd_caddyfile NAME PORT ADMIN(port|off) EXTRA PEER=PORT...: a herd server's
# config, logging at INFO: the per-message DEBUG entries are not part of the
# product's cost. EXTRA is more lines for the herd block.
herd_caddyfile() {
	local name=$1 port=$2 admin=$3 extra=$4 p
	shift 4
	{
		echo "{"
		if [ "$admin" = off ]; then echo "	admin off"; else echo "	admin 127.0.0.1:$admin"; fi
		echo "	log {"
		echo "$herd_log"
		echo "	}"
		echo "	herd {"
		echo "		name $name"
		for p in "$@"; do echo "		peer ${p%%=*} 127.0.0.1:${p##*=}"; done
		[ -z "$extra" ] || echo "$extra"
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
}

# herd_log: the lines of the log global option of the servers started next.
herd_log="		level INFO"

# herd_server NAME PORT ADMIN EXTRA PEER=PORT...: starts a herd server on a
# data directory of its own, empty (restarts use start).
herd_server() {
	rm -rf "$XDG_DATA_HOME/caddy/herd/$1"
	herd_caddyfile "$@"
	start "$1" "$work/caddy" run --adapter caddyfile --config "$work/$1.caddyfile"
	waitport "$2"
}

# redis_server NAME PORT ARGS...: starts redis-server without persistence.
redis_server() {
	local name=$1 port=$2
	shift 2
	mkdir -p "$work/$name"
	start "$name" redis-server --port "$port" --dir "$work/$name" --save '' --appendonly no "$@"
	waitport "$port"
}

redis_info() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v k="$3" '$1 == k { print $2 }'; }

# gc ADMIN: makes a Caddy collect its garbage (a heap profile with gc=1 does).
gc() { curl -fsS "http://127.0.0.1:$1/debug/pprof/heap?gc=1" >/dev/null; }

herd_clients() { json_int "http://127.0.0.1:$1/herd/stats" clients; }

# --- header ------------------------------------------------------------------

echo "command: $command_line"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "commit:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); client and servers share it"
echo "go:      $(go version | cut -d' ' -f3-)"
echo "redis:   $(redis-server --version | grep -o 'v=[^ ]*' | cut -d= -f2)"
echo "runs:    ${seconds} s measured after a 1 s warm-up"

# --- iamat -------------------------------------------------------------------

# redis_line: the value the IAMAT comparison SETs for each client, an AT line
# about the size of the one a herd server stores for a herdload IAMAT.
redis_line="AT Redis +0.000123456 client-__rand_int__ +34.068930-118.445127 1764000000.123456789"

# redis_requests PORT C P N COMMAND...: runs N requests of COMMAND through
# redis-benchmark against the primary at PORT, once every replica has applied
# them, prints ops_per_sec and repl_bytes_per_op (what the primary sent each
# replica per request).
redis_requests() {
	local port=$1 conns=$2 pipe=$3 n=$4 offset0 offset1 rps p
	shift 4
	offset0=$(redis_info "$port" replication master_repl_offset)
	rps=$(redis-benchmark -p "$port" -c "$conns" -P "$pipe" -n "$n" -r 100000 -q "$@" 2>/dev/null |
		tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
	offset1=$(redis_info "$port" replication master_repl_offset)
	# The next run starts with the replicas caught up, as the herd's peers are.
	for p in $((port + 1)) $((port + 2)); do
		wait_until 60 eval '[ "$(redis_info '"$p"' replication slave_repl_offset)" -ge '"$offset1"' ]'
	done
	echo "ops_per_sec=$rps repl_bytes_per_op=$(calc %.0f "($offset1 - $offset0) / $n")"
}

section_iamat() {
	local a=$base b=$((base + 1)) c=$((base + 2)) raw=$((base + 100)) r0=$((base + 2379))
	herd_server B "$b" off "" A="$a"
	herd_server C "$c" off "" A="$a"
	herd_server A "$a" off "" B="$b" C="$c"
	start raw "$herdload" raw -addr "127.0.0.1:$raw"
	waitport "$raw"
	redis_server redis0 "$r0"
	redis_server redis1 $((r0 + 1)) --replicaof 127.0.0.1 "$r0"
	redis_server redis2 $((r0 + 2)) --replicaof 127.0.0.1 "$r0"
	wait_until 30 eval '[ "$(redis-cli -p '"$r0"' info replication | grep -c state=online)" = 2 ]'

	echo
	echo "## IAMAT throughput: herd (A floods to two live peers) vs raw line server vs Redis + 2 replicas (GEOADD, SET)"
	echo "# herdload iamat -addr <server> -c C -p P -d ${seconds}s -prefix h"
	echo "# redis-benchmark -c C -P P -r 100000 GEOADD herd -118.445127 34.068930 client-__rand_int__"
	echo "# redis-benchmark -c C -P P -r 100000 SET client-__rand_int__ \"$redis_line\""
	echo "# all update a keyspace of 100000 clients (herdload's default -clients), the same one in every run; every"
	echo "# IAMAT changes its client's record (a later client time), which A floods. A GEOADD that leaves a member where"
	echo "# it is changes nothing and Redis replicates nothing for it: once every member exists, GEOADD measures a"
	echo "# store that answers without replicating. Every SET is replicated. repl B/op: bytes the Redis primary sent"
	echo "# each replica per request (master_repl_offset), median over the rounds"
	rounds_note "herd, raw, Redis GEOADD, Redis SET"
	printf "%-5s %-3s %10s %10s %10s %10s %18s %18s %18s %10s   %s\n" C P herd/s raw/s geoadd/s set/s herd/raw herd/geoadd herd/set "repl B/op" "herd p50/p99 us"
	local conns pipe round
	for conns in 1 10 50 1000; do
		for pipe in 1 16; do
			local herd raw_out n geo_out set_out h r g s
			local hs=() rs=() gs=() ss=() to_raw=() to_geo=() to_set=() geo_repl=() set_repl=() p50s=() p99s=()
			for ((round = 0; round < rounds; round++)); do
				herd=$("$herdload" iamat -addr "127.0.0.1:$a" -c "$conns" -p "$pipe" -d "${seconds}s" -prefix h)
				raw_out=$("$herdload" iamat -addr "127.0.0.1:$raw" -c "$conns" -p "$pipe" -d "${seconds}s")
				n=$((conns * pipe * 2000))
				[ "$n" -lt 200000 ] && n=200000
				[ "$n" -gt 2000000 ] && n=2000000
				geo_out=$(redis_requests "$r0" "$conns" "$pipe" "$n" GEOADD herd -118.445127 34.068930 client-__rand_int__)
				set_out=$(redis_requests "$r0" "$conns" "$pipe" "$n" SET client-__rand_int__ "$redis_line")
				h=$(field ops_per_sec "$herd") r=$(field ops_per_sec "$raw_out")
				g=$(field ops_per_sec "$geo_out") s=$(field ops_per_sec "$set_out")
				hs+=("$h") rs+=("$r") gs+=("$g") ss+=("$s")
				geo_repl+=("$(field repl_bytes_per_op "$geo_out")") set_repl+=("$(field repl_bytes_per_op "$set_out")")
				to_raw+=("$(calc %.4f "$h / $r")") to_geo+=("$(calc %.4f "$h / $g")") to_set+=("$(calc %.4f "$h / $s")")
				p50s+=("$(field p50_us "$herd")") p99s+=("$(field p99_us "$herd")")
			done
			printf "%-5s %-3s %10.0f %10.0f %10.0f %10.0f %18s %18s %18s %10s   %s / %s\n" "$conns" "$pipe" \
				"$(median "${hs[@]}")" "$(median "${rs[@]}")" "$(median "${gs[@]}")" "$(median "${ss[@]}")" \
				"$(spread "${to_raw[@]}")" "$(spread "${to_geo[@]}")" "$(spread "${to_set[@]}")" \
				"$(median "${geo_repl[@]}") / $(median "${set_repl[@]}")" "$(median "${p50s[@]}")" "$(median "${p99s[@]}")"
		done
	done
	stop_all
}

# --- propagate ---------------------------------------------------------------

section_propagate() {
	local a=$((base + 10)) b=$((base + 11)) c=$((base + 12)) f=$((base + 13))
	local r1=$((base + 110)) r2=$((base + 111)) r3=$((base + 112)) rf=$((base + 113))
	# A chain, each server with only its next hop as peer; the last hop is
	# herdload listening as a peer. Until the probes start, a raw server
	# sinks C's floods there, so C's link is up and not backing off.
	start sink "$herdload" raw -addr "127.0.0.1:$f"
	waitport "$f"
	herd_server C "$c" off "" F="$f"
	herd_server B "$b" off "" C="$c"
	herd_server A "$a" off "" B="$b"
	start relay3 "$herdload" raw -addr "127.0.0.1:$r3" -peer "127.0.0.1:$rf"
	start relay2 "$herdload" raw -addr "127.0.0.1:$r2" -peer "127.0.0.1:$r3"
	start relay1 "$herdload" raw -addr "127.0.0.1:$r1" -peer "127.0.0.1:$r2"
	waitport "$r1"
	waitport "$r2"
	waitport "$r3"

	local max_cmd=("$herdload" iamat -addr "127.0.0.1:$a" -c 50 -p 16 -d "${seconds}s" -prefix max)
	local max rate
	max=$("${max_cmd[@]}")
	rate=$(calc %.0f "$(field ops_per_sec "$max") / 2")
	kill "${pid_of[sink]}"
	wait "${pid_of[sink]}" 2>/dev/null || true

	local herd_cmd=("$herdload" propagate -addr "127.0.0.1:$a" -listen "127.0.0.1:$f" -n "$probes" -rate "$rate" -bg-c 50)
	local raw_cmd=("$herdload" propagate -addr "127.0.0.1:$r1" -listen "127.0.0.1:$rf" -n "$probes" -rate "$rate" -bg-c 50)
	local herds=() raws=() round
	for ((round = 0; round < rounds; round++)); do
		herds+=("$("${herd_cmd[@]}")")
		raws+=("$("${raw_cmd[@]}")")
	done

	echo
	echo "## Propagation: IAMAT at A until a fake peer three hops away (A -> B -> C -> herdload) has the record"
	echo "# maximum: ${max_cmd[*]#"$work/"}"
	echo "#   -> $(field ops_per_sec "$max") IAMAT/s; background load at half: $rate/s"
	echo "# herd:     ${herd_cmd[*]#"$work/"}"
	echo "# baseline: ${raw_cmd[*]#"$work/"}  (three raw relays: herdload raw -peer <next>)"
	if [ "$rounds" -gt 1 ]; then
		echo "# $rounds rounds of herd, raw in turn: medians; herd/raw p99 also as its range over the rounds; lost probes summed"
	fi
	printf "%-10s %-30s %-30s %-22s %s\n" phase "herd p50/p99/max us" "raw p50/p99/max us" "herd/raw p50 p99" "background sent/answered per s; lost probes herd/raw"
	local phase i
	for phase in quiescent load; do
		local h=() r=() p50_ratio=() p99_ratio=()
		for ((i = 0; i < rounds; i++)); do
			h+=("$(grep "phase=$phase" <<<"${herds[i]}")")
			r+=("$(grep "phase=$phase" <<<"${raws[i]}")")
			p50_ratio+=("$(calc %.4f "$(field p50_us "${h[i]}") / $(field p50_us "${r[i]}")")")
			p99_ratio+=("$(calc %.4f "$(field p99_us "${h[i]}") / $(field p99_us "${r[i]}")")")
		done
		local extra=""
		[ $phase = load ] && extra="herd $(over bg_sent_per_sec median "${h[@]}")/$(over bg_acked_per_sec median "${h[@]}"), raw $(over bg_sent_per_sec median "${r[@]}")/$(over bg_acked_per_sec median "${r[@]}"); "
		printf "%-10s %-30s %-30s %-22s %s\n" "$phase" \
			"$(over p50_us median "${h[@]}") / $(over p99_us median "${h[@]}") / $(over max_us median "${h[@]}")" \
			"$(over p50_us median "${r[@]}") / $(over p99_us median "${r[@]}") / $(over max_us median "${r[@]}")" \
			"$(calc %.1f "$(median "${p50_ratio[@]}")") $(spread "${p99_ratio[@]}")" \
			"${extra}lost $(over lost sum "${h[@]}")/$(over lost sum "${r[@]}")"
	done
	stop_all
}

# --- memory ------------------------------------------------------------------

section_memory() {
	local port=$((base + 20)) admin=$((base + 1020)) rport=$((base + 2390))
	echo
	echo "## Memory per stored client: a standalone herd server vs Redis storing the same records (SET <client> \"AT ...\")"
	echo "# herdload fill -addr <server> -n N -c 8 -p 64 [-redis]; a fresh server per N; RSS from /proc/<pid>/status;"
	echo "# heap from Caddy's /debug/vars after a forced GC (/debug/pprof/heap?gc=1): Go's heap, which does not hold the"
	echo "# records (they live in mapped memory that RSS counts); Redis: used_memory;"
	echo "# updated: RSS once every client has been updated three more times (the same fill again), with no forced GC"
	printf "%-8s %10s %10s %10s %10s %8s %10s %10s %10s %10s %12s %8s\n" clients "herd RSS" updated "heap use" "heap live" record \
		"redis RSS" updated "redis mem" "herd/redis" "RSS/record" "fill s"
	local n
	for n in $memory_sizes; do
		herd_server M "$port" "$admin" ""
		local pid=${pid_of[M]} vars="http://127.0.0.1:$admin/debug/vars"
		gc "$admin"
		local rss0 inuse0 alloc0 out rss1 inuse1 alloc1
		rss0=$(rss_bytes "$pid")
		inuse0=$(json_int "$vars" HeapInuse)
		alloc0=$(json_int "$vars" HeapAlloc)
		out=$("$herdload" fill -addr "127.0.0.1:$port" -n "$n" -c 8 -p 64 -prefix m)
		gc "$admin"
		rss1=$(rss_bytes "$pid")
		inuse1=$(json_int "$vars" HeapInuse)
		alloc1=$(json_int "$vars" HeapAlloc)
		[ "$(herd_clients "$admin")" = "$n" ] || {
			echo "the server holds $(herd_clients "$admin") clients, not $n" >&2
			exit 1
		}
		local pass rss2 rrss2
		for pass in 1 2 3; do
			"$herdload" fill -addr "127.0.0.1:$port" -n "$n" -c 8 -p 64 -prefix m >/dev/null
		done
		rss2=$(rss_bytes "$pid")
		stop_all

		redis_server R "$rport"
		local rrss0 rmem0 rrss1 rmem1
		rrss0=$(rss_bytes "${pid_of[R]}")
		rmem0=$(redis_info "$rport" memory used_memory)
		"$herdload" fill -redis -addr "127.0.0.1:$rport" -n "$n" -c 8 -p 64 -prefix m >/dev/null
		rrss1=$(rss_bytes "${pid_of[R]}")
		rmem1=$(redis_info "$rport" memory used_memory)
		[ "$(redis-cli -p "$rport" dbsize)" = "$n" ] || {
			echo "Redis holds $(redis-cli -p "$rport" dbsize) keys, not $n" >&2
			exit 1
		}
		for pass in 1 2 3; do
			"$herdload" fill -redis -addr "127.0.0.1:$rport" -n "$n" -c 8 -p 64 -prefix m >/dev/null
		done
		rrss2=$(rss_bytes "${pid_of[R]}")
		stop_all

		local rss inuse live rec rrss rmem
		rss=$(calc %.0f "($rss1 - $rss0) / $n")
		inuse=$(calc %.0f "($inuse1 - $inuse0) / $n")
		live=$(calc %.0f "($alloc1 - $alloc0) / $n")
		rec=$(field record_bytes "$out")
		rrss=$(calc %.0f "($rrss1 - $rrss0) / $n")
		rmem=$(calc %.0f "($rmem1 - $rmem0) / $n")
		printf "%-8s %10s %10s %10s %10s %8s %10s %10s %10s %10s %12s %8s\n" "$n" "$rss" "$(calc %.0f "($rss2 - $rss0) / $n")" \
			"$inuse" "$live" "$rec" "$rrss" "$(calc %.0f "($rrss2 - $rrss0) / $n")" "$rmem" \
			"$(calc %.2f "$rss / $rrss")" "$(calc %.2f "$rss / $rec")" "$(field seconds "$out")"
	done
	echo "# bytes per client; herd/redis = RSS growth ratio; RSS/record = RSS growth per client over the AT line's own size"
}

# --- catchup -----------------------------------------------------------------

section_catchup() {
	local m=$((base + 30)) n=$((base + 31)) madmin=$((base + 1030)) nadmin=$((base + 1031))
	local rm=$((base + 2392)) rr=$((base + 2393)) clients=$catchup_clients
	# N keeps its table in memory only: it relearns all of it.
	herd_server N "$n" "$nadmin" "		storage off"
	herd_server M "$m" "$madmin" "" N="$n"
	local fill_out
	fill_out=$("$herdload" fill -addr "127.0.0.1:$m" -n "$clients" -c 8 -p 64 -prefix k)
	wait_until 300 eval '[ "$(herd_clients '"$nadmin"')" = '"$clients"' ]'
	local peers="http://127.0.0.1:$madmin/herd/peers"
	local bytes0 records0 connects0
	bytes0=$(json_int "$peers" bytes_sent)
	records0=$(json_int "$peers" records_sent)
	connects0=$(json_int "$peers" connects)

	kill -9 "${pid_of[N]}"
	wait "${pid_of[N]}" 2>/dev/null || true
	local t0 t_port="" t_link="" t_done=""
	t0=$(now_ns)
	start N "$work/caddy" run --adapter caddyfile --config "$work/N.caddyfile"
	# The port opens before the link can come up, and the link before the
	# table can fill: wait for each in turn, so each poll is one check.
	local deadline=$(($(date +%s) + 300))
	until port_open "$n"; do alive N && sleep 0.01; done
	t_port=$(now_ns)
	until [ "$(json_int "$peers" connects)" -gt "$connects0" ]; do alive N && sleep 0.01; done
	t_link=$(now_ns)
	while [ "$(herd_clients "$nadmin")" -lt "$clients" ]; do
		[ "$(date +%s)" -lt "$deadline" ] || {
			echo "N did not relearn $clients clients in 300 s" >&2
			exit 1
		}
		sleep 0.02
	done
	t_done=$(now_ns)
	local bytes records
	bytes=$(($(json_int "$peers" bytes_sent) - bytes0))
	records=$(($(json_int "$peers" records_sent) - records0))
	stop_all

	# Redis: a replica killed and restarted at once resyncs in full. The
	# master streams its snapshot at once (diskless, no delay) and the
	# replica loads it from the socket, so neither waits on a disk.
	redis_server RM "$rm" --repl-diskless-sync yes --repl-diskless-sync-delay 0
	local replica_args=(--replicaof 127.0.0.1 "$rm" --repl-diskless-load on-empty-db)
	redis_server RR "$rr" "${replica_args[@]}"
	"$herdload" fill -redis -addr "127.0.0.1:$rm" -n "$clients" -c 8 -p 64 -prefix k >/dev/null
	wait_until 300 eval '[ "$(redis-cli -p '"$rr"' dbsize 2>/dev/null)" = '"$clients"' ]'
	kill -9 "${pid_of[RR]}"
	wait "${pid_of[RR]}" 2>/dev/null || true
	local r0 r_port="" r_done="" rpid
	r0=$(now_ns)
	start RR redis-server --port "$rr" --dir "$work/RR" --save '' --appendonly no "${replica_args[@]}"
	rpid=${pid_of[RR]}
	deadline=$(($(date +%s) + 300))
	until port_open "$rr"; do alive RR && sleep 0.01; done
	r_port=$(now_ns)
	until [ "$(redis-cli -p "$rr" dbsize 2>/dev/null)" = "$clients" ] &&
		[ "$(redis_info "$rr" replication master_link_status)" = up ]; do
		[ "$(date +%s)" -lt "$deadline" ] || {
			echo "the Redis replica did not resync in 300 s" >&2
			exit 1
		}
		sleep 0.02
	done
	r_done=$(now_ns)
	local rbytes
	rbytes=$(awk '/^rchar:/ { print $2 }' "/proc/$rpid/io")
	stop_all

	local table_bytes
	table_bytes=$(calc %.0f "$(field record_bytes "$fill_out") * $clients")
	echo
	echo "## Catch-up: N (storage off) killed (-9) and restarted at once with an empty table relearns $clients clients from its peer M"
	echo "# herdload fill -addr M -n $clients -c 8 -p 64 (N learns them live); kill -9 N; start N; poll N's /herd/stats every 20 ms"
	echo "# baseline: a Redis replica (diskless sync, no delay) killed and restarted, until dbsize = $clients and the link is up"
	local row="%-28s %11s %11s %11s %13s %12s %10s\n"
	printf "$row" "from restart:" "port open s" "link up s" "all known s" "open->known s" bytes records
	printf "$row" "herd N from M" "$(calc %.3f "($t_port - $t0) / 1e9")" "$(calc %.3f "($t_link - $t0) / 1e9")" \
		"$(calc %.3f "($t_done - $t0) / 1e9")" "$(calc %.3f "($t_done - $t_port) / 1e9")" "$bytes" "$records"
	printf "$row" "Redis replica full resync" "$(calc %.3f "($r_port - $r0) / 1e9")" "-" \
		"$(calc %.3f "($r_done - $r0) / 1e9")" "$(calc %.3f "($r_done - $r_port) / 1e9")" "$rbytes" "-"
	printf "$row" "the table (AT lines)" "" "" "" "" "$table_bytes" "$clients"
	echo "# herd/Redis time from restart: $(calc %.2f "($t_done - $t0) / ($r_done - $r0)"); from the port open: $(calc %.2f "($t_done - $t_port) / ($r_done - $r_port)")"
	echo "# herd bytes / table bytes: $(calc %.2f "$bytes / $table_bytes"); herd/Redis bytes: $(calc %.2f "$bytes / $rbytes") (Redis: the replica's rchar, its whole input)"
}

# --- whatsat -----------------------------------------------------------------

section_whatsat() {
	local w=$((base + 40)) admin=$((base + 1040)) pport=$((base + 140)) conns=50 clients=100000
	start places "$herdload" places -listen "127.0.0.1:$pport"
	waitport "$pport"
	wait_until 10 grep -q key= "$work/places.log"
	local key purl
	key=$(field key "$(head -1 "$work/places.log")")
	purl=http://127.0.0.1:$pport
	local provider_block="		places google_legacy {
			api_key $key
			endpoint $purl
		}"
	local cache=""
	herd_caddyfile probe "$w" off "$provider_block
		cache_ttl 10s"
	if "$work/caddy" adapt --adapter caddyfile --config "$work/probe.caddyfile" >/dev/null 2>&1; then
		cache="		cache_ttl 10s"
	fi

	local http_cmd=("$herdload" http -url "$purl/maps/api/place/nearbysearch/json?location=34.06893,-118.445127&radius=10000&key=$key" -c "$conns" -d "${seconds}s")
	local provider
	provider=$("${http_cmd[@]}")
	local pps
	pps=$(field ops_per_sec "$provider")

	echo
	echo "## WHATSAT throughput against a local fake Google provider (herdload places), beside the provider's own"
	echo "# provider alone: ${http_cmd[*]#"$work/"}"
	echo "#   -> $pps requests/s, p50/p99 $(field p50_us "$provider") / $(field p99_us "$provider") us"
	echo "# herd: places google_legacy { endpoint $purl }, $clients clients stored at distinct locations (herdload fill)"
	printf "%-34s %10s %10s %12s %22s %s\n" run WHATSAT/s provider/s herd/provider "upstream per WHATSAT" "p50/p99 us; command"
	local runs=("distinct locations|" "identical query|")
	[ -z "$cache" ] || runs+=("distinct, cache_ttl 10s|$cache" "identical, cache_ttl 10s|$cache")
	local run label extra
	for run in "${runs[@]}"; do
		label=${run%%|*}
		extra=${run#*|}
		herd_server W "$w" "$admin" "$provider_block${extra:+
$extra}"
		"$herdload" fill -addr "127.0.0.1:$w" -n "$clients" -c 8 -p 64 -prefix w >/dev/null
		local cmd=("$herdload" whatsat -addr "127.0.0.1:$w" -c "$conns" -p 1 -d "${seconds}s" -radius 10 -bound 5)
		case $label in
		distinct*) cmd+=(-clients "$clients" -prefix w) ;;
		*) cmd+=(-client w-0) ;;
		esac
		local before after out
		before=$(json_int "$purl/herdload/requests" requests)
		out=$("${cmd[@]}")
		after=$(json_int "$purl/herdload/requests" requests)
		kill "${pid_of[W]}"
		wait "${pid_of[W]}" 2>/dev/null || true
		local ws
		ws=$(field ops_per_sec "$out")
		printf "%-34s %10s %10s %12s %22s %s\n" "$label" "$ws" "$pps" "$(calc %.2f "$ws / $pps")" \
			"$(calc %.3f "($after - $before) / $(field total "$out")")" \
			"$(field p50_us "$out") / $(field p99_us "$out"); ${cmd[*]#"$work/"}"
		[ "$(field invalid "$out")" = 0 ] || echo "#   $(field invalid "$out") of $(field total "$out") WHATSATs were answered \`?\`"
	done
	[ -n "$cache" ] || echo "# (caddy adapt refuses cache_ttl in this build: no cache runs)"
	stop_all
}

# --- scale -------------------------------------------------------------------

section_scale() {
	local a=$((base + 50)) b=$((base + 51)) c=$((base + 52)) admin=$((base + 1050)) raw=$((base + 150)) pipe=16
	local solo=$((base + 53)) solo_admin=$((base + 1053))
	local peers="http://127.0.0.1:$admin/herd/peers"
	herd_three() {
		herd_server B "$b" off "" A="$a"
		herd_server C "$c" off "" A="$a"
		herd_server A "$a" "$admin" "" B="$b" C="$c"
	}
	flooded() { [ "$(json_int "$peers" pending)" = 0 ]; }
	# fill_table PORT N: the server at PORT holds N clients; A has flooded
	# them to both peers.
	fill_table() {
		"$herdload" fill -addr "127.0.0.1:$1" -n "$2" -c 8 -p 64 -prefix s >/dev/null
		wait_until 300 flooded
	}
	# measure_a ARGS...: runs herdload iamat at A and appends floods=<records
	# A sent per peer per IAMAT answered>: below 1 when a link's queue
	# replaced records of the same client before sending them.
	measure_a() {
		local sent0 out
		sent0=$(json_int "$peers" records_sent)
		out=$("$herdload" iamat -addr "127.0.0.1:$a" "$@")
		wait_until 300 flooded
		echo "$out floods=$(calc %.2f "($(json_int "$peers" records_sent) - $sent0) / 2 / $(field total "$out")")"
	}

	echo
	echo "## IAMAT throughput as connections grow (A floods to two live peers; table of 100000 clients); vs 10 connections, and vs raw"
	echo "# herdload iamat -addr <server> -c C -p $pipe -d ${seconds}s -clients 100000 -prefix s"
	herd_three
	start raw "$herdload" raw -addr "127.0.0.1:$raw"
	waitport "$raw"
	fill_table "$a" 100000
	rounds_note "herd and raw"
	printf "%-6s %12s %18s %12s %18s %14s   %s\n" C herd/s "herd/herd@$(cut -d' ' -f1 <<<"$scale_conns")" raw/s herd/raw "floods/IAMAT" "herd p50/p99 us"
	local first="" n h out rout round
	for n in $scale_conns; do
		local outs=() routs=() to_raw=()
		for ((round = 0; round < rounds; round++)); do
			out=$(measure_a -c "$n" -p "$pipe" -d "${seconds}s" -clients 100000 -prefix s)
			rout=$("$herdload" iamat -addr "127.0.0.1:$raw" -c "$n" -p "$pipe" -d "${seconds}s" -clients 100000 -prefix s)
			outs+=("$out") routs+=("$rout")
			to_raw+=("$(calc %.4f "$(field ops_per_sec "$out") / $(field ops_per_sec "$rout")")")
		done
		h=$(over ops_per_sec median "${outs[@]}")
		first=${first:-$h}
		printf "%-6s %12.0f %18s %12.0f %18s %14s   %s / %s\n" "$n" "$h" "$(spread_of ops_per_sec "$first" "${outs[@]}")" \
			"$(over ops_per_sec median "${routs[@]}")" "$(spread "${to_raw[@]}")" "$(over floods median "${outs[@]}")" \
			"$(over p50_us median "${outs[@]}")" "$(over p99_us median "${outs[@]}")"
	done
	stop_all

	echo
	echo "## IAMAT throughput as the table grows (table filled first); vs the smallest table"
	echo "# A floods to two live peers; a standalone server (no peers) alongside shows the table's own cost;"
	echo "# Redis + 2 replicas updating N keys (SET of an AT line: a hash table, like the herd's) shows what the"
	echo "# machine's caches alone cost as N grows"
	echo "# herdload fill -addr <server> -n N -c 8 -p 64 -prefix s, four times (the later three update every client);"
	echo "# herdload iamat -addr <server> -c 50 -p $pipe -d ${seconds}s -clients N -prefix s"
	echo "# redis-benchmark -c 8 -P 64 -n 3N -r N SET s-__rand_int__ <line> (fill); redis-benchmark -c 50 -P $pipe -r N SET s-__rand_int__ <line>"
	herd_three
	herd_server S "$solo" "$solo_admin" ""
	local r0=$((base + 2395))
	redis_server redis0 "$r0"
	redis_server redis1 $((r0 + 1)) --replicaof 127.0.0.1 "$r0"
	redis_server redis2 $((r0 + 2)) --replicaof 127.0.0.1 "$r0"
	wait_until 30 eval '[ "$(redis-cli -p '"$r0"' info replication | grep -c state=online)" = 2 ]'
	local line="AT A +0.000000001 s-000000000000 +34.068930-118.445127 1795633160.000000000"
	local smallest
	smallest=$(cut -d' ' -f1 <<<"$scale_sizes")
	rounds_note "herd, standalone and Redis"
	printf "%-9s %12s %18s %14s %14s %18s %12s %18s %15s   %s\n" clients herd/s "herd/herd@$smallest" "floods/IAMAT" standalone/s "solo/solo@$smallest" \
		redis/s "redis/redis@$smallest" held "herd p50/p99 us"
	first=""
	local sfirst="" rfirst="" sh r round
	for n in $scale_sizes; do
		# Four times: the later passes update every client three times. A
		# server just filled grows its heap towards its steady size (about
		# twice the table) over the next updates, with a page fault for each
		# fresh page (at 1M clients 0.014-0.018 per record at a peer, against
		# 0.0001-0.0009 once three passes are done); one that has been running
		# reuses its pages. Redis's fill overwrites every key about three
		# times too.
		local pass
		for pass in 1 2 3 4; do
			fill_table "$a" "$n"
			fill_table "$solo" "$n"
		done
		redis-benchmark -p "$r0" -c 8 -P 64 -n $((3 * n)) -r "$n" -q SET s-__rand_int__ "$line" >/dev/null 2>&1
		local outs=() souts=() rs=()
		for ((round = 0; round < rounds; round++)); do
			outs+=("$(measure_a -c 50 -p "$pipe" -d "${seconds}s" -clients "$n" -prefix s)")
			souts+=("$("$herdload" iamat -addr "127.0.0.1:$solo" -c 50 -p "$pipe" -d "${seconds}s" -clients "$n" -prefix s)")
			r=$(redis-benchmark -p "$r0" -c 50 -P "$pipe" -n 2000000 -r "$n" -q SET s-__rand_int__ "$line" 2>/dev/null |
				tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
			rs+=("ops_per_sec=$r")
		done
		h=$(over ops_per_sec median "${outs[@]}")
		sh=$(over ops_per_sec median "${souts[@]}")
		r=$(over ops_per_sec median "${rs[@]}")
		first=${first:-$h}
		sfirst=${sfirst:-$sh}
		rfirst=${rfirst:-$r}
		printf "%-9s %12.0f %18s %14s %14.0f %18s %12.0f %18s %15s   %s / %s\n" "$n" "$h" "$(spread_of ops_per_sec "$first" "${outs[@]}")" \
			"$(over floods median "${outs[@]}")" "$sh" "$(spread_of ops_per_sec "$sfirst" "${souts[@]}")" \
			"$r" "$(spread_of ops_per_sec "$rfirst" "${rs[@]}")" \
			"$(herd_clients "$admin")/$(herd_clients "$solo_admin")" "$(over p50_us median "${outs[@]}")" "$(over p99_us median "${outs[@]}")"
	done
	echo "# floods/IAMAT: records A sent per peer per IAMAT; below 1 when a link's queue overflowed and it resent the table instead"
	echo "# redis keys held at the largest size: $(redis-cli -p "$r0" dbsize)"
	stop_all
}

# --- durability --------------------------------------------------------------

# redis_aof NAME PORT FSYNC ARGS...: starts redis-server appending every write
# to its AOF, synced as FSYNC says (always, everysec).
redis_aof() {
	local name=$1 port=$2 fsync=$3
	shift 3
	mkdir -p "$work/$name"
	start "$name" redis-server --port "$port" --dir "$work/$name" --save '' --appendonly yes --appendfsync "$fsync" "$@"
	waitport "$port"
}

section_durability() {
	local levels=(off everysec always)
	local -A a_port a_admin
	local i=0 level
	# A star of three per level, each server storing (or not) as the level says.
	for level in "${levels[@]}"; do
		local a=$((base + 50 + 3 * i)) b=$((base + 51 + 3 * i)) c=$((base + 52 + 3 * i))
		local extra="		fsync $level"
		[ "$level" = off ] && extra="		storage off"
		herd_server "B$level" "$b" off "$extra" A="$a"
		herd_server "C$level" "$c" off "$extra" A="$a"
		herd_server "A$level" "$a" $((base + 1050 + i)) "$extra" B="$b" C="$c"
		a_port[$level]=$a
		a_admin[$level]=$((base + 1050 + i))
		i=$((i + 1))
	done
	local r_every=$((base + 2360)) r_always=$((base + 2363))
	local fsync r
	for fsync in everysec always; do
		r=$r_every
		[ $fsync = always ] && r=$r_always
		redis_aof "redis$fsync" "$r" "$fsync"
		redis_aof "redis${fsync}1" $((r + 1)) "$fsync" --replicaof 127.0.0.1 "$r"
		redis_aof "redis${fsync}2" $((r + 2)) "$fsync" --replicaof 127.0.0.1 "$r"
		wait_until 30 eval '[ "$(redis-cli -p '"$r"' info replication | grep -c state=online)" = 2 ]'
	done

	echo
	echo "## IAMAT throughput by durability: a star of three (A floods to two live peers, every server stores) vs Redis"
	echo "## + 2 replicas with an AOF on each (appendfsync everysec, always)"
	echo "# herdload iamat -addr A -c 50 -p P -d ${seconds}s -prefix h   (A, B, C with storage off / fsync everysec / fsync always)"
	echo "# redis-benchmark -c 50 -P P -r 100000 SET client-__rand_int__ \"$redis_line\"   (every server: --appendonly yes --appendfsync F)"
	echo "# data directories and AOFs on $(df --output=source,fstype "$work" | tail -1)"
	rounds_note "the three herds and both Redis"
	printf "%-3s %10s %10s %10s %12s %12s %15s %15s %15s %15s   %s\n" P off/s everysec/s always/s redis-es/s redis-al/s \
		everysec/off always/off "everysec/redis" "always/redis" "p99 us off/everysec/always"
	local pipe round
	for pipe in 1 16; do
		local offs=() evs=() als=() res=() ras=() e_off=() a_off=() e_r=() a_r=() p99o=() p99e=() p99a=()
		for ((round = 0; round < rounds; round++)); do
			local o e al re ra n
			o=$("$herdload" iamat -addr "127.0.0.1:${a_port[off]}" -c 50 -p "$pipe" -d "${seconds}s" -prefix h)
			e=$("$herdload" iamat -addr "127.0.0.1:${a_port[everysec]}" -c 50 -p "$pipe" -d "${seconds}s" -prefix h)
			al=$("$herdload" iamat -addr "127.0.0.1:${a_port[always]}" -c 50 -p "$pipe" -d "${seconds}s" -prefix h)
			n=$((50 * pipe * 2000))
			[ "$n" -lt 200000 ] && n=200000
			re=$(redis_requests "$r_every" 50 "$pipe" "$n" SET client-__rand_int__ "$redis_line")
			ra=$(redis_requests "$r_always" 50 "$pipe" $((n / 4)) SET client-__rand_int__ "$redis_line")
			offs+=("$(field ops_per_sec "$o")") evs+=("$(field ops_per_sec "$e")") als+=("$(field ops_per_sec "$al")")
			res+=("$(field ops_per_sec "$re")") ras+=("$(field ops_per_sec "$ra")")
			e_off+=("$(calc %.4f "${evs[-1]} / ${offs[-1]}")") a_off+=("$(calc %.4f "${als[-1]} / ${offs[-1]}")")
			e_r+=("$(calc %.4f "${evs[-1]} / ${res[-1]}")") a_r+=("$(calc %.4f "${als[-1]} / ${ras[-1]}")")
			p99o+=("$(field p99_us "$o")") p99e+=("$(field p99_us "$e")") p99a+=("$(field p99_us "$al")")
		done
		printf "%-3s %10.0f %10.0f %10.0f %12.0f %12.0f %15s %15s %15s %15s   %s / %s / %s\n" "$pipe" \
			"$(median "${offs[@]}")" "$(median "${evs[@]}")" "$(median "${als[@]}")" "$(median "${res[@]}")" "$(median "${ras[@]}")" \
			"$(spread "${e_off[@]}")" "$(spread "${a_off[@]}")" "$(spread "${e_r[@]}")" "$(spread "${a_r[@]}")" \
			"$(median "${p99o[@]}")" "$(median "${p99e[@]}")" "$(median "${p99a[@]}")"
	done
	local st
	st=$(curl -fsS "http://127.0.0.1:${a_admin[always]}/herd/storage")
	echo "# A with fsync always: $(json_field fsyncs "$st") fsyncs for $(json_field records "$st") records on disk"

	# A snapshot of a million clients, written while clients keep sending.
	local sa=${a_port[everysec]} sadmin=${a_admin[everysec]} clients=$catchup_clients
	"$herdload" fill -addr "127.0.0.1:$sa" -n "$clients" -c 8 -p 64 -prefix snap >/dev/null
	local quiet during snap
	quiet=$("$herdload" iamat -addr "127.0.0.1:$sa" -c 50 -p 1 -d "${seconds}s" -clients "$clients" -prefix snap)
	(sleep 1 && curl -fsS -X POST "http://127.0.0.1:$sadmin/herd/storage/snapshot" >"$work/snapshot.json") &
	local snapshot_pid=$!
	during=$("$herdload" iamat -addr "127.0.0.1:$sa" -c 50 -p 1 -d "${seconds}s" -clients "$clients" -prefix snap)
	wait "$snapshot_pid"
	snap=$(cat "$work/snapshot.json")
	echo
	echo "## IAMAT while a snapshot of $clients clients is written (A of the everysec star, C=50 P=1)"
	echo "# herdload iamat -addr A -c 50 -p 1 -d ${seconds}s -clients $clients -prefix snap; then the same with"
	echo "# POST /herd/storage/snapshot 1 s into the run"
	printf "%-18s %10s %10s %10s\n" run IAMAT/s p50_us p99_us
	printf "%-18s %10s %10s %10s\n" "no snapshot" "$(field ops_per_sec "$quiet")" "$(field p50_us "$quiet")" "$(field p99_us "$quiet")"
	printf "%-18s %10s %10s %10s\n" "during snapshot" "$(field ops_per_sec "$during")" "$(field p50_us "$during")" "$(field p99_us "$during")"
	echo "# the snapshot: $(json_field last_snapshot_records "$snap") records, $(json_field last_snapshot_bytes "$snap") bytes, $(json_field last_snapshot_seconds "$snap") s"
	stop_all
}

# cursor_of ADMIN PEER: how far the server at ADMIN knows PEER's records.
cursor_of() {
	curl -fsS "http://127.0.0.1:$1/herd/storage" | grep -o "\"$2\":{\"epoch\":\"[^\"]*\",\"seq\":[0-9]*" | grep -o '[0-9]*$'
}

# json_field KEY JSON: the first value of "KEY" in JSON text.
json_field() { grep -o "\"$1\": *[^,}]*" <<<"$2" | head -1 | sed -E 's/^"[^"]*": *//; s/"//g'; }

# --- restart -----------------------------------------------------------------

# redis_answers PORT KEY: whether Redis at PORT has loaded its data and has KEY.
redis_answers() { [ "$(redis-cli -p "$1" exists "$2" 2>/dev/null)" = 1 ]; }

# whatsat_answers PORT CLIENT: whether the herd server at PORT answers WHATSAT for CLIENT.
whatsat_answers() {
	local reply
	reply=$(exec 3<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null && printf 'WHATSAT %s 1 1\n' "$2" >&3 && timeout 2 head -c 2 <&3) || return 1
	[ "$reply" = AT ]
}

# since_ns T0: seconds since T0 (nanoseconds), three decimals.
since() { calc %.3f "($(now_ns) - $1) / 1e9"; }

section_restart() {
	local s=$((base + 60)) sadmin=$((base + 1060)) clients=$catchup_clients
	local places
	places=$(cd "$root" && pwd)/examples/places.json
	herd_server S "$s" "$sadmin" "		places file $places"
	"$herdload" fill -addr "127.0.0.1:$s" -n "$clients" -c 8 -p 64 -prefix r >/dev/null
	local st disk last=r-$((clients - 1))
	st=$(curl -fsS "http://127.0.0.1:$sadmin/herd/storage")
	disk=$(json_field disk_bytes "$st")
	kill -9 "${pid_of[S]}"
	wait "${pid_of[S]}" 2>/dev/null || true
	local t0 h_port h_done
	t0=$(now_ns)
	start S "$work/caddy" run --adapter caddyfile --config "$work/S.caddyfile"
	until port_open "$s"; do alive S && sleep 0.005; done
	h_port=$(since "$t0")
	until whatsat_answers "$s" "$last"; do alive S && sleep 0.005; done
	h_done=$(since "$t0")
	[ "$(herd_clients "$sadmin")" = "$clients" ] || {
		echo "S restarted with $(herd_clients "$sadmin") clients, not $clients" >&2
		exit 1
	}
	stop_all

	local r=$((base + 2366)) rdir=$work/RA
	redis_aof RA "$r" everysec
	"$herdload" fill -redis -addr "127.0.0.1:$r" -n "$clients" -c 8 -p 64 -prefix r >/dev/null
	redis-cli -p "$r" bgsave >/dev/null
	wait_until 120 eval '[ "$(redis_info '"$r"' persistence rdb_bgsave_in_progress)" = 0 ]'
	local aof_bytes rdb_bytes
	aof_bytes=$(du -sb "$rdir/appendonlydir" | cut -f1)
	rdb_bytes=$(stat -c %s "$rdir/dump.rdb")
	kill -9 "${pid_of[RA]}"
	wait "${pid_of[RA]}" 2>/dev/null || true
	local ra_port ra_done rr_port rr_done
	t0=$(now_ns)
	start RA redis-server --port "$r" --dir "$rdir" --save '' --appendonly yes --appendfsync everysec
	until port_open "$r"; do alive RA && sleep 0.005; done
	ra_port=$(since "$t0")
	until redis_answers "$r" "$last"; do alive RA && sleep 0.005; done
	ra_done=$(since "$t0")
	redis-cli -p "$r" shutdown nosave >/dev/null 2>&1 || true
	wait "${pid_of[RA]}" 2>/dev/null || true
	t0=$(now_ns)
	start RA redis-server --port "$r" --dir "$rdir" --save '' --appendonly no
	until port_open "$r"; do alive RA && sleep 0.005; done
	rr_port=$(since "$t0")
	until redis_answers "$r" "$last"; do alive RA && sleep 0.005; done
	rr_done=$(since "$t0")
	stop_all

	echo
	echo "## Restart of a server holding $clients clients: from the start until it answers for the last one stored"
	echo "# herd: herdload fill -n $clients -c 8 -p 64 (fsync everysec); kill -9; start; WHATSAT r-$((clients - 1)) 1 1 every 5 ms until answered"
	echo "# Redis: the same records SET with appendonly everysec; kill -9; start on its AOF, then on its RDB; EXISTS every 5 ms"
	printf "%-24s %12s %12s %16s\n" "" "port open s" "answers s" "disk B/client"
	printf "%-24s %12s %12s %16s\n" herd "$h_port" "$h_done" "$(calc %.0f "$disk / $clients")"
	printf "%-24s %12s %12s %16s\n" "Redis from its AOF" "$ra_port" "$ra_done" "$(calc %.0f "$aof_bytes / $clients")"
	printf "%-24s %12s %12s %16s\n" "Redis from its RDB" "$rr_port" "$rr_done" "$(calc %.0f "$rdb_bytes / $clients")"
	echo "# herd/Redis AOF: $(calc %.2f "$h_done / $ra_done"); herd/Redis RDB: $(calc %.2f "$h_done / $rr_done")"
	echo "# herd on disk: $(json_field log_bytes "$st") bytes of log in $(json_field segments "$st") segments, $(json_field snapshots "$st") snapshots taken during the fill"

	# Catch-up after a peer missed some of a million clients' updates.
	local m=$((base + 61)) n=$((base + 62)) madmin=$((base + 1061)) nadmin=$((base + 1062))
	herd_server N "$n" "$nadmin" "" M="$m"
	herd_server M "$m" "$madmin" "" N="$n"
	herd_caddyfile Noff "$n" "$nadmin" "		storage off" M="$m"
	"$herdload" fill -addr "127.0.0.1:$m" -n "$clients" -c 8 -p 64 -prefix k >/dev/null
	wait_until 300 eval '[ "$(herd_clients '"$nadmin"')" = '"$clients"' ]'
	local mpeers="http://127.0.0.1:$madmin/herd/peers" npeers="http://127.0.0.1:$nadmin/herd/peers"
	local changed rows=()
	for changed in 1000 100000; do
		local config
		for config in N Noff; do
			# N holds everything M stored, and knows it.
			wait_until 60 eval '[ "$(cursor_of '"$nadmin"' M)" = "$(json_field seq "$(curl -fsS http://127.0.0.1:'"$madmin"'/herd/storage)")" ]' 
			kill "${pid_of[N]}"
			wait "${pid_of[N]}" 2>/dev/null || true
			local fill_out b0
			fill_out=$("$herdload" fill -addr "127.0.0.1:$m" -n "$changed" -c 8 -p 64 -prefix k)
			b0=$(json_int "$mpeers" bytes_sent)
			t0=$(now_ns)
			start N "$work/caddy" run --adapter caddyfile --config "$work/$config.caddyfile"
			local want=$changed
			[ $config = Noff ] && want=$clients
			until [ "$(json_int "http://127.0.0.1:$nadmin/herd/stats" applied)" -ge "$want" ]; do alive N && sleep 0.01; done
			local took bytes
			took=$(since "$t0")
			bytes=$(($(json_int "$mpeers" bytes_sent) - b0 + $(json_int "$npeers" bytes_sent)))
			local what="sends what was missed"
			[ $config = Noff ] && what="whole table (N storage off)"
			rows+=("$(printf "%-8s %-30s %10s %14s %14s %10s" "$changed" "$what" "$took" "$bytes" \
				"$(calc %.0f "$changed * $(field record_bytes "$fill_out")")" "$(calc %.2f "$bytes / ($changed * $(field record_bytes "$fill_out"))")")")
			if [ $config = Noff ]; then
				# Back to storage on, caught up on everything.
				kill "${pid_of[N]}"
				wait "${pid_of[N]}" 2>/dev/null || true
				start N "$work/caddy" run --adapter caddyfile --config "$work/N.caddyfile"
				waitport "$n"
			fi
		done
	done
	stop_all

	# Redis: a replica stopped (its RDB saved, with where it was in the
	# primary's stream) and started again after the same updates.
	local rm=$((base + 2367)) rr=$((base + 2368))
	redis_server RM "$rm" --repl-backlog-size 256mb
	mkdir -p "$work/RR"
	start RR redis-server --port "$rr" --dir "$work/RR" --save '' --appendonly no --replicaof 127.0.0.1 "$rm"
	waitport "$rr"
	"$herdload" fill -redis -addr "127.0.0.1:$rm" -n "$clients" -c 8 -p 64 -prefix k >/dev/null
	wait_until 300 eval '[ "$(redis-cli -p '"$rr"' dbsize 2>/dev/null)" = '"$clients"' ]'
	for changed in 1000 100000; do
		wait_until 60 eval '[ "$(redis_info '"$rr"' replication slave_repl_offset)" = "$(redis_info '"$rm"' replication master_repl_offset)" ]'
		redis-cli -p "$rr" shutdown save >/dev/null 2>&1 || true
		wait "${pid_of[RR]}" 2>/dev/null || true
		local o0 o1
		o0=$(redis_info "$rm" replication master_repl_offset)
		"$herdload" fill -redis -addr "127.0.0.1:$rm" -n "$changed" -c 8 -p 64 -prefix k >/dev/null
		o1=$(redis_info "$rm" replication master_repl_offset)
		t0=$(now_ns)
		start RR redis-server --port "$rr" --dir "$work/RR" --save '' --appendonly no --replicaof 127.0.0.1 "$rm"
		until port_open "$rr"; do alive RR && sleep 0.005; done
		until [ "$(redis_info "$rr" replication master_link_status 2>/dev/null)" = up ] &&
			[ "$(redis_info "$rr" replication slave_repl_offset)" -ge "$o1" ]; do
			alive RR && sleep 0.01
		done
		local took kind=partial
		took=$(since "$t0")
		grep -qi "partial resynchronization" <(tail -n 20 "$work/RR.log") || kind=full
		rows+=("$(printf "%-8s %-30s %10s %14s %14s %10s" "$changed" "Redis replica PSYNC ($kind)" "$took" "$((o1 - o0))" "-" "-")")
	done
	stop_all
	echo
	echo "## Catch-up of N after it missed updates to some of M's $clients clients (stopped gracefully, updated at M, started)"
	echo "# herdload fill -addr M -n C -c 8 -p 64 -prefix k while N is down; seconds from N's start until it applied them all;"
	echo "# bytes: what both links sent from N's start (/herd/peers bytes_sent); Redis: a replica stopped with SHUTDOWN SAVE,"
	echo "# the same SETs at the primary (repl-backlog-size 256mb), restarted; bytes: the primary's replication offset"
	printf "%-8s %-30s %10s %14s %14s %10s\n" changed run seconds bytes "changed bytes" ratio
	printf "%s\n" "${rows[@]}"
}

# --- logging -----------------------------------------------------------------

# logging_herd VARIANT PORT SHAPE: starts a star of three (A floods to B and C)
# or the example herd's five servers (Farmar, Gasol, Hill, Meeks, Young as in
# examples/), every server logging as VARIANT says to $work/logs/VARIANT-NAME:
# info (INFO to a file), buffered (DEBUG through herd_buffered to a file),
# file (DEBUG through Caddy's file writer). Clients connect to the first.
logging_herd() {
	local variant=$1 p=$2 shape=$3 name
	mkdir -p "$work/logs"
	local -a names peers
	if [ "$shape" = star ]; then
		names=(A B C)
		peers=("@B=$((p + 1)) @C=$((p + 2))" "@A=$p" "@A=$p")
	else
		names=(Farmar Gasol Hill Meeks Young)
		peers=("@Meeks=$((p + 3)) @Young=$((p + 4))" "@Meeks=$((p + 3)) @Young=$((p + 4))" "@Meeks=$((p + 3))"
			"@Farmar=$p @Gasol=$((p + 1)) @Hill=$((p + 2))" "@Farmar=$p @Gasol=$((p + 1))")
	fi
	# Each herd's names are its own: every server has a data directory by name.
	local prefix=$variant-$shape-
	local i
	for i in "${!names[@]}"; do
		name=${names[$i]}
		local file="$work/logs/$variant-$name"
		# Not rolled: the runs empty the files, which Caddy then opens to append.
		local output="output file $file {"$'\n\t\t\troll_disabled\n\t\t}'
		case $variant in
		info) herd_log=$'\t\t'"$output"$'\n\t\tlevel INFO' ;;
		buffered) herd_log=$'\t\toutput herd_buffered {\n\t\t\t'"${output//$'\n'/$'\n\t'}"$'\n\t\t}\n\t\tlevel DEBUG' ;;
		file) herd_log=$'\t\t'"$output"$'\n\t\tlevel DEBUG' ;;
		esac
		# shellcheck disable=SC2086
		herd_server "$prefix$name" $((p + i)) off "" ${peers[$i]//@/$prefix}
	done
	herd_log="		level INFO"
}

section_logging() {
	local variants=(info buffered file) shapes=(star five)
	local -A port
	local i=0 v shape
	for shape in "${shapes[@]}"; do
		for v in "${variants[@]}"; do
			port[$v-$shape]=$((base + 1100 + 5 * i))
			logging_herd "$v" "${port[$v-$shape]}" "$shape"
			i=$((i + 1))
		done
	done

	echo
	echo "## IAMAT throughput with every line in and out logged (DEBUG) vs logged at INFO, each to a file per server"
	echo "# herdload iamat -addr <first server> -c 50 -p P -d ${seconds}s -prefix h; star: A floods to B and C; five: the"
	echo "# example herd's servers and links, clients at Farmar. info: log { output file F; level INFO };"
	echo "# buffered: log { output herd_buffered { output file F }; level DEBUG }; file: log { output file F; level DEBUG }"
	echo "# DEBUG entries: one per write of replies per connection, holding its lines in and out; the logs are emptied"
	echo "# after each run"
	rounds_note "the three variants"
	printf "%-5s %-3s %10s %10s %10s %16s %16s %12s\n" herd P info/s buffered/s file/s buffered/info file/info "log B/IAMAT"
	local pipe round
	for shape in "${shapes[@]}"; do
		for pipe in 1 16; do
			local is=() bs=() fs=() b_i=() f_i=() per=()
			for ((round = 0; round < rounds; round++)); do
				local out bytes
				for v in "${variants[@]}"; do
					out=$("$herdload" iamat -addr "127.0.0.1:${port[$v-$shape]}" -c 50 -p "$pipe" -d "${seconds}s" -prefix h)
					case $v in
					info) is+=("$(field ops_per_sec "$out")") ;;
					buffered) bs+=("$(field ops_per_sec "$out")") ;;
					file)
						fs+=("$(field ops_per_sec "$out")")
						bytes=$(cat "$work"/logs/file-* | wc -c)
						per+=("$(calc %.0f "$bytes / ($(field ops_per_sec "$out") * $seconds)")")
						;;
					esac
					for f in "$work"/logs/"$v"-*; do : >"$f"; done
				done
				b_i+=("$(calc %.4f "${bs[-1]} / ${is[-1]}")") f_i+=("$(calc %.4f "${fs[-1]} / ${is[-1]}")")
			done
			printf "%-5s %-3s %10.0f %10.0f %10.0f %16s %16s %12s\n" "$shape" "$pipe" \
				"$(median "${is[@]}")" "$(median "${bs[@]}")" "$(median "${fs[@]}")" \
				"$(spread "${b_i[@]}")" "$(spread "${f_i[@]}")" "$(median "${per[@]}")"
		done
	done
	stop_all
}

for s in ${sections//,/ }; do
	echo "running $s..." >&2
	"section_$s"
done
