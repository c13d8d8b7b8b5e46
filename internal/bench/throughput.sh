#!/usr/bin/env bash
# throughput.sh: req/s and p99 of svc's public stack against bare chi, the
# same handler (bench.Hello) behind each, over loopback, measured with wrk.
#
#   internal/bench/throughput.sh [ROUNDS] [DURATION]     (default 5 10s)
#
# Each round runs, in turn: barechi, barechi with svc's server timeouts,
# fairbase (the fair baseline: chi with svc's server limits, linking fx,
# client_golang and the etcd client), svc with log.access=false, svc with
# log.access=true (JSON lines to /dev/null), and svc with its default
# configuration and stderr read through a pipe (as journald or Kubernetes
# read it), and svc with stderr appended to a file (svc-access-file, not in
# the default set). SERVERS (space-separated names) picks a subset; the "vs_fair"
# column compares with fairbase when it ran. Servers are pinned to CPU 1
# and wrk (-t1 -c$CONN, default 32) to CPU 0, so the two never share a core;
# each server gets a 2s warm-up before the measured run. Besides wrk's
# req/s and p99 it reports the server's CPU time per request (from
# /proc/PID/stat), which other load on the machine disturbs far less than
# req/s: "chi/this_cpu" is the throughput ratio a CPU-bound server would
# reach. Needs wrk
# (apt-get install -y wrk) and taskset; only loopback is used.
set -euo pipefail

ROUNDS=${1:-5}
DURATION=${2:-10s}
CONN=${CONN:-32}
SERVER_CPU=${SERVER_CPU:-1}
WRK_CPU=${WRK_CPU:-0}

cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "throughput.sh: wrk not found (apt-get install -y wrk)" >&2; exit 1; }

bin=$(mktemp -d)
work=$(mktemp -d)
pid=""
cleanup() {
	if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$bin" "$work"
}
trap cleanup EXIT

SERVERS=${SERVERS:-barechi barechi-timeouts fairbase svc-access-off svc-access-on svc-access-pipe}

go build -o "$bin/" ./internal/bench/barechi ./internal/bench/svchello ./internal/bench/fairbase

for port in 8092 8096 8020 8021 4020; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "throughput.sh: port $port is taken; stop whatever holds it" >&2
		exit 1
	fi
done

# start NAME URL ENV... -- starts a server pinned to SERVER_CPU with only
# ENV as its environment, and waits for URL to answer 200. Its stderr goes
# to /dev/null, through a pipe to cat when PIPE=1, or to a file when FILE=1.
start() {
	local bin_name=$1 url=$2
	shift 2
	if [[ ${PIPE:-} == 1 ]]; then
		(cd "$work" && exec env -i "$@" taskset -c "$SERVER_CPU" "$bin/$bin_name" 2> >(exec cat >/dev/null)) &
	elif [[ ${FILE:-} == 1 ]]; then
		(cd "$work" && exec env -i "$@" taskset -c "$SERVER_CPU" "$bin/$bin_name" 2>>"$work/stderr.log") &
	else
		(cd "$work" && exec env -i "$@" taskset -c "$SERVER_CPU" "$bin/$bin_name" 2>/dev/null) &
	fi
	pid=$!
	for _ in $(seq 1 500); do
		if [[ $(curl -s -o /dev/null -w '%{http_code}' "$url" || true) == 200 ]]; then return 0; fi
		sleep 0.01
	done
	echo "throughput.sh: $bin_name did not answer $url" >&2
	exit 1
}

stop() {
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=""
}

# cputicks prints the user+system CPU time of process $1 in clock ticks.
cputicks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

# to_us converts a wrk latency (850.00us, 1.20ms, 1.01s) to microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n
	}'
}

results=$(mktemp)
measure() {
	local name=$1 url=$2 round=$3 out rps p99 reqs cpu cpu0 cpu1
	taskset -c "$WRK_CPU" wrk -t1 -c"$CONN" -d2s "$url" >/dev/null
	cpu0=$(cputicks "$pid")
	out=$(taskset -c "$WRK_CPU" wrk -t1 -c"$CONN" -d"$DURATION" --latency "$url")
	cpu1=$(cputicks "$pid")
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	cpu=$(awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
	if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
		echo "throughput.sh: $name: errors during the run:" >&2
		echo "$out" >&2
		exit 1
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$rps" "$p99" "$cpu" | tee -a "$results"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+dirty')"
echo "# go $(go env GOVERSION), $(nproc) CPUs, wrk -t1 -c$CONN -d$DURATION, server on CPU $SERVER_CPU, wrk on CPU $WRK_CPU"
printf 'round\tserver\treq/s\tp99_us\tcpu_us_per_req\n'
# run NAME -- one measured run of the server called NAME.
run() {
	local u=http://127.0.0.1:8020/hello/ann
	case $1 in
	barechi) start barechi http://127.0.0.1:8092/hello/ann && measure "$1" http://127.0.0.1:8092/hello/ann "$round" ;;
	barechi-timeouts) start barechi http://127.0.0.1:8092/hello/ann TIMEOUTS=1 && measure "$1" http://127.0.0.1:8092/hello/ann "$round" ;;
	fairbase) start fairbase http://127.0.0.1:8096/hello/ann && measure "$1" http://127.0.0.1:8096/hello/ann "$round" ;;
	svc-access-off) start svchello $u LOG_ACCESS=false SHUTDOWN_DRAIN=0s && measure "$1" $u "$round" ;;
	svc-access-on) start svchello $u LOG_ACCESS=true LOG_FORMAT=json SHUTDOWN_DRAIN=0s && measure "$1" $u "$round" ;;
	svc-access-pipe) PIPE=1 start svchello $u SHUTDOWN_DRAIN=0s && measure "$1" $u "$round" ;;
	svc-access-file) FILE=1 start svchello $u SHUTDOWN_DRAIN=0s && measure "$1" $u "$round" && rm -f "$work/stderr.log" ;;
	*) echo "throughput.sh: unknown server $1" >&2; exit 1 ;;
	esac
	stop
}

for round in $(seq 1 "$ROUNDS"); do
	for s in $SERVERS; do run "$s"; done
done

echo
echo "# medians over $ROUNDS rounds"
awk -F'\t' '
	{ rps[$2] = rps[$2] " " $3; p99[$2] = p99[$2] " " $4; cpu[$2] = cpu[$2] " " $5 }
	function median(list,    a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		base = median(rps["barechi"]); basecpu = median(cpu["barechi"]); fair = median(rps["fairbase"])
		printf "%-16s %10s %8s %8s %8s %14s %14s\n", "server", "req/s", "vs_chi", "vs_fair", "p99_us", "cpu_us/req", "chi/this_cpu"
		n = split(servers, order, " ")
		for (k = 1; k <= n; k++) {
			s = order[k]
			m = median(rps[s]); c = median(cpu[s])
			printf "%-16s %10.0f %7.1f%% %7.1f%% %8.0f %14.2f %13.1f%%\n", s, m, base ? 100 * m / base : 0, fair ? 100 * m / fair : 0, median(p99[s]), c, basecpu ? 100 * basecpu / c : 0
		}
	}' servers="$SERVERS" "$results"
rm -f "$results"
