/**
 * deploy/kustomize: both kustomizations are rendered (test/deploy/support.ts
 * implements the kustomize subset they use and refuses anything else), every
 * object is validated against the Kubernetes schemas (kubernetes-models: types
 * and required fields; k8s-fields.ts: no unknown fields), and the wiring is
 * checked against the product: the ConfigMap holds a valid config whose
 * variables the container provides, the app's probes hit routes the sidecar
 * serves on the port the config binds, the sidecar is a native sidecar.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, test } from 'node:test';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import pino from 'pino';
import { parseConfig } from '../../src/probes/registry';
import type { SidecarConfig } from '../../src/config/types';
import type { AnyCheckConfig } from '../../src/probes/registry';
import { Sidecar } from '../../src/sidecar';
import { modelFile, unknownFields } from './k8s-fields';
import { DEPLOY, readText, renderKustomization, type K8sObject } from './support';

type Probe = { httpGet?: { path: string; port: number | string }; periodSeconds?: number; timeoutSeconds?: number; failureThreshold?: number; successThreshold?: number };
type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: { fieldPath: string } } };
type Container = {
  name: string;
  image: string;
  args?: string[];
  restartPolicy?: string;
  ports?: { name: string; containerPort: number }[];
  env?: EnvVar[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
};
type PodSpec = { initContainers?: Container[]; containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[]; securityContext?: Record<string, unknown>; terminationGracePeriodSeconds?: number };
type DeploymentObj = K8sObject & { spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };
type ServiceObj = K8sObject & { spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] } };

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment as never,
  'apps/v1/StatefulSet': StatefulSet as never,
  'v1/Service': Service as never,
  'v1/ConfigMap': ConfigMap as never,
};

const IMAGE = /^ghcr\.io\/otel-health-sidecar\/otel-health-sidecar:\d+\.\d+\.\d+$/;

/** Env values as the kubelet would set them; secrets get plausible placeholders. */
function containerEnv(container: Container): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) env[e.name] = e.valueFrom.secretKeyRef.key === 'url' ? 'postgres://app:pw-from-secret@db:5432/app' : e.valueFrom.secretKeyRef.key.includes('url') ? 'https://hooks.example.com/x' : 'secret-value-from-the-secret-0123';
    else if (e.valueFrom?.fieldRef) env[e.name] = `from-${e.valueFrom.fieldRef.fieldPath}`;
  }
  return env;
}

function probes(c: Container): [string, Probe][] {
  return (['startupProbe', 'readinessProbe', 'livenessProbe'] as const).filter((k) => c[k]).map((k) => [k, c[k]!]);
}

function memMi(q: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(q);
  assert.ok(m, `memory quantity ${q} in Mi or Gi`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

function assertHardened(c: Container, where: string): void {
  assert.deepEqual(c.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } }, `${where}: hardened securityContext`);
  assert.ok(c.resources?.requests?.memory && c.resources.limits?.memory && c.resources.requests.cpu, `${where}: memory request+limit and cpu request`);
  assert.ok(memMi(c.resources.limits.memory) >= memMi(c.resources.requests.memory), `${where}: limit ≥ request`);
}

/** The sidecar config the container runs, read from the rendered ConfigMap it mounts. */
function mountedConfig(objects: K8sObject[], pod: PodSpec, container: Container, extraEnv: NodeJS.ProcessEnv = {}): { text: string; config: SidecarConfig<AnyCheckConfig>; configMap: string; file: string } {
  const args = container.args ?? [];
  assert.deepEqual(args.slice(0, 2), ['run', '--config']);
  const path = args[2]!;
  const mount = container.volumeMounts?.find((m) => posix.dirname(path) === m.mountPath);
  assert.ok(mount, `${path} is on a mounted volume`);
  assert.equal(mount.readOnly, true);
  const volume = pod.volumes?.find((v) => v.name === mount.name);
  assert.ok(volume?.configMap, `volume ${mount.name} is a ConfigMap`);
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === volume.configMap!.name) as (K8sObject & { data: Record<string, string> }) | undefined;
  assert.ok(cm, `ConfigMap ${volume.configMap.name} is rendered`);
  const text = cm.data[posix.basename(path)];
  assert.ok(text, `ConfigMap has key ${posix.basename(path)}`);
  return { text, config: parseConfig(text, `${cm.metadata.name}/${posix.basename(path)}`, { env: { ...containerEnv(container), ...extraEnv } }), configMap: cm.metadata.name, file: posix.basename(path) };
}

function render(dir: string) {
  const { objects, files } = renderKustomization(join(DEPLOY, 'kustomize', dir));
  return { objects, files };
}

describe('kustomize manifests', () => {
  for (const dir of ['base', 'overlays/standalone-monitor']) {
    test(`${dir}: every object validates against the Kubernetes schema, with no unknown fields`, () => {
      const { objects } = render(dir);
      assert.deepEqual(objects.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'Service']);
      for (const obj of objects) {
        const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
        assert.ok(Model, `a schema for ${obj.apiVersion} ${obj.kind}`);
        assert.doesNotThrow(() => new Model(obj as never).validate(), `${obj.kind}/${obj.metadata.name} is valid`);
        assert.deepEqual(unknownFields(obj, modelFile(obj.apiVersion, obj.kind)), [], `${obj.kind}/${obj.metadata.name}: no unknown fields`);
      }
    });
  }

  test('the validators catch real mistakes (so a pass means something)', () => {
    const { objects } = render('base');
    const dep = structuredClone(objects.find((o) => o.kind === 'Deployment')) as DeploymentObj;
    dep.spec.template.spec.initContainers![0]!.ports![0]!.containerPort = 'nine' as never;
    assert.throws(() => new Deployment(dep as never).validate(), /containerPort must be integer/);
    const typo = structuredClone(objects.find((o) => o.kind === 'Deployment')) as DeploymentObj;
    (typo.spec.template.spec.containers[0] as Record<string, unknown>).readinesProbe = {};
    assert.deepEqual(unknownFields(typo, modelFile('apps/v1', 'Deployment')), ['spec.template.spec.containers[0].readinesProbe']);
  });

  test('base: the sidecar is a native sidecar whose config comes from the ConfigMap and is valid with the env the pod provides', () => {
    const { objects } = render('base');
    const dep = objects.find((o) => o.kind === 'Deployment') as DeploymentObj;
    const pod = dep.spec.template.spec;
    assert.equal(pod.initContainers?.length, 1);
    const sidecar = pod.initContainers[0]!;
    assert.equal(sidecar.name, 'health-sidecar');
    assert.equal(sidecar.restartPolicy, 'Always', 'native sidecar (Kubernetes 1.29+)');
    assert.match(sidecar.image, IMAGE);
    const { text, config } = mountedConfig(objects, pod, sidecar);
    // the deploy copy is the shipped example (kustomize cannot read files outside its directory)
    assert.equal(text, readText('config/examples/web-app.yaml'));
    assert.deepEqual(config.skipped, [], 'every variable the config needs is set by the Deployment');
    assert.deepEqual(config.checks.map((c) => [c.name, c.kind, 'url' in c ? c.url : undefined]), [
      ['app', 'http', 'http://127.0.0.1:9898/healthz'],
      ['cache', 'redis', 'redis://redis:6379'],
      ['db', 'postgres', 'postgres://app:pw-from-secret@db:5432/app'],
    ]);
    const app = pod.containers.find((c) => c.name === 'app')!;
    assert.equal((config.checks[0] as { url: string }).url.replace(/^http:\/\/127\.0\.0\.1:(\d+)\/.*/, '$1'), String(app.ports!.find((p) => p.name === 'http')!.containerPort), 'the app check targets the app container port');

    // secrets and downward API
    const env = Object.fromEntries((sidecar.env ?? []).map((e) => [e.name, e]));
    assert.deepEqual(env.HEALTH_ADMIN_KEY!.valueFrom, { secretKeyRef: { name: 'health-sidecar-keys', key: 'admin-key' } });
    assert.deepEqual(config.server.auth.keys.map((k) => [k.name, k.key]), [['ops', 'secret-value-from-the-secret-0123']]);
    assert.deepEqual(env.DATABASE_URL!.valueFrom, { secretKeyRef: { name: 'sample-app-db', key: 'url', optional: true } });
    assert.deepEqual(
      ['K8S_POD_NAME', 'K8S_NAMESPACE_NAME', 'K8S_NODE_NAME'].map((n) => env[n]?.valueFrom?.fieldRef?.fieldPath),
      ['metadata.name', 'metadata.namespace', 'spec.nodeName'],
    );
    assert.ok(!(sidecar.env ?? []).some((e) => /KEY|PASSWORD|SECRET|TOKEN/.test(e.name) && e.value !== undefined), 'no secret written inline');
  });

  test('base: the app probes hit the sidecar port and paths it serves, with sane timings', () => {
    const { objects } = render('base');
    const dep = objects.find((o) => o.kind === 'Deployment') as DeploymentObj;
    const pod = dep.spec.template.spec;
    const sidecar = pod.initContainers![0]!;
    const { config } = mountedConfig(objects, pod, sidecar);
    const port = sidecar.ports!.find((p) => p.name === 'health')!.containerPort;
    assert.equal(port, 9464);
    assert.equal(config.server.port, port, 'the config binds the port the container declares');
    const routes = new Sidecar(config, pino({ level: 'silent' })).router;
    const app = pod.containers.find((c) => c.name === 'app')!;
    const expected = { startupProbe: '/startupz', readinessProbe: '/readyz', livenessProbe: '/livez' };
    assert.deepEqual(probes(app).map(([k, p]) => [k, p.httpGet?.path, p.httpGet?.port]), Object.entries(expected).map(([k, path]) => [k, path, port]));
    for (const [kind, probe] of [...probes(app), ...probes(sidecar)]) {
      const match = routes.match(probe.httpGet!.path);
      assert.ok(match && match.param === undefined && match.route.methods.includes('GET'), `${kind} ${probe.httpGet!.path} is a route of the sidecar`);
      const port = typeof probe.httpGet!.port === 'string' ? sidecar.ports!.find((p) => p.name === probe.httpGet!.port)?.containerPort : probe.httpGet!.port;
      assert.equal(port, config.server.port, `${kind} asks the sidecar port`);
      assert.ok((probe.timeoutSeconds ?? 1) >= 1 && (probe.timeoutSeconds ?? 1) <= (probe.periodSeconds ?? 10), `${kind}: timeout within the period`);
      assert.ok((probe.failureThreshold ?? 3) >= 2 || kind === 'startupProbe', `${kind}: one blip does not act`);
    }
    // liveness must tolerate more than one interval of the live checks (a single missed run never restarts the app)
    const live = app.livenessProbe!;
    const liveWindowMs = live.periodSeconds! * live.failureThreshold! * 1000;
    for (const check of config.checks.filter((c) => c.groups.includes('live'))) assert.ok(liveWindowMs >= 2 * check.interval, `liveness window ${liveWindowMs}ms vs ${check.name} interval ${check.interval}ms`);
    // liveness acts more slowly than readiness: a dependency blip unroutes before it could ever restart
    const ready = app.readinessProbe!;
    assert.ok(liveWindowMs > ready.periodSeconds! * ready.failureThreshold! * 1000);
    // the startup budget covers a first run of every startup check, with all retries, many times over
    const startup = app.startupProbe!;
    for (const check of config.checks.filter((c) => c.groups.includes('startup'))) {
      const firstRunMs = check.retry.attempts * check.timeout + (check.retry.attempts - 1) * check.retry.backoff.max;
      assert.ok(startup.periodSeconds! * startup.failureThreshold! * 1000 >= 10 * firstRunMs, `startup budget vs ${check.name}`);
    }
    // drain: SIGTERM → readiness fails for drainDelay, then exit; must fit the grace period
    assert.ok(pod.terminationGracePeriodSeconds! * 1000 >= config.server.drainDelay + 10_000);
  });

  test('base: every container hardened; pod non-root; Service selects the pods and names real ports', () => {
    const { objects } = render('base');
    const dep = objects.find((o) => o.kind === 'Deployment') as DeploymentObj;
    const pod = dep.spec.template.spec;
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) assertHardened(c, c.name);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.equal(pod.securityContext?.runAsUser, 10001, 'the image user');
    assert.deepEqual(dep.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'sample-app' });
    for (const [k, v] of Object.entries(dep.spec.selector.matchLabels)) assert.equal(dep.spec.template.metadata.labels[k], v);
    const svc = objects.find((o) => o.kind === 'Service') as ServiceObj;
    assert.deepEqual(svc.spec.selector, dep.spec.selector.matchLabels);
    const ports = [...(pod.initContainers ?? []), ...pod.containers].flatMap((c) => c.ports ?? []);
    for (const p of svc.spec.ports) assert.ok(ports.some((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort), `Service port ${p.name} → container port ${p.targetPort}`);
    assert.deepEqual(svc.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['http', 80, 'http'], ['health', 9464, 9464]]);
    assert.ok(objects.every((o) => o.metadata.labels?.['app.kubernetes.io/part-of'] === 'sample-app'), 'kustomize labels applied');
  });

  test('standalone monitor: one replica, own probes about itself only, config = the shipped example, valid with its env', () => {
    const { objects } = render('overlays/standalone-monitor');
    const dep = objects.find((o) => o.kind === 'Deployment') as DeploymentObj & { spec: { replicas: number } };
    const pod = dep.spec.template.spec;
    assert.equal(dep.spec.replicas, 1);
    assert.equal(pod.initContainers, undefined);
    const monitor = pod.containers[0]!;
    assert.match(monitor.image, IMAGE);
    assertHardened(monitor, 'monitor');
    const { text, config } = mountedConfig(objects, pod, monitor);
    assert.equal(text, readText('config/examples/standalone-monitor.yaml'));
    assert.deepEqual(config.skipped, []);
    assert.ok(config.checks.length >= 5);
    assert.ok(config.checks.every((c) => !c.groups.includes('live')), 'a monitor never restarts because a target is down');
    const routes = new Sidecar(config, pino({ level: 'silent' })).router;
    for (const [kind, probe] of probes(monitor)) {
      assert.ok(['/-/healthy', '/livez'].includes(probe.httpGet!.path), `${kind} asks about the monitor itself`);
      assert.ok(routes.match(probe.httpGet!.path));
      assert.equal(probe.httpGet!.port, 'health');
    }
    assert.equal(monitor.ports!.find((p) => p.name === 'health')!.containerPort, config.server.port);
    const svc = objects.find((o) => o.kind === 'Service') as ServiceObj;
    assert.deepEqual(svc.spec.selector, dep.spec.selector.matchLabels);
    assert.deepEqual(svc.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['health', 9464, 'health']]);
  });

  test('sharded monitor: every object validates against the Kubernetes schema, with no unknown fields', () => {
    const { objects } = render('overlays/sharded-monitor');
    assert.deepEqual(objects.map((o) => o.kind).sort(), ['ConfigMap', 'Service', 'StatefulSet']);
    for (const obj of objects) {
      const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
      assert.ok(Model, `a schema for ${obj.apiVersion} ${obj.kind}`);
      assert.doesNotThrow(() => new Model(obj as never).validate(), `${obj.kind}/${obj.metadata.name} is valid`);
      assert.deepEqual(unknownFields(obj, modelFile(obj.apiVersion, obj.kind)), [], `${obj.kind}/${obj.metadata.name}: no unknown fields`);
    }
    const broken = structuredClone(objects.find((o) => o.kind === 'StatefulSet')) as K8sObject & { spec: Record<string, unknown> };
    broken.spec.replicas = 'three';
    assert.throws(() => new StatefulSet(broken as never).validate(), /replicas must be integer/, 'the StatefulSet schema catches mistakes');
  });

  test('sharded monitor: each StatefulSet ordinal loads its shard, together every check exactly once; count = replicas', () => {
    const { objects } = render('overlays/sharded-monitor');
    type StatefulSetObj = K8sObject & { spec: { replicas: number; serviceName: string; podManagementPolicy?: string; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };
    const sts = objects.find((o) => o.kind === 'StatefulSet') as StatefulSetObj;
    const pod = sts.spec.template.spec;
    const monitor = pod.containers[0]!;
    assert.match(monitor.image, IMAGE);
    assertHardened(monitor, 'monitor');
    const env = Object.fromEntries((monitor.env ?? []).map((e) => [e.name, e]));
    assert.equal(env.SHARD_COUNT?.value, String(sts.spec.replicas), 'SHARD_COUNT = spec.replicas');
    assert.equal(env.K8S_POD_NAME?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', 'index: auto reads the pod name');
    const svc = objects.find((o) => o.kind === 'Service') as ServiceObj & { spec: { clusterIP?: string } };
    assert.equal(svc.metadata.name, sts.spec.serviceName, 'the governing Service exists');
    assert.equal(svc.spec.clusterIP, 'None', 'headless');
    assert.deepEqual(svc.spec.selector, sts.spec.selector.matchLabels);
    for (const [k, v] of Object.entries(sts.spec.selector.matchLabels)) assert.equal(sts.spec.template.metadata.labels[k], v);

    // the config as each pod sees it: the pod name is <statefulset>-<ordinal>
    const configFor = (ordinal: number) => mountedConfig(objects, pod, monitor, { K8S_POD_NAME: `${sts.metadata.name}-${ordinal}` }).config;
    const shards = Array.from({ length: sts.spec.replicas }, (_, i) => configFor(i));
    const all = shards[0]!.shard!.total;
    assert.ok(all >= 10, 'an example with enough checks to split');
    const owned = shards.flatMap((c) => c.checks.map((check) => check.name));
    assert.equal(owned.length, all, 'no check on two replicas');
    assert.equal(new Set(owned).size, all, 'every check on one replica');
    shards.forEach((c, i) => {
      assert.deepEqual(c.shard, { index: i, count: sts.spec.replicas, indexFrom: 'K8S_POD_NAME', owned: c.checks.length, total: all });
      assert.ok(c.checks.length > 0, `shard ${i} owns something`);
      assert.deepEqual(c.skipped, []);
      assert.ok(c.checks.every((check) => !check.groups.includes('live')), 'a monitor never restarts because a target is down');
    });
    assert.ok(['smtp', 'imap'].every((n) => shards[0]!.checks.some((c) => c.name === n)), 'pinned checks on shard 0');
    // one pod too many (scaled without SHARD_COUNT): refuses to start
    assert.throws(() => configFor(sts.spec.replicas), /shard\.index: auto: ordinal 3 \(from K8S_POD_NAME\) is not less than shard\.count \(3\)/);
    // the monitor's own probes ask about the monitor, on the port the config binds
    const routes = new Sidecar(shards[0]!, pino({ level: 'silent' })).router;
    for (const [kind, probe] of probes(monitor)) {
      assert.ok(['/-/healthy', '/livez'].includes(probe.httpGet!.path), `${kind} asks about the monitor itself`);
      assert.ok(routes.match(probe.httpGet!.path));
      assert.equal(probe.httpGet!.port, 'health');
    }
    assert.equal(monitor.ports!.find((p) => p.name === 'health')!.containerPort, shards[0]!.server.port);
  });

  test('the renderer refuses what it cannot render (so no kustomize feature is silently ignored)', () => {
    const k = readFileSync(join(DEPLOY, 'kustomize/base/kustomization.yaml'), 'utf8');
    assert.match(k, /disableNameSuffixHash: true/);
    assert.throws(() => renderKustomization(join(DEPLOY, 'kustomize')), /ENOENT|kustomization/);
  });
});
