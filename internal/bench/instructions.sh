#!/usr/bin/env bash
# instructions.sh: instructions executed per request by each server, counted
# by valgrind's callgrind, which does not depend on other load on the
# machine (perf's instruction counter is not available on this VM).
#
#   internal/bench/instructions.sh [N1] [N2]          (default 2000 10000)
#
# Each server runs under callgrind (GODEBUG=asyncpreemptoff=1: callgrind
# 3.19 asserts on Go's preemption signals) twice: once serving N1 requests
# of GET /hello/ann, once N2 (internal/bench/load, 4 keep-alive
# connections), then stops (SIGTERM). Instructions per request is the
# difference of the two totals over N2-N1: start, stop and the warm-up
# cancel out. Servers (SERVERS picks a subset): barechi, fairbase, and
# svchello with log.access=false (svc-access-off), with its default
# configuration and stderr read through a pipe (svc-access-pipe), and with
# stderr appended to a file (svc-access-file). SVCHELLO=PATH measures that
# svchello binary instead of building it (a build of an older commit, for
# a before/after). Needs valgrind.
set -euo pipefail

N1=${1:-2000}
N2=${2:-10000}
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

# count NAME N: the instructions of one run of server NAME serving N requests.
count() {
	local name=$1 n=$2 prog url=http://127.0.0.1:8020/hello/ann ready=http://127.0.0.1:8021/readyz out=$work/cg.out
	local env=(GODEBUG=asyncpreemptoff=1 SHUTDOWN_DRAIN=0s) stderr=/dev/null pipe=""
	case $name in
	barechi) prog=barechi url=http://127.0.0.1:8092/hello/ann ready=$url ;;
	fairbase) prog=fairbase url=http://127.0.0.1:8096/hello/ann ready=$url ;;
	svc-access-off) prog=svchello env+=(LOG_ACCESS=false) ;;
	svc-access-pipe) prog=svchello pipe=1 ;;
	svc-access-file) prog=svchello stderr=$work/stderr.log ;;
	*) echo "instructions.sh: unknown server $name" >&2; exit 1 ;;
	esac
	rm -f "$out" "$work/stderr.log"
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
	"$bin/load" "$url" "$n" 4
	kill -TERM "$vpid"
	wait "$vpid" 2>/dev/null || true
	vpid=""
	awk '/^totals:/ {print $2}' "$out"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+dirty'), go $(go env GOVERSION), $(valgrind --version), N1=$N1 N2=$N2"
printf '%-16s %14s %14s %12s\n' server "instr(N1)" "instr(N2)" instr/req
for s in $SERVERS; do
	a=$(count "$s" "$N1")
	b=$(count "$s" "$N2")
	printf '%-16s %14s %14s %12.0f\n' "$s" "$a" "$b" "$(awk -v a="$a" -v b="$b" -v n=$((N2 - N1)) 'BEGIN {print (b - a) / n}')"
done
