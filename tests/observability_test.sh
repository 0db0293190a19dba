#!/usr/bin/env bash
# The Prometheus rules, scrape configs and Grafana dashboards against a real Prometheus:
#   1. promtool checks deploy/prometheus/rules.yml and deploy/prometheus/prometheus.yml;
#      deploy/prometheus/servicemonitors.yaml is checked for its objects and labels;
#   2. `deploy/local/cluster up --prometheus` (1 dataworker, 1 trainer, scrape every 1 s) on six
#      clips made with ffmpeg; promtool checks the generated config; one refused call (a bad
#      token) so that the error series exist; a short nano job runs to SUCCEEDED;
#   3. after two more scrapes, every PromQL expression of deploy/grafana/*.json (panel targets and
#      the label_values() of template variables) and of rules.yml (alert and record) must be
#      accepted by /api/v1/query, and every metric selector inside it must return at least one
#      series (now, or, for the coordinator's per-job series that exist only while a job runs,
#      at some point since the cluster started: last_over_time over that window);
#   4. `down` leaves no process behind, Prometheus included.
# Needs: prometheus and promtool (Debian package prometheus), ffmpeg, python3 (stdlib only).
#   VJEPA_BIN_DIR     the binaries (default: <repo>/build/bin)
#   VJEPA_SOURCE_DIR  the repository (default: this script's repository)
set -euo pipefail
src="${VJEPA_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${VJEPA_BIN_DIR:-$src/build/bin}"
cluster="$src/deploy/local/cluster"
dir="$(mktemp -d "${TMPDIR:-/tmp}/vjepa-observability-test.XXXXXX")"
passed=0

test_name=observability_test
cluster_dir="$dir/cluster"
# shellcheck source=tests/cluster_test_lib.sh
source "$src/tests/cluster_test_lib.sh"

for tool in prometheus promtool ffmpeg python3; do
  command -v "$tool" > /dev/null || fail "$tool is needed (Debian packages: prometheus, ffmpeg, python3)"
done
for b in vjepa-coordinator vjepa-dataworker vjepa-trainer vjepactl; do
  [[ -x "$bin/$b" ]] || fail "$bin/$b is not built"
done

# --- 1. Static checks ------------------------------------------------------------------------
log "promtool check rules deploy/prometheus/rules.yml"
promtool check rules "$src/deploy/prometheus/rules.yml" >&2 || fail "promtool check rules"

# The shipped scrape config. Debian's Prometheus is built without Kubernetes service discovery:
# when its promtool refuses kubernetes_sd_configs for that reason, the same file is checked with
# each kubernetes_sd_configs block replaced by a static target (relabelling, rule files and the
# rest are then still checked).
mkdir -p "$dir/shipped"
cp "$src/deploy/prometheus/prometheus.yml" "$src/deploy/prometheus/rules.yml" "$dir/shipped/"
if ! out="$(promtool check config "$dir/shipped/prometheus.yml" 2>&1)"; then
  if grep -q 'field kubernetes_sd_configs not found' <<< "$out"; then
    log "this promtool has no Kubernetes discovery; checking prometheus.yml with static targets in its place"
    python3 - "$dir/shipped/prometheus.yml" << 'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
text, n = re.subn(r"(?m)^(\s*)kubernetes_sd_configs:\n\1  - role: \w+\n",
                  lambda m: f"{m.group(1)}static_configs:\n{m.group(1)}  - targets: ['127.0.0.1:9']\n", text)
if n == 0:
    sys.exit("no kubernetes_sd_configs block found to replace")
open(path, "w").write(text)
EOF
    promtool check config "$dir/shipped/prometheus.yml" >&2 || fail "promtool check config deploy/prometheus/prometheus.yml"
  else
    printf '%s\n' "$out" >&2
    fail "promtool check config deploy/prometheus/prometheus.yml"
  fi
else
  printf '%s\n' "$out" >&2
fi

# servicemonitors.yaml: one PodMonitor or ServiceMonitor per service, selecting the pods the
# scrape config keeps, scraping the port named metrics, job label from app.kubernetes.io/name.
python3 - "$src/deploy/prometheus/servicemonitors.yaml" << 'EOF' || fail "deploy/prometheus/servicemonitors.yaml"
import re, sys
text = open(sys.argv[1]).read()
docs = [d for d in re.split(r"(?m)^---\s*$", text) if re.search(r"(?m)^kind:", d)]
seen = set()
for d in docs:
    kind = re.search(r"(?m)^kind:\s*(\S+)", d).group(1)
    assert re.search(r"(?m)^apiVersion:\s*monitoring\.coreos\.com/v1\s*$", d), "apiVersion"
    assert kind in ("PodMonitor", "ServiceMonitor"), kind
    name = re.search(r"(?m)^\s+app\.kubernetes\.io/name:\s*(\S+)", d.split("selector:")[1]).group(1)
    assert re.search(r"(?m)^\s+(- )?port:\s*metrics\s*$", d), f"{name}: port metrics"
    assert re.search(r"(?m)^\s+jobLabel:\s*app\.kubernetes\.io/name\s*$", d), f"{name}: jobLabel"
    seen.add(name)
want = {"vjepa-coordinator", "vjepa-dataworker", "vjepa-trainer"}
assert seen == want, f"services monitored: {sorted(seen)}, want {sorted(want)}"
try:
    import yaml  # optional: a full YAML parse when PyYAML is there
    list(yaml.safe_load_all(text))
except ImportError:
    pass
print("servicemonitors.yaml: %d objects for %s" % (len(docs), ", ".join(sorted(seen))), file=sys.stderr)
EOF

# prometheusrule.yaml (the operator's object) is generated from rules.yml and kept in sync.
bash "$src/deploy/prometheus/prometheusrule.sh" | cmp -s - "$src/deploy/prometheus/prometheusrule.yaml" ||
  fail "deploy/prometheus/prometheusrule.yaml is out of date: run deploy/prometheus/prometheusrule.sh"

# --- 2. The cluster, Prometheus and a short job ----------------------------------------------
log "making 6 clips with ffmpeg"
mkdir -p "$dir/data"
for i in 0 1 2 3 4 5; do
  ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc=size=64x48:rate=25 -t 2 -pix_fmt yuv420p \
    "$dir/data/v$i.mp4" || fail "ffmpeg could not make a clip"
  printf 'v%s.mp4 %s\n' "$i" "$((i % 3))" >> "$dir/data/manifest.txt"
done

log "cluster up --prometheus"
started="$(date +%s)"
timeout 200 "$cluster" up --dir "$dir/cluster" --dataworkers 1 --trainers 1 --data_root "$dir/data" \
  --bin "$bin" --timeout 120 --prometheus --prometheus_scrape_interval 1s \
  --coordinator_flag=--heartbeat_interval=200ms --dataworker_flag=--threads=1 \
  --trainer_flag=--torch_threads=1 > "$dir/env" 2> "$dir/up.err" || {
  cat "$dir/up.err" >&2
  fail "cluster up --prometheus"
}
grep -q '^cluster: prometheus: http://127.0.0.1:[0-9]*$' "$dir/up.err" || fail "up did not print the Prometheus URL"
url="$(cat "$dir/cluster/prometheus.url")"
[[ "$url" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || fail "D/prometheus.url: '$url'"
VJEPA_COORDINATOR="$(sed -n 's/^VJEPA_COORDINATOR=//p' "$dir/env")"
VJEPA_TOKEN="$(sed -n 's/^VJEPA_TOKEN=//p' "$dir/env")"
export VJEPA_COORDINATOR VJEPA_TOKEN
[[ -n "$VJEPA_COORDINATOR" && -n "$VJEPA_TOKEN" ]] || fail "up printed no VJEPA_COORDINATOR/VJEPA_TOKEN"
log "prometheus at $url, coordinator at $VJEPA_COORDINATOR"

log "promtool check config (the generated one)"
promtool check config "$dir/cluster/prometheus/prometheus.yml" >&2 || fail "promtool check config (generated)"

# One call refused for its token: the RPC error and authentication-failure series exist.
if "$bin/vjepactl" --token not-a-token --timeout 10 get jobs > /dev/null 2>&1; then
  fail "a bad token was accepted"
fi

cat > "$dir/job.yaml" << EOF
name: observability
seed: 5
model: {preset: nano}
dataset: {manifest: $dir/data/manifest.txt}
optim: {batch_size: 2, steps: 120}
checkpoint: {every_steps: 20}
resources: {trainers: 1, dataworkers: 1}
EOF
job="$("$bin/vjepactl" submit -f "$dir/job.yaml" --timeout 30 -o json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')" || fail "submit"
# Series in Prometheus for EXPR now (instant query), 0 when none or on error.
prom_count() {
  python3 -c 'import json, sys, urllib.parse, urllib.request
data = urllib.parse.urlencode({"query": "count(%s)" % sys.argv[2]}).encode()
doc = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/query", data=data, timeout=5))
print(int(float(doc["data"]["result"][0]["value"][1])) if doc["data"]["result"] else 0)' \
    "$url" "$1" 2>/dev/null || echo 0
}
# The coordinator's per-job series exist only while the job runs: wait until Prometheus has
# scraped them (and a checkpoint age), then for the end of the job.
log "job $job submitted; waiting up to 180 s for SUCCEEDED"
state="" per_job_seen=0
for ((t = 0; t < 360; t++)); do
  state="$("$bin/vjepactl" describe job "$job" -o json --timeout 10 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || true)"
  if ((!per_job_seen)) && [[ "$state" == RUNNING ]] &&
    (($(prom_count "vjepa_coordinator_ledger_batches{exported_job=\"$job\"}") > 0)) &&
    (($(prom_count "vjepa_coordinator_job_data_wait_fraction{exported_job=\"$job\"}") > 0)) &&
    (($(prom_count "vjepa_coordinator_job_checkpoint_interval_seconds{exported_job=\"$job\"} > 0") > 0)); then
    per_job_seen=1
    log "prometheus has the per-job series of $job"
  fi
  [[ "$state" == SUCCEEDED || "$state" == FAILED || "$state" == CANCELLED ]] && break
  sleep 0.5
done
[[ "$state" == SUCCEEDED ]] || fail "job $job is '$state', not SUCCEEDED"
((per_job_seen)) || fail "job $job ended before Prometheus scraped its per-job series (a longer job is needed)"
log "job $job SUCCEEDED"

# --- 3. Every expression and selector against Prometheus --------------------------------------
python3 - "$url" "$src" "$started" << 'EOF' || fail "dashboards and rules against Prometheus (above)"
import glob, json, os, re, sys, time, urllib.parse, urllib.request

url, src, started = sys.argv[1], sys.argv[2], int(sys.argv[3])


def say(*a):
    print("observability_test:", *a, file=sys.stderr)


def query(expr):
    """Instant query; returns (ok, result list or error text)."""
    data = urllib.parse.urlencode({"query": expr}).encode()
    try:
        with urllib.request.urlopen(url + "/api/v1/query", data=data, timeout=10) as r:
            doc = json.load(r)
    except urllib.error.HTTPError as e:
        doc = json.load(e)
    except Exception as e:  # noqa: BLE001 (a refused connection and the like)
        return False, str(e)
    if doc.get("status") != "success":
        return False, f'{doc.get("errorType")}: {doc.get("error")}'
    return True, doc["data"]["result"]


def wait(what, cond, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.25)
    say("FAIL: timed out waiting for", what)
    sys.exit(1)


def scalar(expr):
    ok, res = query(expr)
    return float(res[0]["value"][1]) if ok and res else None


# Every target up, and scraped twice after the job succeeded (the first scrape that sees the
# SUCCEEDED job, then one more everywhere).
wait("every target up", lambda: scalar('count(up{job=~"vjepa-.*"} == 1)') == 3.0, 30)
wait("a scrape with the job SUCCEEDED",
     lambda: (scalar('vjepa_coordinator_jobs{state="SUCCEEDED"}') or 0) >= 1, 30)
seen = time.time()
wait("two scrapes after the job", lambda: (scalar('min(timestamp(up{job=~"vjepa-.*"}))') or 0) > seen + 1.0, 30)
# The rules are evaluated every second too: one more round for the recorded series.
time.sleep(1.5)

# Expressions of the dashboards (panel targets, also inside rows; label_values() of variables).
exprs = []  # (where, expr)
for path in sorted(glob.glob(os.path.join(src, "deploy/grafana/*.json"))):
    name = os.path.basename(path)
    dash = json.load(open(path))
    if dash.get("schemaVersion", 0) < 36:
        say(f"FAIL: {name}: schemaVersion {dash.get('schemaVersion')}")
        sys.exit(1)
    variables = dash.get("templating", {}).get("list", [])
    if not any(v.get("name") == "datasource" and v.get("type") == "datasource" and v.get("query") == "prometheus"
               for v in variables):
        say(f"FAIL: {name}: no datasource template variable of type prometheus")
        sys.exit(1)
    panels = list(dash.get("panels", []))
    while panels:
        p = panels.pop(0)
        panels.extend(p.get("panels", []))
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            say(f"FAIL: {name}: panel '{p.get('title')}' has no targets")
            sys.exit(1)
        for t in p["targets"]:
            exprs.append((f"{name}: {p.get('title')} [{t.get('refId')}]", t["expr"]))
    for v in variables:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)\s*", q or "")
        if not m:
            say(f"FAIL: {name}: variable {v.get('name')}: not label_values(SELECTOR, LABEL): {q!r}")
            sys.exit(1)
        exprs.append((f"{name}: variable {v['name']}", m.group(1)))
        exprs.append((f"{name}: variable {v['name']} (label)", f"count by ({m.group(2)}) ({m.group(1)})"))


# Expressions of the rule file: `expr:` plain one-line values or folded (>- / >) blocks.
def rule_exprs(path):
    lines = open(path).read().splitlines()
    out, i, current = [], 0, None
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s*-?\s*(alert|record):\s*(\S+)", line)
        if m:
            current = m.group(2)
        m = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if m:
            indent, value = len(m.group(1)), m.group(2).strip()
            if value in (">-", ">", "|", "|-", ">+", "|+"):
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    block.append(lines[i].strip())
                    i += 1
                value = (" " if value.startswith(">") else "\n").join(b for b in block if b)
                out.append((f"rules.yml: {current}", value))
                continue
            if value[:1] in "'\"":
                value = value[1:-1]
            out.append((f"rules.yml: {current}", value))
        i += 1
    return out


rules = rule_exprs(os.path.join(src, "deploy/prometheus/rules.yml"))
if len(rules) < 6:
    say("FAIL: fewer than 6 expressions found in rules.yml")
    sys.exit(1)
exprs += rules


def substitute(expr):
    """Grafana's variables: intervals become durations, the others a regex for any value."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}", "1m", expr)
    return re.sub(r"\$\{?[a-zA-Z_]\w*\}?", ".+", expr)


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "offset", "bool", "inf", "nan", "start", "end",
            # aggregation operators, also before their `by (...)`: sum by (x) (...)
            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
            "bottomk", "topk", "quantile"}
LABEL_LIST = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def skip_string(s, i):
    q = s[i]
    i += 1
    while i < len(s) and s[i] != q:
        i += 2 if s[i] == "\\" and q != "`" else 1
    return i + 1


def skip_group(s, i, open_, close):
    """s[i] is open_: index after the matching close (strings skipped)."""
    depth = 0
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            i = skip_string(s, i)
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_} in {s!r}")


def selectors(expr):
    """The metric selectors of a PromQL expression, as text: name, name{...} or {...}."""
    out, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            i = skip_string(expr, i)
        elif c == "#":
            while i < n and expr[i] != "\n":
                i += 1
        elif c == "[":
            i = skip_group(expr, i, "[", "]")  # ranges and subqueries: durations only
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            while i < n and (expr[i].isalnum() or expr[i] in "._" or
                             (expr[i] in "+-" and expr[i - 1] in "eE" and expr[i - 2].isdigit())):
                i += 1
        elif c == "{":
            j = skip_group(expr, i, "{", "}")
            out.append(expr[i:j])
            i = j
        elif c.isalpha() or c in "_:":
            j = i
            while j < n and (expr[j].isalnum() or expr[j] in "_:"):
                j += 1
            word, k = expr[i:j], j
            while k < n and expr[k].isspace():
                k += 1
            if word.lower() in LABEL_LIST:
                i = skip_group(expr, k, "(", ")") if k < n and expr[k] == "(" else k
            elif word.lower() in KEYWORDS or (k < n and expr[k] == "("):
                i = j  # a keyword or a function: its arguments are scanned on
            else:
                if k < n and expr[k] == "{":
                    e = skip_group(expr, k, "{", "}")
                    out.append(word + expr[k:e])
                    i = e
                else:
                    out.append(word)
                    i = j
        else:
            i += 1
    return out


window = max(60, int(time.time()) - started + 30)
failures, checked, selectors_seen, only_past = [], 0, {}, set()
for where, raw in exprs:
    expr = substitute(raw)
    ok, res = query(expr)
    checked += 1
    if not ok:
        failures.append(f"{where}: does not parse: {res}\n    {expr}")
        continue
    try:
        sels = selectors(expr)
    except ValueError as e:
        failures.append(f"{where}: {e}")
        continue
    if not sels:
        failures.append(f"{where}: no metric selector found in {expr!r}")
    for sel in sels:
        if sel not in selectors_seen:
            ok, res = query(sel)
            if ok and res:
                selectors_seen[sel] = len(res)
            else:
                # Series that exist only while a job runs: the coordinator's per-job gauges
                # (training job id in exported_job) were scraped while the test's job ran.
                ok2, res2 = query(f"last_over_time({sel}[{window}s])")
                per_job = ok2 and res2 and all("exported_job" in r["metric"] for r in res2)
                selectors_seen[sel] = len(res2) if per_job else 0
                if per_job:
                    only_past.add(sel)
        if selectors_seen[sel] == 0:
            failures.append(f"{where}: selector {sel} returns no series (in {expr!r})")

say(f"{checked} expressions ({len(rules)} from rules.yml), {len(selectors_seen)} distinct selectors")
for sel in sorted(only_past):
    say(f"  present only while the job ran: {sel}")
if failures:
    for f in failures:
        say("FAIL:", f)
    sys.exit(1)
say("every expression parses and every selector returns series")
EOF

# --- 4. down ---------------------------------------------------------------------------------
prom_pid="$(cat "$dir/cluster/prometheus-0.pid")"
pids=()
for f in "$dir"/cluster/*.pid "$dir"/cluster/supervisor/*.pid; do pids+=("$(cat "$f")"); done
"$cluster" down --dir "$dir/cluster" 2> /dev/null || fail "down"
for pid in "${pids[@]}"; do
  stat="$(ps -o stat= -p "$pid" 2>/dev/null || true)"
  [[ -z "$stat" || "$stat" == Z* ]] || fail "pid $pid still runs after down"
done
log "down stopped every process (prometheus pid $prom_pid included)"
passed=1
log PASS
