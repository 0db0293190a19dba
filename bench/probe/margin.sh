#!/usr/bin/env bash
# Measures how much better the pretrained encoder probes than the random-init one of the same
# seed (JSON lines), over several pretraining seeds × probe seeds, with the scaled-down settings
# of bench/probe/settings.sh (or the full demo with --demo). Each pretraining seed is
# one run of deploy/local/demo.sh with every probe seed; the margin of a (pretraining seed, probe
# seed) pair is top-1(pretrained) − top-1(random) for the same probe seed.
#
#   bench/probe/margin.sh [--demo] [--pretrain-seeds 1,2,3] [--probe-seeds 0,1,2] [--out DIR]
#
# Prints one JSON line per pair, then a summary line per pooling: mean, sample standard deviation
# and threshold = mean − 2·sd: a CI check of pretrained > random would assert the attentive
# threshold, and only when it is above 0 (docs/probing.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pretrain_seeds=1,2,3
probe_seeds=0,1,2
out=""
demo=0
while (($#)); do
  case "$1" in
    --demo) demo=1 ;;
    --pretrain-seeds) pretrain_seeds="$2"; shift ;;
    --probe-seeds) probe_seeds="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "margin.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
out="${out:-$(mktemp -d /tmp/vjepa-margin.XXXXXX)}"
mkdir -p "$out"
if ((demo)); then
  settings=()
else
  # shellcheck source=bench/probe/settings.sh
  source "$here/bench/probe/settings.sh"
  settings=("${probe_margin_env[@]}")
fi
IFS=, read -r -a seeds <<< "$pretrain_seeds"
for s in "${seeds[@]}"; do
  echo "margin.sh: pretraining seed $s (probe seeds $probe_seeds) in $out/seed-$s" >&2
  env "${settings[@]}" VJEPA_DEMO_SKIP_SETUP=1 VJEPA_DEMO_SEED="$s" \
    VJEPA_DEMO_PROBE_SEEDS="$probe_seeds" VJEPA_DEMO_DIR="$out/seed-$s" \
    bash "$here/deploy/local/demo.sh" > "$out/seed-$s.log" 2>&1 ||
    { echo "margin.sh: seed $s failed; see $out/seed-$s.log" >&2; exit 1; }
  tail -n 3 "$out/seed-$s.log" >&2
done
/usr/bin/python3 - "$out" "${seeds[@]}" <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
recs = [json.loads(l) for s in seeds for l in open(f"{out}/seed-{s}/results.jsonl")]
pairs = {}
for r in recs:
    pairs.setdefault((r["pretrain_seed"], r["probe_seed"]), {})[r["encoder"]] = r
diffs = {"attentive": [], "average": []}
for (ps, qs), d in sorted(pairs.items()):
    line = {"pretrain_seed": ps, "probe_seed": qs}
    for pooling in diffs:
        line[f"pretrained_{pooling}"] = d["pretrained"][pooling]
        line[f"random_{pooling}"] = d["random"][pooling]
        diffs[pooling].append(d["pretrained"][pooling] - d["random"][pooling])
        line[f"margin_{pooling}"] = diffs[pooling][-1]
    print(json.dumps(line))
for pooling, v in diffs.items():
    mean = statistics.mean(v)
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    print(json.dumps({"pooling": pooling, "pairs": len(v), "margin_mean": round(mean, 4),
                      "margin_sd": round(sd, 4), "threshold": round(mean - 2 * sd, 4)}))
PY
