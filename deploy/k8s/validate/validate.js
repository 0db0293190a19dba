#!/usr/bin/env node
// Offline checks of rendered vjepa-train Kubernetes manifests (tests/k8s_test.sh runs it).
//
//   node validate.js --profile cpu|gpu|gpu-tls --rendered FILE [--secrets FILE] [--adapter FILE]
//                    [--bin DIR]
//
// 1. Every object of --rendered, --secrets and --adapter is validated against the Kubernetes
//    OpenAPI schema of its apiVersion/kind (npm kubernetes-models); a kind it does not know fails,
//    except the known custom resources (ServiceMonitor, PodMonitor, PrometheusRule), which are
//    skipped with a note. The schemas do not reject unknown fields, so the fields of the objects
//    that matter here (pod specs, containers, probes, services, autoscalers, ...) are also checked
//    against the property names of their schema.
// 2. Invariants of the vjepa-train manifests (see check* below).
// With --bin, the flags in each container's args must appear in that binary's --help.
'use strict';

const fs = require('fs');
const path = require('path');
const childProcess = require('child_process');
const yaml = require('js-yaml');

const errors = [];
const notes = [];
function fail(where, msg) { errors.push(`${where}: ${msg}`); }

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(\w+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    o[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
  }
  return o;
}

function loadDocs(file) {
  return yaml.loadAll(fs.readFileSync(file, 'utf8')).filter((d) => d !== null && d !== undefined);
}

function id(o) {
  const ns = o.metadata && o.metadata.namespace ? `${o.metadata.namespace}/` : '';
  return `${o.kind} ${ns}${o.metadata && o.metadata.name}`;
}

// ---- schema validation ------------------------------------------------------------------------

const KNOWN_CRDS = new Set([
  'monitoring.coreos.com/v1 ServiceMonitor',
  'monitoring.coreos.com/v1 PodMonitor',
  'monitoring.coreos.com/v1 PrometheusRule',
]);

function modelClass(apiVersion, kind) {
  const mod = apiVersion.includes('/') ? `kubernetes-models/${apiVersion}` : `kubernetes-models/${apiVersion}`;
  let m;
  try {
    m = require(mod);
  } catch (e) {
    return null;
  }
  const cls = m[kind];
  return typeof cls === 'function' && cls.kind === kind && cls.apiVersion === apiVersion ? cls : null;
}

function validateSchema(o) {
  if (!o || typeof o !== 'object' || !o.apiVersion || !o.kind) {
    fail('document', 'not a Kubernetes object (apiVersion and kind needed)');
    return false;
  }
  const cls = modelClass(o.apiVersion, o.kind);
  if (!cls) {
    if (KNOWN_CRDS.has(`${o.apiVersion} ${o.kind}`)) {
      notes.push(`${id(o)}: custom resource ${o.apiVersion} ${o.kind}, schema check skipped`);
      return false;
    }
    fail(id(o), `unknown apiVersion/kind ${o.apiVersion} ${o.kind}`);
    return false;
  }
  try {
    new cls(o).validate();
  } catch (e) {
    fail(id(o), `schema: ${e.message}`);
  }
  return true;
}

// Property names a schema knows, read from the validator kubernetes-models generated for it (it
// tests each known property as `void 0===data.NAME`; inlined sub-validators may add a few names of
// nested objects, so the set can only be too large, never too small).
const schemaDirs = [
  path.join(path.dirname(require.resolve('kubernetes-models/package.json')), '_schemas'),
  path.join(path.dirname(require.resolve('@kubernetes-models/apimachinery/package.json')), '_schemas'),
];
const propCache = new Map();
function schemaProps(name) {
  if (!propCache.has(name)) {
    let text = null;
    for (const d of schemaDirs) {
      const f = path.join(d, `${name}.js`);
      if (fs.existsSync(f)) text = fs.readFileSync(f, 'utf8');
    }
    if (text === null) throw new Error(`no schema ${name} in kubernetes-models`);
    propCache.set(name, new Set([...text.matchAll(/void 0===data\.(\w+)/g)].map((m) => m[1])));
  }
  return propCache.get(name);
}

function strict(where, obj, schema) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return;
  const known = schemaProps(schema);
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) fail(where, `unknown field "${k}" (not in ${schema})`);
  }
}
const each = (a, f) => (Array.isArray(a) ? a.forEach(f) : undefined);

function strictFields(o) {
  const w = id(o);
  strict(`${w} metadata`, o.metadata, 'IoK8sApimachineryPkgApisMetaV1ObjectMeta');
  const podTemplate = (tpl, where) => {
    if (!tpl) return;
    strict(`${where} template`, tpl, 'IoK8sApiCoreV1PodTemplateSpec');
    strict(`${where} template.metadata`, tpl.metadata, 'IoK8sApimachineryPkgApisMetaV1ObjectMeta');
    const ps = tpl.spec || {};
    strict(`${where} pod spec`, ps, 'IoK8sApiCoreV1PodSpec');
    strict(`${where} pod securityContext`, ps.securityContext, 'IoK8sApiCoreV1PodSecurityContext');
    each(ps.tolerations, (t, i) => strict(`${where} tolerations[${i}]`, t, 'IoK8sApiCoreV1Toleration'));
    each(ps.volumes, (v, i) => {
      strict(`${where} volumes[${i}]`, v, 'IoK8sApiCoreV1Volume');
      strict(`${where} volumes[${i}].secret`, v.secret, 'IoK8sApiCoreV1SecretVolumeSource');
      strict(`${where} volumes[${i}].emptyDir`, v.emptyDir, 'IoK8sApiCoreV1EmptyDirVolumeSource');
      strict(`${where} volumes[${i}].persistentVolumeClaim`, v.persistentVolumeClaim,
        'IoK8sApiCoreV1PersistentVolumeClaimVolumeSource');
    });
    for (const list of ['initContainers', 'containers']) {
      each(ps[list], (c) => {
        const cw = `${where} container ${c.name}`;
        strict(cw, c, 'IoK8sApiCoreV1Container');
        strict(`${cw} resources`, c.resources, 'IoK8sApiCoreV1ResourceRequirements');
        strict(`${cw} securityContext`, c.securityContext, 'IoK8sApiCoreV1SecurityContext');
        for (const p of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
          strict(`${cw} ${p}`, c[p], 'IoK8sApiCoreV1Probe');
          if (c[p]) {
            strict(`${cw} ${p}.grpc`, c[p].grpc, 'IoK8sApiCoreV1GRPCAction');
            strict(`${cw} ${p}.httpGet`, c[p].httpGet, 'IoK8sApiCoreV1HTTPGetAction');
            strict(`${cw} ${p}.tcpSocket`, c[p].tcpSocket, 'IoK8sApiCoreV1TCPSocketAction');
          }
        }
        each(c.ports, (p, i) => strict(`${cw} ports[${i}]`, p, 'IoK8sApiCoreV1ContainerPort'));
        each(c.env, (e, i) => strict(`${cw} env[${i}]`, e, 'IoK8sApiCoreV1EnvVar'));
        each(c.volumeMounts, (m, i) => strict(`${cw} volumeMounts[${i}]`, m, 'IoK8sApiCoreV1VolumeMount'));
      });
    }
  };
  switch (`${o.apiVersion} ${o.kind}`) {
    case 'apps/v1 Deployment':
      strict(`${w} spec`, o.spec, 'IoK8sApiAppsV1DeploymentSpec');
      podTemplate(o.spec && o.spec.template, w);
      break;
    case 'apps/v1 StatefulSet':
      strict(`${w} spec`, o.spec, 'IoK8sApiAppsV1StatefulSetSpec');
      podTemplate(o.spec && o.spec.template, w);
      each(o.spec && o.spec.volumeClaimTemplates, (t, i) =>
        strict(`${w} volumeClaimTemplates[${i}].spec`, t.spec, 'IoK8sApiCoreV1PersistentVolumeClaimSpec'));
      break;
    case 'v1 Service':
      strict(`${w} spec`, o.spec, 'IoK8sApiCoreV1ServiceSpec');
      each(o.spec && o.spec.ports, (p, i) => strict(`${w} ports[${i}]`, p, 'IoK8sApiCoreV1ServicePort'));
      break;
    case 'v1 PersistentVolumeClaim':
      strict(`${w} spec`, o.spec, 'IoK8sApiCoreV1PersistentVolumeClaimSpec');
      break;
    case 'autoscaling/v2 HorizontalPodAutoscaler':
      strict(`${w} spec`, o.spec, 'IoK8sApiAutoscalingV2HorizontalPodAutoscalerSpec');
      each(o.spec && o.spec.metrics, (m, i) => strict(`${w} metrics[${i}]`, m, 'IoK8sApiAutoscalingV2MetricSpec'));
      strict(`${w} behavior`, o.spec && o.spec.behavior, 'IoK8sApiAutoscalingV2HorizontalPodAutoscalerBehavior');
      break;
    case 'policy/v1 PodDisruptionBudget':
      strict(`${w} spec`, o.spec, 'IoK8sApiPolicyV1PodDisruptionBudgetSpec');
      break;
    default:
      break;
  }
}

// ---- invariants -------------------------------------------------------------------------------

const IMAGES = {
  coordinator: 'vjepa-coordinator',
  dataworker: 'vjepa-dataworker',
  'trainer-cpu': 'vjepa-trainer-cpu',
  'trainer-cuda': 'vjepa-trainer-cuda',
};
const BINARY_OF_IMAGE = {
  'vjepa-coordinator': 'vjepa-coordinator',
  'vjepa-dataworker': 'vjepa-dataworker',
  'vjepa-trainer-cpu': 'vjepa-trainer',
  'vjepa-trainer-cuda': 'vjepa-trainer',
};
// The flags of each binary (its --help); --bin reads them from the binaries instead.
const FLAGS = {
  'vjepa-coordinator': ['auth_tokens', 'data_dir', 'heartbeat_interval', 'lease_duration', 'listen',
    'max_checkpoint_bytes', 'max_restarts', 'metrics_listen', 'metrics_port_file', 'port_file',
    'schedule_interval', 'tls_cert', 'tls_client_ca', 'tls_key', 'worker_lost_after'],
  'vjepa-dataworker': ['advertise_address', 'auth_tokens', 'batch_timeout', 'coordinator',
    'coordinator_tls_ca', 'coordinator_tls_cert', 'coordinator_tls_key', 'data_root', 'job_id',
    'job_spec', 'listen', 'max_leases', 'metrics_listen', 'metrics_port_file', 'name', 'port_file',
    'shutdown_grace', 'stream_buffer_batches', 'threads', 'tls_cert', 'tls_client_ca', 'tls_key',
    'token', 'token_file', 'world_size'],
  'vjepa-trainer': ['advertise_address', 'batch_log', 'c10d_store', 'c10d_timeout', 'checkpoint_dir',
    'coordinator', 'coordinator_tls_ca', 'coordinator_tls_cert', 'coordinator_tls_key',
    'data_deadline', 'dataworker_tls_ca', 'dataworker_tls_cert', 'dataworker_tls_key', 'dataworkers',
    'device', 'job_id', 'job_spec', 'log_every', 'metrics_listen', 'metrics_port_file', 'name',
    'rank', 'resume', 'steps', 'token', 'token_file', 'torch_threads', 'work_dir', 'world_size'],
};
function flagsFromBinary(bin) {
  const r = childProcess.spawnSync(bin, ['--help'], { encoding: 'utf8', timeout: 20000 });
  const text = `${r.stdout || ''}${r.stderr || ''}`;
  const flags = [...text.matchAll(/^\s+--(\w+) \(/gm)].map((m) => m[1]);
  if (flags.length === 0) throw new Error(`${bin} --help listed no flags`);
  return flags;
}

const imageName = (image) => image.replace(/@.*$/, '').replace(/:[^/:]*$/, '').split('/').pop();
const workloads = (objs) => objs.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job',
  'CronJob', 'ReplicaSet', 'Pod'].includes(o.kind));
function podSpecOf(o) {
  if (o.kind === 'Pod') return o.spec;
  if (o.kind === 'CronJob') return o.spec.jobTemplate.spec.template.spec;
  return o.spec && o.spec.template && o.spec.template.spec;
}
function podLabelsOf(o) {
  if (o.kind === 'Pod') return (o.metadata && o.metadata.labels) || {};
  return (o.spec && o.spec.template && o.spec.template.metadata && o.spec.template.metadata.labels) || {};
}
const matches = (sel, labels) => sel && sel.matchLabels && !sel.matchExpressions &&
  Object.entries(sel.matchLabels).every(([k, v]) => labels[k] === v);
function find(objs, kind, name) { return objs.find((o) => o.kind === kind && o.metadata.name === name); }
function container(o, name) {
  const ps = podSpecOf(o);
  return ps && (ps.containers || []).find((c) => c.name === name);
}
function qty(x) { return x === undefined ? undefined : String(x); }

function checkWorkloads(objs, profile, flagSets) {
  for (const o of workloads(objs)) {
    const w = id(o);
    const ps = podSpecOf(o) || {};
    const podSc = ps.securityContext || {};
    for (const c of ps.initContainers || []) {
      const sc = c.securityContext || {};
      if (!(sc.runAsNonRoot === true || (podSc.runAsNonRoot === true && sc.runAsNonRoot !== false))) {
        fail(`${w} init container ${c.name}`, 'not runAsNonRoot');
      }
    }
    for (const c of ps.containers || []) {
      const cw = `${w} container ${c.name}`;
      const sc = c.securityContext || {};
      if (!(sc.runAsNonRoot === true || (podSc.runAsNonRoot === true && sc.runAsNonRoot !== false))) {
        fail(cw, 'not runAsNonRoot');
      }
      const uid = sc.runAsUser !== undefined ? sc.runAsUser : podSc.runAsUser;
      if (uid === 0) fail(cw, 'runAsUser 0');
      if (sc.allowPrivilegeEscalation !== false) fail(cw, 'allowPrivilegeEscalation is not false');
      const res = c.resources || {};
      for (const kind of ['requests', 'limits']) {
        for (const r of ['cpu', 'memory']) {
          if (!res[kind] || res[kind][r] === undefined) fail(cw, `no resources.${kind}.${r}`);
        }
      }
      if (!c.livenessProbe) fail(cw, 'no livenessProbe');
      if (!c.readinessProbe) fail(cw, 'no readinessProbe');
      if (!c.image) { fail(cw, 'no image'); continue; }
      const img = imageName(c.image);
      const bin = BINARY_OF_IMAGE[img];
      if (!bin) { fail(cw, `image ${c.image} is none of ${Object.values(IMAGES).join(', ')}`); continue; }
      // Flags: each --NAME in args must be a flag of the binary; each $(VAR) must be in env.
      const env = new Set((c.env || []).map((e) => e.name));
      for (const a of c.args || []) {
        const m = /^--(\w+)(=|$)/.exec(a);
        if (!m) fail(cw, `argument "${a}" is not a --flag=value`);
        else if (!flagSets[bin].has(m[1])) fail(cw, `--${m[1]} is not a flag of ${bin}`);
        for (const v of a.matchAll(/\$\((\w+)\)/g)) {
          if (!env.has(v[1])) fail(cw, `$(${v[1]}) in "${a}" but no env ${v[1]}`);
        }
      }
      for (const e of c.env || []) {
        if (e.name === 'POD_IP' && !(e.valueFrom && e.valueFrom.fieldRef &&
            e.valueFrom.fieldRef.fieldPath === 'status.podIP')) {
          fail(cw, 'env POD_IP is not the downward API status.podIP');
        }
        if (e.name === 'POD_NAME' && !(e.valueFrom && e.valueFrom.fieldRef &&
            e.valueFrom.fieldRef.fieldPath === 'metadata.name')) {
          fail(cw, 'env POD_NAME is not the downward API metadata.name');
        }
      }
      const gpus = [res.requests, res.limits].map((r) => qty(r && r['nvidia.com/gpu']));
      if (gpus.some((g) => g !== undefined) && profile === 'cpu') fail(cw, 'requests nvidia.com/gpu in the cpu overlay');
    }
    // Secrets and claims the pods mount must exist.
    for (const v of ps.volumes || []) {
      if (v.secret && v.secret.defaultMode !== undefined && (v.secret.defaultMode & 0o007) !== 0) {
        fail(w, `volume ${v.name}: Secret files readable by others (defaultMode ${v.secret.defaultMode.toString(8)})`);
      }
      if (v.secret && !find(objs, 'Secret', v.secret.secretName)) {
        fail(w, `volume ${v.name}: no Secret ${v.secret.secretName} (rendered or in --secrets)`);
      }
      if (v.persistentVolumeClaim && !find(objs, 'PersistentVolumeClaim', v.persistentVolumeClaim.claimName)) {
        fail(w, `volume ${v.name}: no PersistentVolumeClaim ${v.persistentVolumeClaim.claimName}`);
      }
    }
    const vols = new Set((ps.volumes || []).map((v) => v.name)
      .concat(((o.spec && o.spec.volumeClaimTemplates) || []).map((t) => t.metadata.name)));
    for (const c of (ps.containers || []).concat(ps.initContainers || [])) {
      for (const m of c.volumeMounts || []) {
        if (!vols.has(m.name)) fail(`${w} container ${c.name}`, `mounts unknown volume ${m.name}`);
      }
    }
    if (o.kind === 'StatefulSet') {
      const svc = find(objs, 'Service', o.spec.serviceName);
      if (!svc) fail(w, `serviceName ${o.spec.serviceName}: no such Service`);
    }
  }
}

function grpcProbe(c, port) {
  return ['livenessProbe', 'readinessProbe'].every((p) => c[p] && c[p].grpc && c[p].grpc.port === port);
}
function tcpProbe(c, port) {
  return ['livenessProbe', 'readinessProbe'].every((p) => c[p] && c[p].tcpSocket && c[p].tcpSocket.port === port);
}
function hasArg(c, flag, value) {
  return (c.args || []).some((a) => (value === undefined ? a.startsWith(`--${flag}=`) : a === `--${flag}=${value}`));
}

function checkServices(objs, profile) {
  const tls = profile.endsWith('-tls');
  for (const o of objs) {
    if (o.metadata && !o.metadata.namespace && !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind)) {
      fail(id(o), 'no namespace');
    }
  }
  if (!find(objs, 'Namespace', 'vjepa')) fail('render', 'no Namespace vjepa');

  // Coordinator: one-replica StatefulSet, its --data_dir on a PVC, a Service with grpc and metrics.
  const co = find(objs, 'StatefulSet', 'vjepa-coordinator');
  if (!co) fail('render', 'no StatefulSet vjepa-coordinator');
  else {
    if (co.spec.replicas !== 1) fail(id(co), 'replicas must be 1');
    const c = container(co, 'coordinator');
    if (!c) fail(id(co), 'no container coordinator');
    else {
      if (imageName(c.image) !== IMAGES.coordinator) fail(id(co), `image ${c.image}`);
      const dataDir = ((c.args || []).find((a) => a.startsWith('--data_dir=')) || '').slice('--data_dir='.length);
      const claims = new Set((co.spec.volumeClaimTemplates || []).map((t) => t.metadata.name));
      const m = (c.volumeMounts || []).find((x) => x.mountPath === dataDir);
      if (!dataDir || !m || !claims.has(m.name)) fail(id(co), '--data_dir is not on a volumeClaimTemplate');
      if (!hasArg(c, 'auth_tokens')) fail(id(co), 'no --auth_tokens');
      if (!hasArg(c, 'listen', '0.0.0.0:50051')) fail(id(co), 'not --listen=0.0.0.0:50051');
      if (!hasArg(c, 'metrics_listen')) fail(id(co), 'no --metrics_listen');
      if (tls ? !tcpProbe(c, 50051) : !grpcProbe(c, 50051)) {
        fail(id(co), tls ? 'probes are not tcpSocket 50051 (TLS)' : 'probes are not grpc port 50051');
      }
      if (tls && !(hasArg(c, 'tls_cert') && hasArg(c, 'tls_key'))) fail(id(co), 'no --tls_cert/--tls_key');
    }
  }
  const cs = find(objs, 'Service', 'vjepa-coordinator');
  if (!cs) fail('render', 'no Service vjepa-coordinator');
  else {
    const ports = Object.fromEntries((cs.spec.ports || []).map((p) => [p.name, p.port]));
    if (ports.grpc !== 50051) fail(id(cs), 'no port grpc 50051');
    if (ports.metrics === undefined) fail(id(cs), 'no port named metrics');
    if (co && !matches(cs.spec.selector && { matchLabels: cs.spec.selector }, podLabelsOf(co))) {
      fail(id(cs), 'selector does not select the coordinator pods');
    }
  }

  // Dataworkers: Deployment advertising the pod IP, gRPC probes.
  const dw = find(objs, 'Deployment', 'vjepa-dataworker');
  if (!dw) fail('render', 'no Deployment vjepa-dataworker');
  else {
    const c = container(dw, 'dataworker');
    if (!c) fail(id(dw), 'no container dataworker');
    else {
      if (imageName(c.image) !== IMAGES.dataworker) fail(id(dw), `image ${c.image}`);
      if (!hasArg(c, 'advertise_address', '$(POD_IP):50051')) fail(id(dw), 'not --advertise_address=$(POD_IP):50051');
      if (!hasArg(c, 'listen', '0.0.0.0:50051')) fail(id(dw), 'not --listen=0.0.0.0:50051');
      if (!hasArg(c, 'name', '$(POD_NAME)')) fail(id(dw), 'not --name=$(POD_NAME)');
      for (const f of ['coordinator', 'token_file', 'auth_tokens', 'data_root', 'metrics_listen']) {
        if (!hasArg(c, f)) fail(id(dw), `no --${f}`);
      }
      if (!grpcProbe(c, 50051)) fail(id(dw), 'probes are not grpc port 50051');
      if (tls && !hasArg(c, 'coordinator_tls_ca')) fail(id(dw), 'no --coordinator_tls_ca');
    }
  }

  // Trainers: StatefulSet behind a headless Service, pod IP advertised, /metrics probes.
  const tr = find(objs, 'StatefulSet', 'vjepa-trainer');
  if (!tr) fail('render', 'no StatefulSet vjepa-trainer');
  else {
    const svc = find(objs, 'Service', tr.spec.serviceName);
    if (svc && svc.spec.clusterIP !== 'None') fail(id(tr), `Service ${svc.metadata.name} is not headless`);
    const c = container(tr, 'trainer');
    if (!c) fail(id(tr), 'no container trainer');
    else {
      if (!hasArg(c, 'advertise_address', '$(POD_IP)')) fail(id(tr), 'not --advertise_address=$(POD_IP)');
      if (!hasArg(c, 'name', '$(POD_NAME)')) fail(id(tr), 'not --name=$(POD_NAME)');
      for (const f of ['coordinator', 'token_file', 'work_dir', 'metrics_listen']) {
        if (!hasArg(c, f)) fail(id(tr), `no --${f}`);
      }
      for (const p of ['livenessProbe', 'readinessProbe']) {
        const h = c[p] && c[p].httpGet;
        if (!h || h.path !== '/metrics' || h.port !== 'metrics') fail(id(tr), `${p} is not httpGet /metrics on port metrics`);
      }
      const res = c.resources || {};
      const gpuReq = qty(res.requests && res.requests['nvidia.com/gpu']);
      const gpuLim = qty(res.limits && res.limits['nvidia.com/gpu']);
      const want = profile.startsWith('gpu') ? IMAGES['trainer-cuda'] : IMAGES['trainer-cpu'];
      if (imageName(c.image) !== want) fail(id(tr), `image ${c.image}, want ${want}`);
      if (profile.startsWith('gpu') && (gpuReq !== '1' || gpuLim !== '1')) {
        fail(id(tr), 'gpu overlay: requests and limits must be nvidia.com/gpu: 1');
      }
      if (tls && !hasArg(c, 'coordinator_tls_ca')) fail(id(tr), 'no --coordinator_tls_ca');
    }
  }
  if (profile.startsWith('gpu')) {
    for (const o of workloads(objs)) {
      for (const c of podSpecOf(o).containers || []) {
        if (o.metadata.name !== 'vjepa-trainer' && imageName(c.image) === IMAGES['trainer-cuda']) {
          fail(id(o), 'the cuda image outside the trainer');
        }
      }
    }
  }
}

function checkAutoscaling(objs) {
  const hpas = objs.filter((o) => o.kind === 'HorizontalPodAutoscaler');
  if (hpas.length !== 1) fail('render', `want one HorizontalPodAutoscaler, found ${hpas.length}`);
  for (const h of hpas) {
    if (h.apiVersion !== 'autoscaling/v2') fail(id(h), 'not autoscaling/v2');
    const t = h.spec.scaleTargetRef || {};
    if (t.kind !== 'Deployment' || t.name !== 'vjepa-dataworker' || t.apiVersion !== 'apps/v1') {
      fail(id(h), 'does not target Deployment vjepa-dataworker');
    }
    const target = find(objs, 'Deployment', t.name);
    if (target && target.spec.replicas !== undefined) {
      fail(id(target), 'sets replicas although the HorizontalPodAutoscaler owns them (every apply would reset them)');
    }
    const ms = h.spec.metrics || [];
    const desired = ms.find((m) => (m.type === 'External' && m.external && m.external.metric &&
      m.external.metric.name === 'vjepa_coordinator_dataworkers_desired') ||
      (m.type === 'Object' && m.object && m.object.metric &&
      m.object.metric.name === 'vjepa_coordinator_dataworkers_desired'));
    if (!desired) fail(id(h), 'no External/Object metric vjepa_coordinator_dataworkers_desired');
    if (!ms.some((m) => m.type === 'Resource' && m.resource && m.resource.name === 'cpu')) {
      fail(id(h), 'no cpu Resource metric (the fallback)');
    }
    if (!(h.spec.minReplicas >= 1 && h.spec.maxReplicas >= h.spec.minReplicas)) fail(id(h), 'bad min/max replicas');
  }
  // PodDisruptionBudgets: the dataworkers have one; nothing else is covered by one.
  const pdbs = objs.filter((o) => o.kind === 'PodDisruptionBudget');
  const dw = find(objs, 'Deployment', 'vjepa-dataworker');
  if (!pdbs.some((p) => dw && matches(p.spec.selector, podLabelsOf(dw)))) fail('render', 'no PodDisruptionBudget for the dataworkers');
  for (const p of pdbs) {
    for (const o of workloads(objs)) {
      if (o !== dw && matches(p.spec.selector, podLabelsOf(o))) fail(id(p), `also covers ${id(o)} (dataworkers only)`);
    }
    if (!p.spec.selector || !p.spec.selector.matchLabels) fail(id(p), 'selector must be matchLabels');
  }
}

function checkAdapter(objs) {
  const cms = objs.filter((o) => o.kind === 'ConfigMap');
  let found = false;
  for (const cm of cms) {
    for (const [key, text] of Object.entries(cm.data || {})) {
      let cfg;
      try {
        cfg = yaml.load(text);
      } catch (e) {
        fail(`${id(cm)} ${key}`, `not YAML: ${e.message}`);
        continue;
      }
      for (const r of (cfg && cfg.externalRules) || []) {
        if (String(r.seriesQuery).includes('vjepa_coordinator_dataworkers_desired') &&
            r.name && r.name.as === 'vjepa_coordinator_dataworkers_desired' &&
            new RegExp(r.name.matches).test('vjepa_coordinator_dataworkers_desired') &&
            String(r.metricsQuery).includes('<<.Series>>')) {
          found = true;
        }
      }
    }
  }
  if (!found) fail('adapter', 'no externalRules entry serving vjepa_coordinator_dataworkers_desired');
}

function main() {
  const a = parseArgs(process.argv.slice(2));
  if (!a.profile || !a.rendered) throw new Error('usage: validate.js --profile P --rendered FILE [--secrets FILE] [--adapter FILE] [--bin DIR]');
  const rendered = loadDocs(a.rendered);
  const secrets = a.secrets ? loadDocs(a.secrets) : [];
  const adapter = a.adapter ? loadDocs(a.adapter) : [];
  let checked = 0;
  for (const o of rendered.concat(secrets, adapter)) {
    if (validateSchema(o)) {
      checked++;
      strictFields(o);
    }
  }
  for (const s of secrets) if (s.kind !== 'Secret') fail(id(s), '--secrets holds a non-Secret');
  const flagSets = {};
  for (const b of Object.keys(FLAGS)) {
    flagSets[b] = new Set(a.bin ? flagsFromBinary(path.join(a.bin, b)) : FLAGS[b]);
  }
  const objs = rendered.concat(secrets);
  checkWorkloads(objs, a.profile, flagSets);
  checkServices(rendered, a.profile);
  checkAutoscaling(rendered);
  if (a.adapter) checkAdapter(adapter);
  for (const n of notes) console.log(`note: ${n}`);
  if (errors.length) {
    for (const e of errors) console.error(`FAIL ${a.profile}: ${e}`);
    process.exit(1);
  }
  console.log(`ok ${a.profile}: ${checked} objects valid against the schemas, invariants hold` +
    (a.bin ? ` (flags checked against ${a.bin})` : ''));
}

try {
  main();
} catch (e) {
  console.error(`validate.js: ${e.stack || e.message}`);
  process.exit(2);
}
