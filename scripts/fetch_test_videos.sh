#!/usr/bin/env bash
# Fetches the test videos of tests/data/debian-videos.tsv out of Debian packages
# (apt-get download, no install) into a cache outside the clone, checking each SHA-256.
#   VJEPA_TEST_VIDEOS  cache folder (default: ~/.cache/vjepa-train/videos)
# Prints the cache folder on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
list="$here/tests/data/debian-videos.tsv"
cache="${VJEPA_TEST_VIDEOS:-${HOME:-/root}/.cache/vjepa-train/videos}"
mkdir -p "$cache/debs"

have=0; fetched=0
while IFS=$'\t' read -r pkg path sha note; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  out="$cache/$pkg--$(basename "$path")"
  if [[ -f "$out" ]] && echo "$sha  $out" | sha256sum -c --status; then
    have=$((have + 1)); continue
  fi
  deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
  if [[ -z "$deb" ]]; then
    (cd "$cache/debs" && apt-get download -qq "$pkg" >/dev/null 2>&1) || {
      apt-get update -qq && (cd "$cache/debs" && apt-get download -qq "$pkg" >/dev/null)
    }
    deb=$(ls "$cache/debs/${pkg}_"*.deb | head -n1)
  fi
  dpkg-deb --fsys-tarfile "$deb" | tar -xO ".$path" > "$out.tmp"
  if ! echo "$sha  $out.tmp" | sha256sum -c --status; then
    echo "fetch_test_videos: $pkg:$path: SHA-256 mismatch (want $sha)" >&2
    rm -f "$out.tmp"; exit 1
  fi
  mv "$out.tmp" "$out"; fetched=$((fetched + 1))
done < "$list"
# The packages are only needed to extract from: drop them once everything is in place.
rm -f "$cache/debs/"*.deb
echo "fetch_test_videos: $have cached, $fetched fetched into $cache" >&2
echo "$cache"
