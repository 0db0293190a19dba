#!/usr/bin/env bash
# The local demo: pretrains V-JEPA through the services on real video and shows that the encoder
# learned something a random one does not have.
#
#  1. setup (Debian packages, the Debian test clips) and the build, when needed;
#  2. the motion dataset (scripts/make_motion_dataset.py, cached): 8 classes that differ only in
#     how an object moves (time-reversal pairs), pretrain / probe-train / probe-test splits that
#     share no clip;
#  3. deploy/local/cluster up: a coordinator, a dataworker and a trainer on 127.0.0.1;
#  4. vjepactl submit examples/jobs/motion.yaml (with checkpoint.initial: the step-0 weights of the
#     same seed are kept), watched to SUCCEEDED;
#  5. vjepactl checkpoints pull of the final and of the step-0 checkpoint;
#  6. two probe jobs (examples/jobs/motion-probe.yaml, pooling both: the attentive probe and the
#     average-pooling baseline on the same cached features, identical settings), one on each
#     pulled file, watched to SUCCEEDED;
#  7. the table of top-1 accuracies on probe-test, rows `pretrained` and `random`, as the last
#     output. Everything it started is stopped on exit.
#
# Environment (the defaults are the demo; bench/probe/margin.sh runs a smaller version):
#   VJEPA_DEMO_DIR          cluster files, logs, checkpoints, results.jsonl (one line per probe
#                           job) (default: a temp dir)
#   VJEPA_DEMO_DATA         the dataset folder (default ~/.cache/vjepa-train/motion-<data seed>)
#   VJEPA_DEMO_DATA_SEED    seed of the dataset (default 0)
#   VJEPA_DEMO_DATA_ARGS    extra arguments of make_motion_dataset.py (e.g. "--pretrain 32")
#   VJEPA_DEMO_SEED         pretraining seed (default 1)
#   VJEPA_DEMO_PROBE_SEEDS  probe seeds, comma-separated; each gives a pair of probe jobs and the
#                           table shows their mean (default 0)
#   VJEPA_DEMO_SET          extra `--set` overrides of the pretraining job, space-separated
#   VJEPA_DEMO_PROBE_SET    extra `--set` overrides of the probe jobs, space-separated
#   VJEPA_DEMO_SKIP_SETUP   1: do not run scripts/setup.sh and the build (tests, once built)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$here"
start=$(date +%s)

step() { printf '\n\033[1m== [%s] %s\033[0m\n' "$(elapsed)" "$*"; }
elapsed() {
  local s=$(($(date +%s) - start))
  printf '%d:%02d' $((s / 60)) $((s % 60))
}

if [[ "${VJEPA_DEMO_SKIP_SETUP:-0}" != 1 ]]; then
  step "setup (Debian packages, test videos)"
  bash scripts/setup.sh
  step "build the coordinator, vjepactl, the dataworker and the trainer"
  bash scripts/build.sh vjepa-coordinator vjepactl vjepa-dataworker vjepa-trainer
fi
ctl=build/bin/vjepactl

run="${VJEPA_DEMO_DIR:-$(mktemp -d /tmp/vjepa-demo.XXXXXX)}"
mkdir -p "$run"
run="$(cd "$run" && pwd)"
data_seed="${VJEPA_DEMO_DATA_SEED:-0}"
data="${VJEPA_DEMO_DATA:-$HOME/.cache/vjepa-train/motion-$data_seed}"
seed="${VJEPA_DEMO_SEED:-1}"
IFS=, read -r -a probe_seeds <<< "${VJEPA_DEMO_PROBE_SEEDS:-0}"
read -r -a pretrain_set <<< "${VJEPA_DEMO_SET:-}"
read -r -a probe_set <<< "${VJEPA_DEMO_PROBE_SET:-}"

step "the motion dataset in $data"
# shellcheck disable=SC2086
if [[ -f "$data/dataset.json" ]]; then
  echo "already made ($(wc -l < "$data/pretrain.csv") pretrain, $(wc -l < "$data/probe_train.csv")" \
    "probe-train, $(wc -l < "$data/probe_test.csv") probe-test videos)"
else
  /usr/bin/python3 scripts/make_motion_dataset.py --out "$data" --seed "$data_seed" \
    ${VJEPA_DEMO_DATA_ARGS:-}
fi

step "deploy/local/cluster up: a coordinator, 1 dataworker, 1 trainer (logs in $run/cluster/logs)"
cluster="$run/cluster"
stop_all() { deploy/local/cluster down --dir "$cluster" > /dev/null 2>&1 || true; }
trap stop_all EXIT
trap 'exit 1' TERM INT HUP
export $(deploy/local/cluster up --dir "$cluster" --dataworkers 1 --trainers 1 \
  --data_root "$data" --trainer_flag=--log_every=50 --dataworker_flag=--threads=1)
echo "VJEPA_COORDINATOR=$VJEPA_COORDINATOR"

# Submits a job and prints its id.
submit() {
  "$ctl" submit -o json "$@" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -n1
}
# Watches a job to its end; fails unless it SUCCEEDED.
watch_to_success() {
  "$ctl" watch "$1" || true
  local state
  state=$("$ctl" describe job "$1" -o json | sed -n 's/.*"state": *"\([A-Z]*\)".*/\1/p' | head -n1)
  if [[ "$state" != SUCCEEDED ]]; then
    echo "job $1 ended $state; see $cluster/logs" >&2
    "$ctl" describe job "$1" >&2 || true
    exit 1
  fi
}

step "vjepactl submit -f examples/jobs/motion.yaml (seed $seed)"
pretrain=$(submit -f examples/jobs/motion.yaml --set seed="$seed" \
  --set dataset.manifest="$data/pretrain.csv" --set dataset.root="$data" \
  ${pretrain_set[@]+"${pretrain_set[@]/#/--set=}"})
echo "submitted pretraining job $pretrain"
step "vjepactl watch $pretrain"
watch_to_success "$pretrain"
"$ctl" describe job "$pretrain" | sed -n '/^Runtime:/,/^Spec:/p' | sed '$d'

step "vjepactl checkpoints pull: the final and the step-0 (initial) checkpoint of $pretrain"
"$ctl" checkpoints pull "$pretrain" --latest -o "$run/pretrained.safetensors"
"$ctl" checkpoints pull "$pretrain" --step 0 -o "$run/random.safetensors"

: > "$run/probes.tsv"
for probe_seed in "${probe_seeds[@]}"; do
  for encoder in pretrained random; do
    step "probe of the $encoder encoder (probe seed $probe_seed): attentive and average pooling"
    id=$(submit -f examples/jobs/motion-probe.yaml --set name="probe-$encoder" \
      --set seed="$probe_seed" --set probe.checkpoint="$run/$encoder.safetensors" \
      --set dataset.manifest="$data/probe_train.csv" --set dataset.root="$data" \
      --set probe.val_manifest="$data/probe_test.csv" \
      ${pretrain_set[@]+"${pretrain_set[@]/#/--set=}"} \
      ${probe_set[@]+"${probe_set[@]/#/--set=}"})
    echo "submitted probe job $id"
    watch_to_success "$id"
    "$ctl" describe job "$id" | grep -E '^  (Probed|Top-1|    per class)' || true
    printf '%s\t%s\t%s\n' "$encoder" "$probe_seed" "$id" >> "$run/probes.tsv"
    "$ctl" describe job "$id" -o json > "$run/probe-$encoder-$probe_seed.json"
  done
done

step "done in $(elapsed); files in $run; stopping the cluster"
stop_all
trap - EXIT
# The results (one line per probe job) and the table, last.
/usr/bin/python3 - "$run" "$seed" <<'EOF'
import json, statistics, sys
run, seed = sys.argv[1], sys.argv[2]
rows = {}
out = open(f"{run}/results.jsonl", "w")
for line in open(f"{run}/probes.tsv"):
    encoder, probe_seed, job = line.split()
    rt = json.load(open(f"{run}/probe-{encoder}-{probe_seed}.json"))["runtime"]
    top1 = {r["pooling"]: r["top1"] for r in rt["probe_results"]}
    rec = {"encoder": encoder, "pretrain_seed": int(seed), "probe_seed": int(probe_seed),
           "job": job, "attentive": top1["attentive"], "average": top1["average"],
           "samples": rt["probe_results"][0]["samples"]}
    out.write(json.dumps(rec) + "\n")
    rows.setdefault(encoder, []).append(rec)
out.close()
n = len(rows["pretrained"])
print(f"top-1 on probe-test ({rows['pretrained'][0]['samples']} videos, 8 classes, chance 0.125;"
      f" pretraining seed {seed}, {'mean of ' + str(n) + ' probe seeds' if n > 1 else 'probe seed ' + str(rows['pretrained'][0]['probe_seed'])}):")
print(f"{'':<12}{'attentive':>10}{'average':>10}")
for encoder in ("pretrained", "random"):
    a = statistics.mean(r["attentive"] for r in rows[encoder])
    v = statistics.mean(r["average"] for r in rows[encoder])
    print(f"{encoder:<12}{a:>10.3f}{v:>10.3f}")
EOF
