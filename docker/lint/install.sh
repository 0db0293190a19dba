#!/usr/bin/env bash
# Installs the Dockerfile linter (npm dockerfile-utils, pinned by package-lock.json) into
# ~/.cache/vjepa-train/npm/docker-lint; tests/docker_test.sh runs it from there. Idempotent:
# reinstalls only when the lock file changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${VJEPA_NPM_CACHE:-${HOME:-/root}/.cache/vjepa-train/npm}/docker-lint"
mkdir -p "$dest"
if [[ -x "$dest/node_modules/.bin/dockerfile-utils" ]] && cmp -s "$here/package-lock.json" "$dest/package-lock.json"; then
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
echo "docker-lint: installed dockerfile-utils into $dest" >&2
