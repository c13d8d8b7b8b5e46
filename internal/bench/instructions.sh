#!/usr/bin/env bash
# instructions.sh: instructions executed per request by each server, counted
# by valgrind's callgrind, which does not depend on other load on the
# machine (perf's instruction counter is not available on this VM).
#
#   internal/bench/instructions.sh [N] [WARM]          (default 5000 1000)
#
# Each server runs under callgrind (GODEBUG=asyncpreemptoff=1: callgrind
# 3.19 asserts on Go's preemption signals, and on a signal svc catches, so
# it is killed, not stopped). Once ready it gets WARM requests of GET
# /hello/ann (internal/bench/load, 4 keep-alive connections), then its
# counters are zeroed (callgrind_control -z), it serves N requests, and
# they are dumped (callgrind_control -d): instructions per request is that
# total over N, background work of the process during the run included.
# Servers (SERVERS picks a subset): barechi, fairbase, and svchello with
# log.access=false (svc-access-off), with its default configuration and
# stderr read through a pipe (svc-access-pipe), and with stderr appended to
# a file (svc-access-file). SVCHELLO=PATH measures that svchello binary
# instead of building it (a build of an older commit, for a before/after).
# ENV="K=V ..." adds variables to every server's environment (ENV=GOGC=100).
# KEEP=DIR keeps each server's dump as DIR/NAME.callgrind, for
# callgrind_annotate.
# Needs valgrind.
set -euo pipefail

N=${1:-5000}
WARM=${2:-1000}
SERVERS=${SERVERS:-barechi fairbase svc-access-off svc-access-pipe svc-access-file}

cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind not found (apt-get install -y valgrind)" >&2; exit 1; }
bin=$(mktemp -d)
work=$(mktemp -d)
vpid=""
cleanup() {
	if [[ -n $vpid ]]; then kill "$vpid" 2>/dev/null || true; wait "$vpid" 2>/dev/null || true; fi
	rm -rf "$bin" "$work"
}
trap cleanup EXIT
go build -o "$bin/" ./internal/bench/barechi ./internal/bench/fairbase ./internal/bench/svchello ./internal/bench/load
if [[ -n ${SVCHELLO:-} ]]; then cp "$SVCHELLO" "$bin/svchello"; fi

# count NAME: the instructions server NAME executes for N requests.
count() {
	local name=$1 prog url=http://127.0.0.1:8020/hello/ann ready=http://127.0.0.1:8021/readyz out=$work/cg.out
	local env=(GODEBUG=asyncpreemptoff=1 SHUTDOWN_DRAIN=0s ${ENV:-}) stderr=/dev/null pipe=""
	case $name in
	barechi) prog=barechi url=http://127.0.0.1:8092/hello/ann ready=$url ;;
	fairbase) prog=fairbase url=http://127.0.0.1:8096/hello/ann ready=$url ;;
	svc-access-off) prog=svchello env+=(LOG_ACCESS=false) ;;
	svc-access-pipe) prog=svchello pipe=1 ;;
	svc-access-file) prog=svchello stderr=$work/stderr.log ;;
	*) echo "instructions.sh: unknown server $name" >&2; exit 1 ;;
	esac
	rm -f "$out"* "$work/stderr.log"
	if [[ -n $pipe ]]; then
		(cd "$work" && exec env -i "${env[@]}" valgrind -q --tool=callgrind --callgrind-out-file="$out" "$bin/$prog" 2> >(exec cat >/dev/null)) &
	else
		(cd "$work" && exec env -i "${env[@]}" valgrind -q --tool=callgrind --callgrind-out-file="$out" "$bin/$prog" 2>>"$stderr") &
	fi
	vpid=$!
	for _ in $(seq 1 600); do
		if [[ $(curl -s -o /dev/null -w '%{http_code}' "$ready" || true) == 200 ]]; then break; fi
		sleep 0.05
	done
	"$bin/load" "$url" "$WARM" 4
	callgrind_control -z "$vpid" >/dev/null 2>&1
	"$bin/load" "$url" "$N" 4
	callgrind_control -d "$vpid" >/dev/null 2>&1
	kill -KILL "$vpid"
	wait "$vpid" 2>/dev/null || true
	vpid=""
	if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP" && cat "$out".* > "$KEEP/$name.callgrind"; fi
	awk '/^totals:/ {print $2}' "$out".*
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+dirty'), go $(go env GOVERSION), $(valgrind --version), N=$N after $WARM"
printf '%-16s %14s %12s\n' server instructions instr/req
for s in $SERVERS; do
	t=$(count "$s")
	printf '%-16s %14s %12.0f\n' "$s" "$t" "$(awk -v t="$t" -v n="$N" 'BEGIN {print t / n}')"
done
