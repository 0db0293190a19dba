#!/usr/bin/env bash
# The local demo: installs what it needs, builds, starts a coordinator on 127.0.0.1 with its
# SQLite store in a scratch directory, submits examples/jobs/micro.yaml with vjepactl and shows
# the job with `get` and `describe`. Stops the coordinator on exit.
#   VJEPA_DEMO_DIR  where the demo's data dir, tokens and logs go (default: a new temp dir)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$here"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "setup (Debian packages, test videos)"
bash scripts/setup.sh
step "build vjepa-coordinator and vjepactl"
bash scripts/build.sh vjepa-coordinator vjepactl

run="${VJEPA_DEMO_DIR:-$(mktemp -d /tmp/vjepa-demo.XXXXXX)}"
mkdir -p "$run"
token="demo-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s demo admin\n' "$token" > "$run/tokens"
chmod 600 "$run/tokens"

step "start vjepa-coordinator (data dir $run/data)"
rm -f "$run/port"
build/bin/vjepa-coordinator --listen=127.0.0.1:0 --port_file="$run/port" \
  --data_dir="$run/data" --auth_tokens="$run/tokens" --metrics_listen=127.0.0.1:0 \
  --metrics_port_file="$run/metrics_port" > "$run/coordinator.log" 2>&1 &
coordinator=$!
trap 'kill $coordinator 2>/dev/null; wait $coordinator 2>/dev/null || true' EXIT
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
step "vjepactl get workers"
build/bin/vjepactl get workers
echo
echo "demo files in $run (coordinator log: $run/coordinator.log)"
