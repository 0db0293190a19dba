#!/usr/bin/env bash
# A quick look at the services (about 30 s once built): installs what it needs, builds, and
# pretrains V-JEPA through the services on this machine. deploy/local/cluster starts a
# coordinator (SQLite and a checkpoint directory in a scratch directory), a dataworker and a
# trainer on 127.0.0.1; vjepactl submits the `micro` config on the Debian test clips (three are
# bad on purpose: they are quarantined and replaced),
# watches the job to SUCCEEDED, describes it (batch ledger, dataset, data wait, quarantined
# videos) and pulls its final checkpoint with its digest checked. Stops the cluster on exit.
#   VJEPA_DEMO_DIR    where the cluster's files, logs and the checkpoint go (default: a temp dir)
#   VJEPA_DEMO_STEPS  optimizer steps of the demo job (default 20)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$here"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "setup (Debian packages, test videos)"
bash scripts/setup.sh
step "build the coordinator, vjepactl, the dataworker and the trainer"
bash scripts/build.sh vjepa-coordinator vjepactl vjepa-dataworker vjepa-trainer

run="${VJEPA_DEMO_DIR:-$(mktemp -d /tmp/vjepa-demo.XXXXXX)}"
steps="${VJEPA_DEMO_STEPS:-20}"
mkdir -p "$run"
videos="$HOME/.cache/vjepa-train/videos"

step "vjepa-dataworker check: the Debian test clips (three are bad on purpose)"
: > "$run/videos.csv"
label=0
for f in "$videos"/*--*; do
  printf '%s %d\n' "$(basename "$f")" "$label" >> "$run/videos.csv"
  label=$(((label + 1) % 4))
done
if build/bin/vjepa-dataworker check --manifest="$run/videos.csv" --data_root="$videos,$run" \
    --root="$videos"; then
  echo "every file is usable"
else
  echo "(exit code 1: the files above marked bad are quarantined and replaced in batches)"
fi

step "deploy/local/cluster up: a coordinator, 1 dataworker, 1 trainer (logs in $run/cluster/logs)"
cluster="$run/cluster"
stop_all() { deploy/local/cluster down --dir "$cluster" >/dev/null 2>&1 || true; }
trap stop_all EXIT
export $(deploy/local/cluster up --dir "$cluster" --dataworkers 1 --trainers 1 \
  --data_root "$videos,$run" --trainer_flag=--log_every=5)
echo "VJEPA_COORDINATOR=$VJEPA_COORDINATOR"
build/bin/vjepactl get workers

step "vjepactl submit -f examples/jobs/micro.yaml ($steps steps on the Debian clips)"
id=$(build/bin/vjepactl submit -f examples/jobs/micro.yaml -o json \
  --set optim.steps="$steps" --set checkpoint.every_steps=10 \
  --set dataset.manifest="$run/videos.csv" --set dataset.root="$videos" |
  sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -n1)
echo "submitted job $id"

step "vjepactl watch $id (until it ends)"
build/bin/vjepactl watch "$id" || true

step "vjepactl describe job $id"
build/bin/vjepactl describe job "$id"

step "vjepactl checkpoints list / pull --latest"
build/bin/vjepactl checkpoints list "$id"
build/bin/vjepactl checkpoints pull "$id" --latest -o "$run/final.safetensors"
ls -l "$run/final.safetensors"
state=$(build/bin/vjepactl describe job "$id" -o json | sed -n 's/.*"state": *"\([A-Z]*\)".*/\1/p' | head -n1)
echo
echo "job $id: $state; files in $run (cluster logs: $cluster/logs)"
[[ "$state" == "SUCCEEDED" ]]
