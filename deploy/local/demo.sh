#!/usr/bin/env bash
# The local demo: installs what it needs, builds, starts a coordinator on 127.0.0.1 with its
# SQLite store in a scratch directory, submits examples/jobs/micro.yaml with vjepactl and shows
# the job with `get` and `describe`; checks the Debian test clips with `vjepa-dataworker check`
# and starts a dataworker that registers with the coordinator. Stops everything on exit.
#   VJEPA_DEMO_DIR  where the demo's data dir, tokens and logs go (default: a new temp dir)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$here"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "setup (Debian packages, test videos)"
bash scripts/setup.sh
step "build vjepa-coordinator, vjepactl and vjepa-dataworker"
bash scripts/build.sh vjepa-coordinator vjepactl vjepa-dataworker

run="${VJEPA_DEMO_DIR:-$(mktemp -d /tmp/vjepa-demo.XXXXXX)}"
mkdir -p "$run"
token="demo-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
worker_token="worker-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s demo admin\n%s demo-worker worker\n' "$token" "$worker_token" > "$run/tokens"
printf '%s\n' "$worker_token" > "$run/worker.token"
chmod 600 "$run/worker.token"
chmod 600 "$run/tokens"

step "start vjepa-coordinator (data dir $run/data)"
rm -f "$run/port"
build/bin/vjepa-coordinator --listen=127.0.0.1:0 --port_file="$run/port" \
  --data_dir="$run/data" --auth_tokens="$run/tokens" --metrics_listen=127.0.0.1:0 \
  --metrics_port_file="$run/metrics_port" > "$run/coordinator.log" 2>&1 &
coordinator=$!
dataworker=""
stop_all() {
  [[ -n "$dataworker" ]] && kill "$dataworker" 2>/dev/null && wait "$dataworker" 2>/dev/null
  kill $coordinator 2>/dev/null; wait $coordinator 2>/dev/null || true
}
trap stop_all EXIT
for _ in $(seq 1 300); do
  [[ -s "$run/port" ]] && break
  kill -0 $coordinator 2>/dev/null || { cat "$run/coordinator.log"; exit 1; }
  sleep 0.1
done
export VJEPA_COORDINATOR="127.0.0.1:$(cat "$run/port")" VJEPA_TOKEN="$token"
echo "coordinator on $VJEPA_COORDINATOR, metrics on http://127.0.0.1:$(cat "$run/metrics_port")/metrics"

step "vjepactl submit -f examples/jobs/micro.yaml"
id=$(build/bin/vjepactl submit -f examples/jobs/micro.yaml -o json | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -n1)
echo "submitted job $id"
step "vjepactl get jobs"
build/bin/vjepactl get jobs
step "vjepactl describe job $id"
build/bin/vjepactl describe job "$id"
videos="$HOME/.cache/vjepa-train/videos"
step "vjepa-dataworker check: the Debian test clips (three are bad on purpose)"
: > "$run/videos.csv"
for f in "$videos"/*--*; do printf '%s 0\n' "$(basename "$f")" >> "$run/videos.csv"; done
if build/bin/vjepa-dataworker check --manifest="$run/videos.csv" --data_root="$videos,$run" \
    --root="$videos"; then
  echo "every file is usable"
else
  echo "(exit code 1: the files above marked bad would be quarantined and replaced in batches)"
fi

step "start vjepa-dataworker (registers with the coordinator)"
rm -f "$run/dataworker.port"
build/bin/vjepa-dataworker --coordinator="$VJEPA_COORDINATOR" --token_file="$run/worker.token" \
  --auth_tokens="$run/tokens" --data_root="$videos,$run" --listen=127.0.0.1:0 \
  --port_file="$run/dataworker.port" --name=demo-dataworker --threads=1 \
  > "$run/dataworker.log" 2>&1 &
dataworker=$!
for _ in $(seq 1 300); do
  [[ -s "$run/dataworker.port" ]] && break
  kill -0 $dataworker 2>/dev/null || { cat "$run/dataworker.log"; exit 1; }
  sleep 0.1
done
echo "dataworker serving StreamBatches on 127.0.0.1:$(cat "$run/dataworker.port")"
for _ in $(seq 1 100); do
  build/bin/vjepactl get workers -o json | grep -q demo-dataworker && break
  sleep 0.1
done
step "vjepactl get workers"
build/bin/vjepactl get workers
echo
echo "demo files in $run (logs: $run/coordinator.log, $run/dataworker.log)"
