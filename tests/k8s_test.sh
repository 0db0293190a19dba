#!/usr/bin/env bash
# deploy/k8s offline: renders the overlays cpu, gpu and gpu-tls with `kubectl kustomize` and
# validates every rendered object (and deploy/k8s/secrets.example.yaml and the prometheus-adapter
# ConfigMap) against the Kubernetes schemas of the npm package kubernetes-models, then checks the
# invariants in deploy/k8s/validate/validate.js (requests, limits and probes everywhere,
# runAsNonRoot, the HPA on vjepa_coordinator_dataworkers_desired, PDB for dataworkers only, GPU and
# cuda image in the gpu overlay, flags the binaries have). Then it makes sure the checks bite: a
# few broken variants of the rendered gpu overlay must each fail. No cluster and no network
# beyond `npm ci` (once, into the cache) are needed.
#   VJEPA_SOURCE_DIR  the repository (default: this script's repository)
#   VJEPA_BIN_DIR     the binaries whose --help lists the flags (default: <repo>/build/bin;
#                     without them, the flag lists in validate.js are used)
#   KUBECTL           a kubectl with `kustomize` (default: the first on PATH that has it, then
#                     /usr/bin/kubectl; Debian's kubernetes-client package provides one)
#   VJEPA_NPM_CACHE   where deploy/k8s/validate/install.sh puts the validator's npm packages
#                     (default: ~/.cache/vjepa-train/npm/k8s-validate-<hash of the lockfile>)
set -euo pipefail
src="${VJEPA_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${VJEPA_BIN_DIR:-$src/build/bin}"
k8s="$src/deploy/k8s"
work="$(mktemp -d "${TMPDIR:-/tmp}/vjepa-k8s-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log() { printf 'k8s_test: %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# --- a kubectl that renders kustomizations (kubectl >= 1.14) -------------------------------------
kubectl=""
candidates=()
[[ -n "${KUBECTL:-}" ]] && candidates+=("$KUBECTL")
while IFS= read -r k; do candidates+=("$k"); done < <(type -ap kubectl || true)
candidates+=(/usr/bin/kubectl)
for k in "${candidates[@]}"; do
  if [[ -x "$k" ]] && timeout 30 "$k" kustomize --help > /dev/null 2>&1; then kubectl="$k"; break; fi
done
[[ -n "$kubectl" ]] || fail "no kubectl with 'kustomize' (install Debian's kubernetes-client, or set KUBECTL)"
log "kubectl: $kubectl ($(timeout 30 "$kubectl" version --client 2>/dev/null | head -n 1 || true))"

# --- node and the validator's packages -----------------------------------------------------------
command -v node > /dev/null || fail "no node (install Debian's nodejs)"
command -v npm > /dev/null || fail "no npm (install Debian's npm)"
node_modules="$("$k8s/validate/install.sh")" || fail "deploy/k8s/validate/install.sh (npm ci) failed"
validate() {
  NODE_PATH="$node_modules" timeout 120 node "$k8s/validate/validate.js" "$@"
}
bin_args=()
if [[ -x "$bin/vjepa-coordinator" && -x "$bin/vjepa-dataworker" && -x "$bin/vjepa-trainer" ]]; then
  bin_args=(--bin "$bin")
else
  log "no binaries in $bin: flags are checked against the lists in validate.js"
fi

# --- render and validate -------------------------------------------------------------------------
for overlay in cpu gpu gpu-tls; do
  # Newer kubectl warns about deprecated fields (bases, patchesStrategicMerge) that kubectl 1.20
  # still needs; the warnings go to stderr.
  timeout 60 "$kubectl" kustomize "$k8s/overlays/$overlay" > "$work/$overlay.yaml" 2> "$work/$overlay.err" ||
    { cat "$work/$overlay.err" >&2; fail "kubectl kustomize overlays/$overlay failed"; }
  grep -q '^kind: StatefulSet' "$work/$overlay.yaml" || fail "overlays/$overlay rendered no StatefulSet"
  validate --profile "$overlay" --rendered "$work/$overlay.yaml" --secrets "$k8s/secrets.example.yaml" \
    --adapter "$k8s/base/prometheus-adapter-config.yaml" ${bin_args[@]+"${bin_args[@]}"} ||
    fail "overlays/$overlay does not validate"
done
# The base alone renders too (it is the cpu variant without an overlay).
timeout 60 "$kubectl" kustomize "$k8s/base" > "$work/base.yaml" 2> /dev/null || fail "kubectl kustomize base failed"
validate --profile cpu --rendered "$work/base.yaml" --secrets "$k8s/secrets.example.yaml" > /dev/null ||
  fail "base does not validate"

# --- the checks bite: each broken variant must fail ----------------------------------------------
must_fail() {
  local what="$1" profile="$2" file="$3" want="$4"
  if validate --profile "$profile" --rendered "$file" --secrets "$k8s/secrets.example.yaml" \
      --adapter "$k8s/base/prometheus-adapter-config.yaml" > "$work/neg.out" 2>&1; then
    fail "validate.js accepted $what"
  fi
  grep -q '^FAIL' "$work/neg.out" || { cat "$work/neg.out" >&2; fail "validate.js crashed on $what"; }
  grep -q -- "$want" "$work/neg.out" || { cat "$work/neg.out" >&2; fail "$what: no FAIL line with '$want'"; }
  log "rejected $what: $(grep -m1 -- "$want" "$work/neg.out")"
}
g="$work/gpu.yaml"
# mutate OUT JS: OUT is the rendered gpu overlay after JS ran on `docs` (its objects) and `by`
# (kind/name -> object).
mutate() {
  # shellcheck disable=SC2016  # JavaScript, not shell
  NODE_PATH="$node_modules" timeout 60 node -e '
    const fs = require("fs"), yaml = require("js-yaml");
    const docs = yaml.loadAll(fs.readFileSync(process.argv[1], "utf8")).filter(Boolean);
    const by = {};
    for (const d of docs) by[`${d.kind}/${d.metadata.name}`] = d;
    const c = (k, n) => by[k].spec.template.spec.containers.find((x) => x.name === n);
    eval(process.argv[3]);
    fs.writeFileSync(process.argv[2], docs.map((d) => yaml.dump(d)).join("---\n"));
  ' "$g" "$1" "$2" || fail "mutate $2"
}
# Unchanged, the round trip through js-yaml still passes.
mutate "$work/n0.yaml" ''
validate --profile gpu --rendered "$work/n0.yaml" --secrets "$k8s/secrets.example.yaml" > /dev/null ||
  fail "the js-yaml round trip of the gpu overlay does not validate"
mutate "$work/n1.yaml" 'c("StatefulSet/vjepa-trainer", "trainer").readinesProbe = {tcpSocket: {port: 1}}'
must_fail "an unknown field" gpu "$work/n1.yaml" 'unknown field \"readinesProbe\"'
mutate "$work/n2.yaml" 'c("Deployment/vjepa-dataworker", "dataworker").ports[0].containerPort = "fifty"'
must_fail "a string containerPort (schema)" gpu "$work/n2.yaml" 'containerPort must be integer'
mutate "$work/n3.yaml" 'by["HorizontalPodAutoscaler/vjepa-dataworker"].spec.metrics[0].external.metric.name = "other"'
must_fail "an HPA without the desired-dataworkers metric" gpu "$work/n3.yaml" 'no External/Object metric'
mutate "$work/n4.yaml" 'by["StatefulSet/vjepa-coordinator"].spec.template.spec.securityContext.runAsNonRoot = false'
must_fail "runAsNonRoot false" gpu "$work/n4.yaml" 'not runAsNonRoot'
mutate "$work/n5.yaml" 'delete c("StatefulSet/vjepa-coordinator", "coordinator").resources.limits'
must_fail "a container without limits" gpu "$work/n5.yaml" 'no resources.limits.cpu'
mutate "$work/n6.yaml" 'delete c("Deployment/vjepa-dataworker", "dataworker").readinessProbe'
must_fail "a container without a readiness probe" gpu "$work/n6.yaml" 'no readinessProbe'
mutate "$work/n7.yaml" 'c("Deployment/vjepa-dataworker", "dataworker").args.push("--data_rooot=/x")'
must_fail "a flag the dataworker does not have" gpu "$work/n7.yaml" '--data_rooot is not a flag'
mutate "$work/n8.yaml" 'by["PodDisruptionBudget/vjepa-dataworker"].spec.selector.matchLabels = {"app.kubernetes.io/part-of": "vjepa-train"}'
must_fail "a PodDisruptionBudget over every pod" gpu "$work/n8.yaml" 'dataworkers only'
mutate "$work/n9.yaml" 'by["HorizontalPodAutoscaler/vjepa-dataworker"].spec.scaleTargetRef.name = "vjepa-trainer"'
must_fail "an HPA on another target" gpu "$work/n9.yaml" 'does not target Deployment vjepa-dataworker'
mutate "$work/n10.yaml" 'docs.push({apiVersion: "example.com/v1", kind: "Widget", metadata: {name: "w", namespace: "vjepa"}})'
must_fail "an unknown kind" gpu "$work/n10.yaml" 'unknown apiVersion/kind'
# shellcheck disable=SC2016
mutate "$work/n11.yaml" 'c("Deployment/vjepa-dataworker", "dataworker").args.push("--advertise_address=$(HOST_IP):1")'
must_fail "an undefined \$(VAR) in args" gpu "$work/n11.yaml" 'but no env HOST_IP'
mutate "$work/n12.yaml" 'by["Deployment/vjepa-dataworker"].spec.replicas = 3'
must_fail "replicas on the autoscaled Deployment" gpu "$work/n12.yaml" 'HorizontalPodAutoscaler owns them'
must_fail "the cpu render as the gpu overlay" gpu "$work/cpu.yaml" 'want vjepa-trainer-cuda'
must_fail "the gpu render as the cpu overlay" cpu "$work/gpu.yaml" 'nvidia.com/gpu in the cpu overlay'
# A custom resource it knows is skipped with a note, not failed.
{ cat "$g"; printf -- '---\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: m\n  namespace: vjepa\nspec: {}\n'; } > "$work/p1.yaml"
validate --profile gpu --rendered "$work/p1.yaml" --secrets "$k8s/secrets.example.yaml" > "$work/p1.out" 2>&1 || { cat "$work/p1.out" >&2; fail "a ServiceMonitor was not skipped"; }
grep -q 'note: ServiceMonitor' "$work/p1.out" || fail "no note for the skipped ServiceMonitor"

log "PASS"
