#!/usr/bin/env bash
# Probe jobs through the real services (deploy/local/cluster, a tiny motion dataset):
#  - a probe of a running pretrain job's id waits (PENDING, "waiting for the latest checkpoint")
#    and then probes its final checkpoint; `pooling: both` reports an attentive and an average
#    result on every validation sample (per-class counts add up), shown by `describe`;
#  - `probe.checkpoint_step: 0` probes the initial weights kept by `checkpoint.initial`, and a
#    probe of the same weights pulled to a file gives the same top-1 (same features, same seed);
#  - a step the job never wrote fails the probe with the reason;
#  - the coordinator exports vjepa_coordinator_job_probe_top1 and the collapse indicator was
#    reported by the pretraining job.
#   VJEPA_BIN_DIR     the binaries (default: <repo>/build/bin)
#   VJEPA_SOURCE_DIR  the repository (default: this script's repository)
set -euo pipefail
src="${VJEPA_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${VJEPA_BIN_DIR:-$src/build/bin}"
cluster="$src/deploy/local/cluster"
ctl="$bin/vjepactl"
dir="$(mktemp -d "${TMPDIR:-/tmp}/vjepa-probe-test.XXXXXX")"
passed=0
test_name=probe_process_test
cluster_dir="$dir/cluster"
# shellcheck source=tests/cluster_test_lib.sh
source "$src/tests/cluster_test_lib.sh"

# JSON field of `vjepactl describe job ID -o json`, read with python3 (a dotted path).
field() {
  "$ctl" describe job "$1" -o json | /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if not isinstance(v, (dict, list)) else json.dumps(v))' "$2"
}
submit() { "$ctl" submit -o json "$@" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' | head -n1; }
# Waits up to 300 s for job $1 to end; prints its final state.
wait_end() {
  local i state
  for ((i = 0; i < 600; i++)); do
    state="$(field "$1" state)"
    case "$state" in SUCCEEDED | FAILED | CANCELLED) echo "$state"; return 0 ;; esac
    sleep 0.5
  done
  fail "job $1 did not end in 300 s (state $state)"
}

log "a tiny motion dataset"
/usr/bin/python3 "$src/scripts/make_motion_dataset.py" --out "$dir/data" --pretrain 2 \
  --probe-train 2 --probe-test 2 --jobs 2 > "$dir/data.log" 2>&1 ||
  { tail -n 20 "$dir/data.log" >&2; fail "make_motion_dataset.py failed"; }

log "cluster up"
export $("$cluster" up --dir "$cluster_dir" --bin "$bin" --dataworkers 1 --trainers 1 \
  --data_root "$dir/data")

model=(--set model.frames=4 --set model.crop=64 --set model.embed_dim=32 --set model.depth=1
  --set model.heads=2 --set model.predictor.depth=1 --set model.predictor.width=32
  --set model.predictor.heads=2)
pretrain=$(submit -f "$src/examples/jobs/motion.yaml" "${model[@]}" --set optim.steps=6 \
  --set optim.batch_size=4 --set checkpoint.every_steps=3 \
  --set dataset.manifest="$dir/data/pretrain.csv" --set dataset.root="$dir/data")
[[ -n "$pretrain" ]] || fail "the pretrain job was not submitted"
probe_args=(-f "$src/examples/jobs/motion-probe.yaml" "${model[@]}" --set probe.epochs=3
  --set dataset.manifest="$dir/data/probe_train.csv" --set dataset.root="$dir/data"
  --set probe.val_manifest="$dir/data/probe_test.csv")
latest=$(submit "${probe_args[@]}" --set probe.checkpoint="$pretrain")
state="$(field "$latest" state)"
phase="$(field "$latest" runtime.phase)"
[[ "$state" == PENDING ]] || fail "a probe of running job $pretrain is $state, not PENDING"
initial=$(submit "${probe_args[@]}" --set probe.checkpoint="$pretrain" \
  --set probe.checkpoint_step=0 --set probe.pooling=average --set seed=7)
missing=$(submit "${probe_args[@]}" --set probe.checkpoint="$pretrain" \
  --set probe.checkpoint_step=5)

[[ "$(wait_end "$pretrain")" == SUCCEEDED ]] || fail "pretrain job $pretrain did not succeed"
std="$(field "$pretrain" runtime.target_feature_std)"
/usr/bin/python3 -c "import sys; sys.exit(0 if $std > 0 else 1)" ||
  fail "no collapse indicator reported (target_feature_std $std)"
[[ "$phase" == *"waiting for the latest checkpoint of job $pretrain"* || "$(field "$latest" \
  state)" != PENDING ]] || fail "phase of the waiting probe: $phase"

[[ "$(wait_end "$latest")" == SUCCEEDED ]] || fail "probe $latest did not succeed"
[[ "$(field "$latest" runtime.probe_checkpoint)" == "$pretrain/6" ]] ||
  fail "probe $latest probed $(field "$latest" runtime.probe_checkpoint), not $pretrain/6"
"$ctl" describe job "$latest" -o json | /usr/bin/python3 -c '
import json, sys
rt = json.load(sys.stdin)["runtime"]
res = rt["probe_results"]
assert [r["pooling"] for r in res] == ["attentive", "average"], res
for r in res:
    assert r["evaluated_on"] == "val" and r["samples"] == 16, r
    assert sum(c["samples"] for c in r["per_class"]) == 16, r
    assert len(r["per_class"]) == 8 and 0 <= r["top1"] <= 1, r
assert rt["ledger"]["total"] == 8 and rt["ledger"]["committed"] == 8, rt  # 16/4 + 16/4
' || fail "results of $latest: $("$ctl" describe job "$latest" -o json)"
"$ctl" describe job "$latest" | grep -q '^  Top-1 attentive: ' || fail "describe shows no top-1"

[[ "$(wait_end "$initial")" == SUCCEEDED ]] || fail "probe $initial did not succeed"
[[ "$(field "$initial" runtime.probe_checkpoint)" == "$pretrain/0" ]] || fail "not step 0"
[[ "$(wait_end "$missing")" == FAILED ]] || fail "probe of a missing step did not fail"
[[ "$(field "$missing" message)" == *"no checkpoint of step 5"* ]] ||
  fail "reason: $(field "$missing" message)"

log "the same initial weights pulled to a file"
"$ctl" checkpoints pull "$pretrain" --step 0 -o "$dir/initial.safetensors" 2> /dev/null
by_path=$(submit "${probe_args[@]}" --set probe.checkpoint="$dir/initial.safetensors" \
  --set probe.pooling=average --set seed=7)
[[ "$(wait_end "$by_path")" == SUCCEEDED ]] || fail "probe of a file $by_path did not succeed"
a="$(field "$initial" runtime.probe_results.0.top1)"
b="$(field "$by_path" runtime.probe_results.0.top1)"
[[ "$a" == "$b" ]] || fail "top-1 of the step-0 checkpoint by job id ($a) and by file ($b) differ"

port="$(cat "$cluster_dir/coordinator-0.metrics_port")"
curl -fsS "http://127.0.0.1:$port/metrics" |
  grep -q "vjepa_coordinator_job_probe_top1{.*job=\"$latest\"" ||
  fail "no vjepa_coordinator_job_probe_top1 for $latest"

passed=1
log "PASS"
