#!/usr/bin/env bash
# Checks docker/*.Dockerfile without a Docker engine, and `vjepactl health`:
#   1. lint: every Dockerfile passes npm's dockerfile-utils (installed by docker/lint/install.sh)
#   2. context: every path a COPY names exists in the repository root (the build context) and is
#      not excluded by .dockerignore; CMake configures from exactly those paths, and the targets
#      the build stage passes to scripts/build.sh are targets of that configuration
#   3. binaries: every binary the runtime stage copies from the build stage, runs (ENTRYPOINT) or
#      health-checks with (HEALTHCHECK) is built by that stage's scripts/build.sh call and exists
#      in the bin dir of a full build
#   4. runtime packages (the Debian images): every package exists in bookworm (apt-cache show),
#      and every shared library `ldd BIN` lists is owned (dpkg -S) by a package that apt would
#      install for the runtime stage's package list (a dry run against an empty package database)
#   5. vjepactl health: 0 against a real coordinator (gRPC and --http on its /metrics), 1 for an
#      unknown service and for a closed port
# Uses only 127.0.0.1, stops the processes it starts, installs nothing. Every wait is bounded.
#   tests/docker_test.sh    (VJEPA_BIN_DIR: the binaries, default build/bin)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bin="${VJEPA_BIN_DIR:-$here/build/bin}"
lint="${VJEPA_NPM_CACHE:-${HOME:-/root}/.cache/vjepa-train/npm}/docker-lint/node_modules/.bin/dockerfile-utils"
tmp="$(mktemp -d)"
pids=()
cleanup() {
  local p
  for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2> /dev/null || true; done
  for p in ${pids[@]+"${pids[@]}"}; do wait "$p" 2> /dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() { echo "ok: $*"; }

dockerfiles=(docker/*.Dockerfile)
((${#dockerfiles[@]} >= 4)) || fail "expected the four Dockerfiles in docker/, found ${dockerfiles[*]}"

# The instructions of a Dockerfile, one per line: continuations joined, comments dropped.
instructions() {
  sed -e '/^[[:space:]]*#/d' "$1" | sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' | sed -e '/^[[:space:]]*$/d'
}
# The instructions of the last stage (the runtime image).
runtime_stage() { instructions "$1" | awk 'toupper($1) == "FROM" { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }'; }
# The instructions of the stage named "build".
build_stage() {
  instructions "$1" | awk 'toupper($1) == "FROM" { inside = (tolower($0) ~ / as build$/) } inside'
}
# The strings of a JSON exec form such as ["a", "b"], one per line.
exec_form() { grep -o '"[^"]*"' <<< "$1" | tr -d '"'; }

# ---- 1. lint
if [[ ! -x "$lint" ]]; then
  fail "the Dockerfile linter is missing: run docker/lint/install.sh (npm ci of dockerfile-utils)"
else
  for f in "${dockerfiles[@]}"; do
    if out="$(timeout 60 "$lint" lint "$f" 2>&1)" && [[ -z "$out" ]]; then
      pass "lint $f"
    else
      fail "lint $f:"$'\n'"$out"
    fi
  done
fi

# ---- 2. the build context
# .dockerignore patterns of the top level (what this repository uses): a COPY source matching one
# would be missing from the context.
mapfile -t ignored < <(sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' -e 's#/$##' .dockerignore)
ignored_path() {
  local path="${1%/}" pattern
  for pattern in "${ignored[@]}"; do
    # shellcheck disable=SC2053
    [[ "$path" == $pattern || "${path%%/*}" == $pattern ]] && return 0
  done
  return 1
}
declare -A context_paths=()
for f in "${dockerfiles[@]}"; do
  while read -r -a words; do
    [[ "${words[0]^^}" == COPY ]] || continue
    args=()
    for w in "${words[@]:1}"; do [[ "$w" == --* ]] || args+=("$w"); done
    [[ " ${words[*]} " == *" --from="* ]] && continue
    for src in "${args[@]:0:${#args[@]}-1}"; do
      if [[ ! -e "$src" ]]; then
        fail "$f: COPY $src: no such file or directory in the build context (the repository root)"
      elif ignored_path "$src"; then
        fail "$f: COPY $src: excluded by .dockerignore"
      else
        context_paths["${src%/}"]=1
      fi
    done
  done < <(instructions "$f")
done
pass "COPY sources exist: ${!context_paths[*]}"

# Configure from the copied paths alone, as the build stage does.
mkdir -p "$tmp/context"
for p in "${!context_paths[@]}"; do
  mkdir -p "$tmp/context/$(dirname "$p")"
  cp -r "$p" "$tmp/context/$p"
done
if timeout 300 cmake -S "$tmp/context" -B "$tmp/context-build" -G Ninja > "$tmp/configure.log" 2>&1; then
  pass "CMake configures from the COPY paths alone"
  configured=1
else
  fail "CMake does not configure from the COPY paths alone:"$'\n'"$(tail -20 "$tmp/configure.log")"
  configured=0
fi

# ---- 3. binaries
declare -A image_binaries=()  # Dockerfile -> the binaries of its runtime stage
for f in "${dockerfiles[@]}"; do
  build_line="$(build_stage "$f" | grep -E '^RUN .*scripts/build\.sh' || true)"
  read -r -a built <<< "$(sed -e 's/.*scripts\/build\.sh//' -e 's/&&.*//' <<< "$build_line")"
  if ((${#built[@]} == 0)); then
    fail "$f: the build stage runs no 'scripts/build.sh TARGET...'"
    continue
  fi
  for t in "${built[@]}"; do
    if ((configured)) && ! ninja -C "$tmp/context-build" -t query "$t" > /dev/null 2>&1; then
      fail "$f: scripts/build.sh $t: not a target of the project"
    fi
  done
  copied=()
  named=()
  while read -r -a words; do
    case "${words[0]^^}" in
      COPY)
        [[ " ${words[*]} " == *" --from=build "* ]] || continue
        args=()
        for w in "${words[@]:1}"; do [[ "$w" == --* ]] || args+=("$w"); done
        for src in "${args[@]:0:${#args[@]}-1}"; do
          [[ "$src" == */build/bin/* ]] && copied+=("$(basename "$src")")
        done
        ;;
      ENTRYPOINT) named+=("$(exec_form "${words[*]}" | head -n1)") ;;
      HEALTHCHECK) named+=("$(exec_form "${words[*]#*CMD}" | head -n1)") ;;
    esac
  done < <(runtime_stage "$f")
  for b in "${named[@]}"; do
    b="$(basename "$b")"
    [[ " ${copied[*]} " == *" $b "* ]] || fail "$f: $b is run but not copied from the build stage"
  done
  for b in "${copied[@]}"; do
    [[ " ${built[*]} " == *" $b "* ]] || fail "$f: copies $b, which its build stage does not build"
    [[ -x "$bin/$b" ]] || fail "$f: $b is not in $bin (a full scripts/build.sh builds it)"
  done
  image_binaries["$f"]="${copied[*]}"
  pass "$f: binaries ${copied[*]} are built (scripts/build.sh ${built[*]})"
done

# ---- 4. runtime packages and the libraries the binaries load (the Debian images)
: > "$tmp/empty-status"
# The names dpkg may know a library file by: Debian 12 merges /lib into /usr/lib, and dpkg knows
# only the name the package ships.
candidates() {
  local c
  for c in "$1" "$(readlink -f "$1")"; do
    echo "$c"
    [[ "$c" == /usr/lib/* ]] && echo "/lib/${c#/usr/lib/}"
    [[ "$c" == /lib/* || "$c" == /lib64/* ]] && echo "/usr$c"
  done
  return 0
}
# ldd of every binary, as "LIB PATH" lines; the owner of every path, from one dpkg -S call.
declare -A libs_of=() owner_of=()
for b in $(printf '%s\n' ${image_binaries[@]+"${image_binaries[@]}"} | sort -u); do
  [[ -x "$bin/$b" ]] || continue
  libs_of["$b"]="$(ldd "$bin/$b" | awk '$1 ~ /^linux-vdso/ { next }
    $2 == "=>" { print $1, ($3 == "not" ? "-" : $3); next } { print $1, $1 }')"
done
mapfile -t all_paths < <(for b in "${!libs_of[@]}"; do
  while read -r _ path; do [[ "$path" == - ]] || candidates "$path"; done <<< "${libs_of[$b]}"
done | sort -u)
while IFS= read -r line; do
  [[ "$line" =~ ^([^:,\ ]+)[^\ ]*:\ (/.*)$ ]] && owner_of["${BASH_REMATCH[2]}"]="${BASH_REMATCH[1]}"
done < <(dpkg -S "${all_paths[@]}" 2> /dev/null || true)
owner() {
  local c
  while read -r c; do
    if [[ -n "${owner_of[$c]:-}" ]]; then
      echo "${owner_of[$c]}"
      return 0
    fi
  done < <(candidates "$1")
  return 1
}
for f in "${dockerfiles[@]}"; do
  runtime_stage "$f" | head -n1 | grep -qi '^FROM debian:bookworm' || continue
  install_line="$(runtime_stage "$f" | grep -E 'apt-get install' || true)"
  packages=()
  read -r -a words <<< "$(sed -e 's/.*apt-get install//' -e 's/&&.*//' <<< "$install_line")"
  for w in "${words[@]}"; do [[ "$w" == -* ]] || packages+=("$w"); done
  if ((${#packages[@]} == 0)); then
    fail "$f: the runtime stage installs no packages"
    continue
  fi
  for p in "${packages[@]}"; do
    apt-cache show "$p" > /dev/null 2>&1 || fail "$f: package $p is not in the apt lists (bookworm)"
  done
  # What apt would install for that list in an image (essential packages only when depended on).
  if ! apt-get install -s --no-install-recommends -o Dir::State::status="$tmp/empty-status" \
    "${packages[@]}" > "$tmp/simulate.log" 2>&1; then
    fail "$f: apt cannot install the runtime packages:"$'\n'"$(tail -5 "$tmp/simulate.log")"
    continue
  fi
  declare -A installed=()
  while read -r _ p _; do installed["$p"]=1; done < <(grep '^Inst ' "$tmp/simulate.log")
  for b in ${image_binaries["$f"]}; do
    [[ -x "$bin/$b" ]] || continue
    missing=()
    while read -r lib path; do
      if [[ "$path" == - || -z "$path" ]]; then
        missing+=("$lib (not found here)")
      elif ! p="$(owner "$path")"; then
        missing+=("$lib ($path belongs to no package)")
      elif [[ -z "${installed[$p]:-}" ]]; then
        missing+=("$lib (package $p)")
      fi
    done <<< "${libs_of[$b]}"
    if ((${#missing[@]})); then
      fail "$f: $b needs libraries the runtime stage does not install: ${missing[*]}"
    else
      pass "$f: every library of $b comes with the runtime packages (${#installed[@]} with dependencies)"
    fi
  done
  unset installed
done

# ---- 5. vjepactl health against a real coordinator
mkdir -p "$tmp/coordinator"
printf 'docker-test-token docker-test admin\n' > "$tmp/coordinator/tokens"
chmod 600 "$tmp/coordinator/tokens"
"$bin/vjepa-coordinator" --listen=127.0.0.1:0 --port_file="$tmp/coordinator/port" \
  --data_dir="$tmp/coordinator/data" --auth_tokens="$tmp/coordinator/tokens" \
  --metrics_listen=127.0.0.1:0 --metrics_port_file="$tmp/coordinator/metrics_port" \
  > "$tmp/coordinator/log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
  [[ -s "$tmp/coordinator/port" && -s "$tmp/coordinator/metrics_port" ]] && break
  kill -0 "${pids[0]}" 2> /dev/null || break
  sleep 0.1
done
if [[ ! -s "$tmp/coordinator/port" || ! -s "$tmp/coordinator/metrics_port" ]]; then
  fail "the coordinator did not start within 20 s:"$'\n'"$(tail -20 "$tmp/coordinator/log")"
else
  port="$(cat "$tmp/coordinator/port")"
  metrics_port="$(cat "$tmp/coordinator/metrics_port")"
  # expect CODE STDOUT-PATTERN COMMAND...: exit code and first line of stdout.
  expect() {
    local code="$1" pattern="$2" rc=0 out
    shift 2
    out="$(timeout 30 "$@" 2> "$tmp/stderr")" || rc=$?
    if [[ "$rc" == "$code" && "$out" =~ $pattern ]]; then
      pass "$* -> $rc ${out:-$(head -c 200 "$tmp/stderr")}"
    else
      fail "$*: exit $rc (want $code), stdout '$out', stderr '$(head -c 300 "$tmp/stderr")'"
    fi
  }
  expect 0 '^SERVING$' "$bin/vjepactl" health --address "127.0.0.1:$port"
  expect 0 '^SERVING$' "$bin/vjepactl" health --http "127.0.0.1:$metrics_port"
  expect 1 '^$' "$bin/vjepactl" health --address "127.0.0.1:$port" --service no.such.Service
  # A closed port: the coordinator's, once it has stopped.
  kill "${pids[0]}"
  wait "${pids[0]}" 2> /dev/null || true
  pids=()
  start=$(date +%s)
  expect 1 '^$' "$bin/vjepactl" health --address "127.0.0.1:$port"
  expect 1 '^$' "$bin/vjepactl" health --http "127.0.0.1:$metrics_port"
  (($(date +%s) - start <= 10)) || fail "vjepactl health on a closed port took over 10 s"
fi

if ((failures)); then
  echo "docker_test: $failures failure(s)" >&2
  exit 1
fi
echo "docker_test: all checks passed"
