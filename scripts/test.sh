#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs every test.
#   1. scripts/setup.sh          Debian packages and the test videos
#   2. format check              clang-format (Google style) on our sources
#   3. build/                    the full build and ctest (unit, then multi-process tests)
#   4. build-core/               the LibTorch core alone (-DVJEPA_CORE_ONLY=ON), as on a CUDA box
#      build-gpu-cpu/            bench/gpu/run.sh --cpu: the GPU benchmark script in its CPU mode
#   5. build-asan/               ASan+UBSan build of the LibTorch-free unit tests, run
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
start=$(date +%s)
stage() { echo "== $1 ($(($(date +%s) - start)) s)"; }

stage "setup"
bash scripts/setup.sh

stage "format check"
mapfile -t sources < <(git ls-files '*.cc' '*.h' 2>/dev/null || find . -name '*.cc' -o -name '*.h')
clang-format --dry-run -Werror "${sources[@]}"

stage "build"
bash scripts/build.sh

stage "core-only configure and build"
BUILD_DIR="$here/build-core" EXTRA_CMAKE_ARGS="-DVJEPA_CORE_ONLY=ON" bash scripts/build.sh

stage "bench/gpu/run.sh --cpu"
# The script a GPU machine runs, in CPU mode: its build (LibTorch linked without its CMake
# config), the correctness check and the step benchmark; a cold 2-core build needs more than the
# GPU's 5 minutes.
# Debian's python3-torch stands for a GPU machine's Python torch (linked through VJEPA_TORCH_ROOT).
PYTHON=/usr/bin/python3 CCACHE_BASEDIR="$here" CCACHE_NOHASHDIR=true \
  CCACHE_DIR="${CCACHE_DIR:-${HOME:-/root}/.cache/vjepa-train/ccache}" \
  bash bench/gpu/run.sh --cpu --budget 1500 --results "$here/build-gpu-cpu/results"

export OMP_WAIT_POLICY=PASSIVE
stage "unit tests"
(cd build && ctest --output-on-failure -L unit -j 2 --timeout 300)
stage "multi-process tests"
(cd build && ctest --output-on-failure -L integration --timeout 600)

stage "ASan+UBSan unit tests"
BUILD_DIR="$here/build-asan" EXTRA_CMAKE_ARGS="-DVJEPA_SANITIZE=ON" bash scripts/build.sh sanitized_tests
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -L sanitize -j 2 --timeout 600)

stage "all tests passed"
