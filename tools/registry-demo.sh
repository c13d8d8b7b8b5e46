#!/usr/bin/env bash
# registry-demo: a real etcd on loopback and two example-service instances
# registered in it. Ctrl-C stops everything. Used by `make registry-demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
data=tmp/etcd-demo
rm -rf "$data"; mkdir -p "$data"
pids=()
# Services first (they deregister), etcd last.
cleanup() {
  kill -TERM "${pids[@]:1}" 2>/dev/null || true
  wait "${pids[@]:1}" 2>/dev/null || true
  kill -TERM "${pids[0]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

bin/etcd --name demo --data-dir "$data" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster demo=http://127.0.0.1:2380 --log-level error >"$data.log" 2>&1 &
pids+=($!)

export ETCD_ENDPOINTS=127.0.0.1:2379 REGISTRY_HOST=127.0.0.1 LOG_FORMAT=text
bin/example-service & pids+=($!)
ADMIN_PORT=4110 PUBLIC_PORT=8110 PRIVATE_PORT=8111 bin/example-service & pids+=($!)

cat <<'MSG'

etcd on 127.0.0.1:2379; example-service on :8010 and :8110, both registered.
Try:
  curl localhost:8010/call/example/hello/you     # repeat: alternates between the two instances
  curl localhost:8011/readyz
  bin/svcctl ls                                  # registered instances (ETCD_ENDPOINTS=127.0.0.1:2379)
Ctrl-C stops everything.
MSG
wait
