#!/usr/bin/env bash
# The V-JEPA trainer step on an NVIDIA GPU, in one command of at most 5 minutes, build included.
# See --help and docs/gpu.md.
set -uo pipefail

usage() {
  cat <<'EOF'
bench/gpu/run.sh: builds the LibTorch core against the machine's Python torch and measures the
trainer step on a GPU, in at most --budget seconds (default 300) including the build.

Usage: bench/gpu/run.sh [--cpu] [--results DIR] [--build-dir DIR] [--budget SECONDS]
                        [--steps N] [--torch-root DIR]
  --cpu         CPU mode (what CI runs): the same phases on the CPU, with the micro config
  --results DIR where the JSON lines go, one file per phase as soon as it ends (default:
                build-gpu/results, or build-gpu-cpu/results with --cpu)
  --build-dir   the CMake build folder (default: build-gpu, or build-gpu-cpu with --cpu)
  --budget      seconds for the whole run (default 300)
  --steps       timed steps of the step phase (default 7)
  --torch-root  a LibTorch folder (include/, lib/) to link without its CMake config; by default
                the Python torch's share/cmake is tried first and its package folder second

Needs: python3 with torch (with CUDA, except with --cpu: then Debian's LibTorch will do), CMake,
Ninja and a C++17 compiler; no other library. Phases, each writing its JSON to DIR/<phase>.json
and appending it to DIR/results.jsonl:
  env    torch version, CUDA, the GPU, cores
  build  cmake -DVJEPA_CORE_ONLY=ON -G Ninja; ninja -j <all cores> vjepa-bench-trainer-step
  check  the micro config on the GPU in bf16 against the CPU in float32, same weights and batches:
         the losses of 3 steps agree within 3% ("pass": true)
  step   --config large (vit_large, 16x224x224, batch 24, bf16) with the bf16 matrix-product
         ceiling measured in the same process; "ratio" is the model FLOP utilisation (MFU).
         With --cpu: --config micro in float32 against the float32 ceiling.
Everything the tools print goes to DIR/run.log. Exit status 0 when every phase passed.
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mode=cuda
results=""
build=""
budget=300
steps=7
torch_root=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --cpu) mode=cpu ;;
    --results) results="${2:?--results needs a folder}"; shift ;;
    --build-dir) build="${2:?--build-dir needs a folder}"; shift ;;
    --budget) budget="${2:?--budget needs seconds}"; shift ;;
    --steps) steps="${2:?--steps needs a number}"; shift ;;
    --torch-root) torch_root="${2:?--torch-root needs a folder}"; shift ;;
    *) echo "bench/gpu/run.sh: unknown argument '$1'; see --help" >&2; exit 2 ;;
  esac
  shift
done
for n in "$budget" "$steps"; do
  case "$n" in '' | *[!0-9]*) echo "bench/gpu/run.sh: '$n' is not a whole number" >&2; exit 2 ;; esac
done
suffix=$([ "$mode" = cpu ] && echo -cpu || echo "")
results="${results:-$here/build-gpu$suffix/results}"
build="${build:-$here/build-gpu$suffix}"
mkdir -p "$results" || exit 2
results="$(cd "$results" && pwd)"
: >"$results/results.jsonl"
log_file="$results/run.log"
: >"$log_file"
start=$(date +%s)
failed=0

elapsed() { echo $(($(date +%s) - start)); }
remaining() { echo $((budget - $(elapsed))); }
say() { echo "[bench/gpu/run.sh $(elapsed) s] $*" | tee -a "$log_file" >&2; }
# emit PHASE JSON: the phase's file, the collected lines, and stdout.
emit() {
  echo "$2" >"$results/$1.json"
  echo "$2" >>"$results/results.jsonl"
  echo "$2"
}
# Runs a command with the time left (at most $1 seconds), its output into the log.
bounded() {
  local cap=$1
  shift
  local left
  left=$(remaining)
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -le 0 ]; then
    say "no time left for: $*"
    return 124
  fi
  timeout --kill-after=5 "$cap" "$@" 2>>"$log_file"
}
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\n')"; }

# --- env -------------------------------------------------------------------------------------
py="${PYTHON:-python3}"
torch_info=$("$py" - 2>>"$log_file" <<'EOF'
import json, os
try:
    import torch
except Exception as e:  # no torch: Debian's LibTorch may still do in CPU mode
    print(json.dumps({"torch": None, "error": str(e)}))
    raise SystemExit
cuda = torch.cuda.is_available()
print(json.dumps({
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "cuda_available": cuda,
    "gpu": torch.cuda.get_device_name(0) if cuda else None,
    "gpus": torch.cuda.device_count() if cuda else 0,
    "cxx11_abi": int(torch.compiled_with_cxx11_abi()),
    "package": os.path.dirname(torch.__file__),
    "cmake_prefix": torch.utils.cmake_prefix_path,
}))
EOF
)
[ -n "$torch_info" ] || torch_info='{"torch": null}'
field() { "$py" -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$torch_info" "$1" 2>/dev/null; }
torch_version=$(field torch)
cores=$(nproc)
gpus=$(field gpus)
[ -n "$gpus" ] || gpus=0
emit env "{\"phase\": \"env\", \"mode\": \"$mode\", \"torch\": $(json_str "$torch_version"), \"cuda\": $(json_str "$(field cuda)"), \"gpu\": $(json_str "$(field gpu)"), \"gpus\": $gpus, \"cores\": $cores, \"cmake\": $(json_str "$(cmake --version 2>/dev/null | head -1)"), \"ninja\": $(json_str "$(ninja --version 2>/dev/null)"), \"budget_s\": $budget}"
if [ "$mode" = cuda ] && [ "$(field cuda_available)" != "True" ]; then
  say "no CUDA: $py's torch (${torch_version:-none}) sees no GPU; use --cpu on a machine without one"
  exit 2
fi

# --- build -----------------------------------------------------------------------------------
build_start=$(elapsed)
common=(-S "$here" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVJEPA_CORE_ONLY=ON -DVJEPA_BUILD_TESTS=OFF)
prefix=$(field cmake_prefix)
package=$(field package)
attempts=()
if [ -n "$torch_root" ]; then
  attempts+=("root:$torch_root")
else
  if [ -n "$prefix" ] && [ -f "$prefix/Torch/TorchConfig.cmake" ]; then attempts+=("config:$prefix"); fi
  if [ -n "$package" ] && [ -d "$package/include" ] && [ -d "$package/lib" ]; then
    attempts+=("root:$package")
  fi
  # Debian's LibTorch (CPU mode).
  if [ "$mode" = cpu ]; then attempts+=("system:"); fi
fi
configured=""
for attempt in "${attempts[@]}"; do
  kind=${attempt%%:*}
  where=${attempt#*:}
  args=(-B "$build")
  case "$kind" in
    config) args+=(-DCMAKE_PREFIX_PATH="$where" -DVJEPA_TORCH_ROOT=) ;;
    root) args+=(-DVJEPA_TORCH_ROOT="$where" -DVJEPA_TORCH_CXX11_ABI="$(field cxx11_abi || echo 1)") ;;
    system) args+=(-DVJEPA_TORCH_ROOT=) ;;
  esac
  case "$(field torch)" in 1.* | "") ;; *) [ "$kind" = system ] || args+=(-DVJEPA_TORCH_UPSTREAM=ON) ;; esac
  # A failed configure leaves a cache that the next attempt must not inherit.
  rm -f "$build/CMakeCache.txt"
  say "configure ($kind${where:+ $where})"
  if bounded 120 cmake "${common[@]}" "${args[@]}" >>"$log_file"; then
    configured=$kind
    break
  fi
  say "configure ($kind) failed; see $log_file"
done
built=false
if [ -n "$configured" ]; then
  say "build (ninja -j $cores vjepa-bench-trainer-step)"
  if bounded $(($(remaining) - 60)) ninja -C "$build" -j "$cores" vjepa-bench-trainer-step >>"$log_file"; then
    built=true
  fi
fi
torch_line=$(grep -h "vjepa: LibTorch" "$log_file" | tail -1 | sed 's/^-- vjepa: //')
emit build "{\"phase\": \"build\", \"ok\": $built, \"torch_config\": $(json_str "${configured:-none}"), \"seconds\": $(($(elapsed) - build_start)), \"libtorch\": $(json_str "$torch_line")}"
if [ "$built" != true ]; then
  say "build failed; the end of $log_file:"
  tail -30 "$log_file" >&2
  exit 1
fi
bench="$build/bin/vjepa-bench-trainer-step"

# --- check -----------------------------------------------------------------------------------
if [ "$mode" = cuda ]; then
  check_args=(--check --device cuda --precision bfloat16)
else
  check_args=(--check --device cpu --precision bfloat16)
fi
say "check: ${check_args[*]}"
bounded 90 "$bench" "${check_args[@]}" >"$build/check.out"
rc=$?
line=$(tail -1 "$build/check.out")
[ -n "$line" ] || line="{\"config\": \"check\", \"pass\": false, \"error\": \"exit $rc; see run.log\"}"
emit check "$line"
[ "$rc" -eq 0 ] || { failed=1; say "check failed (exit $rc)"; }

# --- step ------------------------------------------------------------------------------------
if [ "$mode" = cuda ]; then
  step_args=(--config large --device cuda --precision bfloat16 --json --steps "$steps" --warmup 2)
else
  step_args=(--config micro --device cpu --json --steps 5 --warmup 1)
fi
say "step: ${step_args[*]}"
bounded "$(remaining)" "$bench" "${step_args[@]}" >"$build/step.out"
rc=$?
line=$(tail -1 "$build/step.out")
[ -n "$line" ] || line="{\"config\": \"${step_args[1]}\", \"error\": \"exit $rc; see run.log\"}"
emit step "$line"
[ "$rc" -eq 0 ] || { failed=1; say "step failed (exit $rc)"; }

mfu=$(echo "$line" | sed -n 's/.*"ratio": \([0-9.e+-]*\).*/\1/p')
say "done in $(elapsed) s: ratio (MFU against the measured matrix-product rate) ${mfu:-none}; goal 0.45 on a GPU; results in $results"
exit $failed
