#!/usr/bin/env bash
# deploy/local/cluster end to end: `up` with 2 dataworkers and 0 trainers, the two stdout lines,
# the pid files, restarts after SIGKILL (a dataworker, then the coordinator: new pid, same port,
# registered again) and `down` (no process of the cluster remains).
#   VJEPA_BIN_DIR     the binaries (default: <repo>/build/bin)
#   VJEPA_SOURCE_DIR  the repository (default: this script's repository)
set -euo pipefail
src="${VJEPA_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${VJEPA_BIN_DIR:-$src/build/bin}"
cluster="$src/deploy/local/cluster"
dir="$(mktemp -d "${TMPDIR:-/tmp}/vjepa-cluster-test.XXXXXX")"
passed=0
all_pids=()

test_name=cluster_launcher_test
cluster_dir="$dir"
# shellcheck source=tests/cluster_test_lib.sh
source "$src/tests/cluster_test_lib.sh"

# A pid runs (a zombie left to an init that does not reap does not count).
running() {
  local stat
  stat="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [[ -n "$stat" && "$stat" != Z* ]]
}

# Polls COMMAND every 0.2 s for up to SECONDS; returns 1 when it never succeeded.
wait_for() {
  local seconds="$1" i
  shift
  for ((i = 0; i < seconds * 5; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}

# FIELD of worker NAME (its newest incarnation) in `vjepactl get workers -o json` (admin token),
# empty when absent.
worker_field() {
  VJEPA_COORDINATOR="$coordinator" VJEPA_TOKEN="$(cat "$dir/admin.token")" \
    "$bin/vjepactl" get workers -o json --timeout 5 2>/dev/null |
    python3 -c '
import json, sys
name, field = sys.argv[1], sys.argv[2]
mine = [w for w in json.load(sys.stdin) if w.get("name") == name]
if mine:
    print(max(mine, key=lambda w: int(w.get("incarnation", 0))).get(field, ""))
' "$1" "$2" || true
}

is_alive_worker() { [[ "$(worker_field "$1" state)" == ALIVE ]]; }

# True once NAME's pid file names a running process other than OLD_PID.
restarted() {
  local name="$1" old="$2" pid
  pid="$(cat "$dir/$name.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ && "$pid" != "$old" ]] && running "$pid"
}

# True once worker NAME is ALIVE with an incarnation other than OLD.
registered_again() {
  local name="$1" old="$2" incarnation
  incarnation="$(worker_field "$name" incarnation)"
  [[ -n "$incarnation" && "$incarnation" != "$old" ]] && is_alive_worker "$name"
}

# True once worker NAME is ALIVE with a heartbeat later than TIME (RFC 3339, UTC, seconds).
heartbeat_after() {
  local last
  last="$(worker_field "$1" last_heartbeat)"
  [[ -n "$last" && "$last" > "$2" ]] && is_alive_worker "$1"
}

[[ -x "$cluster" ]] || fail "$cluster is not executable"
for b in vjepa-coordinator vjepa-dataworker vjepactl; do
  [[ -x "$bin/$b" ]] || fail "$bin/$b is missing (build it first)"
done

log "bad input is refused with exit code 2"
rc=0
"$cluster" up --dataworkers 1 --trainers 0 > /dev/null 2>&1 || rc=$?
((rc == 2)) || fail "up without --dir: exit code $rc, want 2"
rc=0
"$cluster" up --dir "$dir" --dataworkers 1 --trainers 0 --frobnicate > /dev/null 2>&1 || rc=$?
((rc == 2)) || fail "up with an unknown option: exit code $rc, want 2"
rc=0
"$cluster" down > /dev/null 2>&1 || rc=$?
((rc == 2)) || fail "down without --dir: exit code $rc, want 2"
"$cluster" --help > /dev/null || fail "--help failed"
"$cluster" up --help > /dev/null || fail "up --help failed"
"$cluster" down --help > /dev/null || fail "down --help failed"

log "up --dir $dir --dataworkers 2 --trainers 0"
out="$("$cluster" up --dir "$dir" --dataworkers 2 --trainers 0 --bin "$bin" --timeout 60)" ||
  fail "up failed"
[[ "$(printf '%s\n' "$out" | wc -l)" -eq 2 ]] || fail "up printed not exactly two lines: $out"
[[ "$(sed -n 1p <<< "$out")" =~ ^VJEPA_COORDINATOR=127\.0\.0\.1:[0-9]+$ ]] ||
  fail "first line is not VJEPA_COORDINATOR=127.0.0.1:PORT: $out"
[[ "$(sed -n 2p <<< "$out")" =~ ^VJEPA_TOKEN=[^[:space:]]+$ ]] || fail "second line is not VJEPA_TOKEN=...: $out"
[[ "$out" == "$(cat "$dir/env")" ]] || fail "$dir/env differs from what up printed"
# The lines are plain assignments: export them (as `export $(cluster up ...)` would).
eval "$out"
export VJEPA_COORDINATOR VJEPA_TOKEN
coordinator="$VJEPA_COORDINATOR"
[[ "$VJEPA_TOKEN" == "$(cat "$dir/user.token")" ]] || fail "VJEPA_TOKEN is not the user token"
grep -q "^$VJEPA_TOKEN [^ ]* user\$" "$dir/tokens" || fail "the tokens file does not list VJEPA_TOKEN as a user"
for f in tokens admin.token worker.token; do
  [[ "$(stat -c %a "$dir/$f")" == 600 ]] || fail "$dir/$f is not mode 600"
done
"$bin/vjepactl" get jobs > /dev/null || fail "vjepactl get jobs with the printed environment failed"

for name in coordinator-0 dataworker-0 dataworker-1; do
  [[ -s "$dir/$name.pid" ]] || fail "$dir/$name.pid is missing"
  pid="$(cat "$dir/$name.pid")"
  running "$pid" || fail "$name (pid $pid) does not run"
  all_pids+=("$pid" "$(cat "$dir/supervisor/$name.pid")")
  [[ -s "$dir/$name.port" ]] || fail "$dir/$name.port is missing"
done
[[ "$(cat "$dir/coordinator-0.port")" == "${coordinator##*:}" ]] || fail "coordinator port file differs"
[[ ! -e "$dir/trainer-0.pid" ]] || fail "a trainer pid file exists with --trainers 0"
{ is_alive_worker dataworker-0 && is_alive_worker dataworker-1; } || fail "the dataworkers are not ALIVE"

log "a second up on the same dir is refused"
rc=0
err="$("$cluster" up --dir "$dir" --dataworkers 2 --trainers 0 --bin "$bin" 2>&1 > /dev/null)" || rc=$?
((rc != 0)) || fail "a second up on a running dir succeeded"
grep -q "already runs a cluster" <<< "$err" || fail "a second up did not say why: $err"

log "SIGKILL dataworker-0: it comes back with a new pid on the same port and registers again"
old_pid="$(cat "$dir/dataworker-0.pid")"
old_port="$(cat "$dir/dataworker-0.port")"
old_incarnation="$(worker_field dataworker-0 incarnation)"
[[ -n "$old_incarnation" ]] || fail "no incarnation for dataworker-0"
kill -KILL "$old_pid"
wait_for 30 restarted dataworker-0 "$old_pid" || fail "dataworker-0 did not come back"
all_pids+=("$(cat "$dir/dataworker-0.pid")")
wait_for 30 registered_again dataworker-0 "$old_incarnation" ||
  fail "dataworker-0 did not register again"
[[ "$(cat "$dir/dataworker-0.port")" == "$old_port" ]] || fail "dataworker-0 changed its port"
[[ "$(worker_field dataworker-0 advertise_address)" == "127.0.0.1:$old_port" ]] ||
  fail "dataworker-0 advertises $(worker_field dataworker-0 advertise_address), want 127.0.0.1:$old_port"

log "SIGKILL the coordinator: it comes back on the same port, the workers are ALIVE again"
old_pid="$(cat "$dir/coordinator-0.pid")"
kill -KILL "$old_pid"
wait_for 30 restarted coordinator-0 "$old_pid" || fail "the coordinator did not come back"
all_pids+=("$(cat "$dir/coordinator-0.pid")")
[[ "$(cat "$dir/coordinator-0.port")" == "${coordinator##*:}" ]] || fail "the coordinator changed its port"
wait_for 30 "$bin/vjepactl" get jobs --timeout 2 > /dev/null 2>&1 ||
  fail "the coordinator does not answer on $coordinator"
restart_time="$(date -u +%FT%TZ)"
for name in dataworker-0 dataworker-1; do
  wait_for 30 heartbeat_after "$name" "$restart_time" ||
    fail "$name sends no heartbeat to the restarted coordinator"
done

log "down stops every process of the cluster"
for name in coordinator-0 dataworker-0 dataworker-1; do all_pids+=("$(cat "$dir/$name.pid")"); done
"$cluster" down --dir "$dir" || fail "down failed"
for pid in "${all_pids[@]}"; do
  ! running "$pid" || fail "pid $pid still runs after down: $(ps -o args= -p "$pid")"
done
"$cluster" down --dir "$dir" || fail "a second down failed"
rc=0
"$cluster" status --dir "$dir" > /dev/null 2>&1 || rc=$?
((rc == 1)) || fail "status after down: exit code $rc, want 1"
passed=1
log "PASS"
