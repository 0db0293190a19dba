#!/usr/bin/env bash
# Configures and builds vjepa-train into build/ (binaries in build/bin/, tests in build/tests/).
#   scripts/build.sh                 the full build
#   BUILD_DIR=dir EXTRA_CMAKE_ARGS="-DVJEPA_SANITIZE=ON" scripts/build.sh [targets...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$here/build}"
# ccache hits across clones: paths under the repo root are hashed relative to it.
export CCACHE_BASEDIR="$here"
# With -g ccache hashes the working directory too; the full and core-only build dirs (and CI clones)
# share objects only without that.
export CCACHE_NOHASHDIR=true
export CCACHE_DIR="${CCACHE_DIR:-${HOME:-/root}/.cache/vjepa-train/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
jobs="${BUILD_JOBS:-$(nproc)}"
# shellcheck disable=SC2086
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  ${EXTRA_CMAKE_ARGS:-} >/dev/null
ninja -C "$build" -j "$jobs" "$@"
