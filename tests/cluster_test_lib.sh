# Shared by the shell tests that run deploy/local/cluster; sourced after setting:
#   test_name    prefix of every message
#   dir          the test's scratch directory (removed when the test passed, kept otherwise)
#   cluster_dir  the launcher's --dir (its logs are shown on failure; `down` runs on exit)
#   cluster      the launcher
# and `passed=0`, set to 1 by the test at its end. Installs the EXIT trap.

log() { printf '%s: %s\n' "$test_name" "$*" >&2; }

# Prints the reason and the end of every process log of the cluster, then exits 1.
fail() {
  log "FAIL: $*"
  local f
  for f in "$cluster_dir"/logs/*.log; do
    [[ -e "$f" ]] || continue
    printf -- '--- %s ---\n' "$f" >&2
    tail -n 15 "$f" >&2 || true
  done
  exit 1
}

cleanup() {
  "$cluster" down --dir "$cluster_dir" > /dev/null 2>&1 || true
  if ((passed)); then
    rm -rf "$dir"
  else
    log "files kept in $dir"
  fi
}
trap cleanup EXIT
trap 'exit 1' TERM INT HUP
