#!/usr/bin/env bash
# Installs every Debian package the project needs and fetches the test videos.
# Idempotent: when everything is present it only checks and returns in seconds.
#   scripts/setup.sh            packages + test videos
#   scripts/setup.sh --no-data  packages only
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang-format git ca-certificates
  # LibTorch (CPU) and its fast BLAS; Gloo headers for c10d
  libtorch-dev libopenblas0-pthread libgloo-dev
  # RPC
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libgoogle-glog-dev libgflags-dev
  # video
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libopencv-dev ffmpeg
  # services
  prometheus-cpp-dev libsqlite3-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libssl-dev openssl
  # tests and benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev curl
  # the local cluster launcher (pgrep; setsid and taskset come with util-linux)
  procps util-linux
  # observability: Prometheus server and promtool (the local cluster's --prometheus, its tests)
  prometheus sqlite3
  # Python reads our checkpoints (interop tests)
  python3 python3-torch
  # the motion dataset generator (scripts/make_motion_dataset.py)
  python3-numpy python3-opencv
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Tools that another package may already provide: Node.js with npm (the Kubernetes manifest
# checks), and a kubectl that renders kustomizations.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
kubectl kustomize --help >/dev/null 2>&1 || missing+=(kubernetes-client)
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all ${#PACKAGES[@]} packages present" >&2
fi

# npm tools of the deployment checks (pinned by their lock files, cached under ~/.cache).
bash "$here/docker/lint/install.sh" >/dev/null
bash "$here/deploy/k8s/validate/install.sh" >/dev/null

if [[ "${1:-}" != "--no-data" ]]; then
  "$here/scripts/fetch_test_videos.sh"
fi
