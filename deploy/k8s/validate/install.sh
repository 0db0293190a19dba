#!/usr/bin/env bash
# Installs the validator's npm packages (package-lock.json, `npm ci`) into a cache directory
# keyed by the lockfile, once, and prints that directory's node_modules path on stdout.
#   VJEPA_NPM_CACHE  the directory (default:
#                    ${XDG_CACHE_HOME:-~/.cache}/vjepa-train/npm/k8s-validate-<hash>)
# Run it from scripts/setup.sh to have the packages before the tests run offline.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
hash="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)"
cache="${VJEPA_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vjepa-train/npm/k8s-validate-$hash}"
if [[ ! -e "$cache/.installed" ]]; then
  command -v npm > /dev/null || { echo "install.sh: no npm" >&2; exit 1; }
  mkdir -p "$(dirname "$cache")"
  # Install beside the cache and move it in place, so that two runs at once do not mix.
  tmp="$(mktemp -d "$(dirname "$cache")/.k8s-validate.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  cp "$here/package.json" "$here/package-lock.json" "$tmp/"
  if ! (cd "$tmp" && timeout 600 npm ci --no-audit --no-fund > npm.log 2>&1); then
    tail -n 20 "$tmp/npm.log" >&2
    echo "install.sh: npm ci failed" >&2
    exit 1
  fi
  touch "$tmp/.installed"
  if [[ -e "$cache/.installed" ]]; then
    :  # another run finished first
  else
    rm -rf "$cache"
    mv "$tmp" "$cache" || [[ -e "$cache/.installed" ]]
  fi
fi
printf '%s\n' "$cache/node_modules"
