/**
 * Everything under deploy/ that kustomize builds is rendered with the real
 * `kubectl kustomize` (so what is tested is what `kubectl apply -k` applies),
 * and every rendered object is validated against the Kubernetes schemas
 * (kubernetes-models, @kubernetes-models/prometheus-operator: types, required
 * fields, and no unknown field). Then what the objects mean:
 * - the health-sidecar component applied to an app it has never seen
 *   (test/fixtures/kustomize/shop: own namespace and prefix, an init container,
 *   two containers, probes of its own, an unlabelled second Deployment), its
 *   PodMonitor and its NetworkPolicy (evaluated for who may connect);
 * - the sample base (podinfo + the component), the standalone and the sharded
 *   monitor (both built from components/monitor) and the collector.
 * That each mounted sidecar config really starts and reaches ready with the
 * env its pod gets is test/deploy/samples.test.ts.
 */
import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/probes/registry';
import type { SidecarConfig } from '../../src/config/types';
import type { AnyCheckConfig } from '../../src/probes/registry';
import { unknownFields, validateObject } from './k8s-fields';
import { containerEnv, mountedConfigs, type Container as EnvContainer } from './pods';
import { components, DEPLOY, kustomizations, kustomize, kustomizeVersion, type K8sObject } from './support';
import { ROOT } from '../helpers/paths';

type Probe = { httpGet?: { path: string; port: number | string }; tcpSocket?: unknown; exec?: unknown; periodSeconds?: number; timeoutSeconds?: number; failureThreshold?: number; successThreshold?: number };
type Container = EnvContainer & {
  image: string;
  restartPolicy?: string;
  ports?: { name: string; containerPort: number }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
};
type PodSpec = { initContainers?: Container[]; containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[]; securityContext?: Record<string, unknown>; terminationGracePeriodSeconds?: number };
type Workload = K8sObject & { spec: { replicas?: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };
type ServiceObj = K8sObject & { spec: { selector: Record<string, string>; clusterIP?: string; ports: { name: string; port: number; targetPort: string | number }[] } };
type Selector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
type NetworkPolicy = K8sObject & { spec: { podSelector: Selector; policyTypes?: string[]; ingress?: { from?: { namespaceSelector?: Selector; podSelector?: Selector }[]; ports?: { protocol?: string; port?: number | string; endPort?: number }[] }[] } };

const IMAGE = /^ghcr\.io\/otel-health-sidecar\/otel-health-sidecar:\d+\.\d+\.\d+$/;
const INJECT = 'otel-health-sidecar/inject';
const COMPONENT = join(DEPLOY, 'kustomize/components/health-sidecar');
const FIXTURE = join(ROOT, 'test/fixtures/kustomize/shop');

const byKind = <T extends K8sObject>(objects: K8sObject[], kind: string, name?: string): T => {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name ? `/${name}` : ''} rendered (got ${found.map((o) => o.metadata.name).join(', ') || 'none'})`);
  return found[0] as T;
};

function matches(selector: Selector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    if (e.operator === 'In' && !(has && e.values!.includes(labels[e.key]!))) return false;
    if (e.operator === 'NotIn' && has && e.values!.includes(labels[e.key]!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
    if (!['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(e.operator)) throw new Error(`operator ${e.operator}`);
  }
  return true;
}

/** Does `policy` admit a TCP connection from a pod in namespace `from` to `port` of a pod labelled `pod`? (its own rules only) */
function admits(policy: NetworkPolicy, pod: Record<string, string>, from: string, port: number): boolean {
  if (!matches(policy.spec.podSelector, pod)) return false;
  return (policy.spec.ingress ?? []).some((rule) => {
    const peerOk = !rule.from || rule.from.some((peer) => (peer.namespaceSelector ? matches(peer.namespaceSelector, { 'kubernetes.io/metadata.name': from }) : false) && (!peer.podSelector || matches(peer.podSelector, {})));
    const portOk = !rule.ports || rule.ports.some((p) => (p.protocol ?? 'TCP') === 'TCP' && typeof p.port === 'number' && port >= p.port && port <= (p.endPort ?? p.port));
    return peerOk && portOk;
  });
}

/** A kustomization in a temp dir (beside nothing): `files` copied from the fixture, components by relative path. */
const temps: string[] = [];
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempKustomization(kustomization: Record<string, unknown>, files: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'kustomize-'));
  temps.push(dir);
  for (const f of files) cpSync(join(FIXTURE, f), join(dir, f));
  const rel = (p: string) => relative(dir, p);
  writeFileSync(join(dir, 'kustomization.yaml'), stringify({ ...kustomization, components: (kustomization.components as string[] | undefined)?.map(rel) }));
  return dir;
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
  const sc = c.securityContext ?? {};
  assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
  assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation false`);
  assert.equal(sc.runAsNonRoot, true, `${where}: runAsNonRoot`);
  assert.deepEqual(sc.capabilities, { drop: ['ALL'] }, `${where}: every capability dropped`);
  assert.ok(c.resources?.requests?.memory && c.resources.limits?.memory && c.resources.requests.cpu, `${where}: memory request+limit and cpu request`);
  assert.ok(memMi(c.resources.limits.memory) >= memMi(c.resources.requests.memory), `${where}: limit ≥ request`);
}

/** The sidecar config the container runs, loaded with the env its pod gets. */
function loadedConfig(objects: K8sObject[], workload: Workload, container: Container, podName: string): SidecarConfig<AnyCheckConfig> {
  const m = mountedConfigs(objects).find((x) => x.workload === workload && x.container.name === container.name);
  assert.ok(m, `${workload.metadata.name}/${container.name} runs a mounted config`);
  return parseConfig(m.text, `${m.configMap}/sidecar.yaml`, { env: containerEnv(objects, container, podName) });
}

describe('kubectl kustomize renders every kustomization; every object is valid Kubernetes', () => {
  test('kubectl is there and its kustomize is v5', () => {
    assert.match(kustomizeVersion(), /^v5\./);
  });

  for (const dir of [...kustomizations(), FIXTURE]) {
    test(`${relative(ROOT, dir)}: every rendered object validates, with no unknown field`, () => {
      const objects = kustomize(dir);
      assert.ok(objects.length > 0);
      assert.deepEqual(objects.flatMap(validateObject), []);
    });
  }

  test('every Component under deploy/ is used by a kustomization that is rendered here (none rots unrendered)', () => {
    const used = new Set<string>();
    for (const dir of [...kustomizations(), FIXTURE]) {
      const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as { components?: string[] };
      for (const c of k.components ?? []) used.add(join(dir, c));
    }
    assert.deepEqual(components().filter((c) => !used.has(c)).map((c) => relative(ROOT, c)), []);
  });

  test('the validators catch real mistakes (so a pass means something)', () => {
    const dep = structuredClone(byKind<Workload>(kustomize(join(DEPLOY, 'kustomize/base')), 'Deployment'));
    (dep.spec.template.spec.containers[0] as Record<string, unknown>).readinesProbe = {};
    (dep.spec.template.spec.initContainers![0] as Record<string, unknown>).restartpolicy = 'Always';
    assert.deepEqual(unknownFields(dep), ['spec.template.spec.containers[0].readinesProbe', 'spec.template.spec.initContainers[0].restartpolicy']);
    (dep.spec as Record<string, unknown>).replicas = 'two';
    assert.match(validateObject(dep).join('\n'), /replicas must be integer/);
    const sm = structuredClone(byKind(kustomize(FIXTURE), 'ServiceMonitor')) as K8sObject & { spec: { endpoints: Record<string, unknown>[] } };
    sm.spec.endpoints[0]!.scrapeTimout = '5s';
    assert.deepEqual(unknownFields(sm), ['spec.endpoints[0].scrapeTimout']);
    assert.match(validateObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }).join(''), /no schema known for example\.com\/v1 Widget/);
  });

  test('a build error is kubectl\'s own message', () => {
    assert.throws(() => kustomize(join(DEPLOY, 'kustomize')), /kubectl kustomize deploy\/kustomize failed[\s\S]*kustomization/i);
  });
});

describe('the health-sidecar component on an app it has never seen (test/fixtures/kustomize/shop)', () => {
  const objects = kustomize(FIXTURE);
  const api = byKind<Workload>(objects, 'Deployment', 'shop-api');
  const pod = api.spec.template.spec;
  const source = kustomize(tempKustomization({ namespace: 'shop', namePrefix: 'shop-', resources: ['deployment.yaml', 'worker.yaml', 'service.yaml'] }, ['deployment.yaml', 'worker.yaml', 'service.yaml']));
  const before = byKind<Workload>(source, 'Deployment', 'shop-api');

  test('a native sidecar first among the init containers (it also runs while yours do); yours kept after it', () => {
    assert.deepEqual(pod.initContainers!.map((c) => c.name), ['health-sidecar', 'migrate']);
    const sidecar = pod.initContainers![0]!;
    assert.equal(sidecar.restartPolicy, 'Always', 'native sidecar (Kubernetes 1.29+)');
    assert.match(sidecar.image, IMAGE);
    assert.deepEqual(pod.initContainers![1], before.spec.template.spec.initContainers![0]);
    assertHardened(sidecar, 'health-sidecar');
    assert.equal(sidecar.securityContext?.runAsUser, 10001, 'the image user, on the container: whatever the pod says');
    assert.deepEqual(sidecar.ports, [
      { name: 'health', containerPort: 9464, protocol: 'TCP' },
      { name: 'probes', containerPort: 9465, protocol: 'TCP' },
    ]);
    assert.deepEqual(sidecar.args, ['run', '--config', '/etc/health-sidecar/sidecar.yaml', '--probe-port', '9465'], 'the kubelet paths on a listener of their own (issue 14.2)');
    assert.deepEqual(probes(sidecar).map(([k, p]) => [k, p.httpGet?.path, p.httpGet?.port]), [
      ['startupProbe', '/-/healthy', 'probes'],
      ['livenessProbe', '/-/healthy', 'probes'],
    ], 'its own probes ask the kubelet listener too: a flood of 9464 cannot restart it');
  });

  test('its config comes from your ConfigMap health-sidecar, its env from health-sidecar-env — generated names (prefix, hash) followed', () => {
    const sidecar = pod.initContainers![0]!;
    const volume = pod.volumes!.find((v) => v.name === 'health-sidecar-config')!;
    const cm = byKind<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap', volume.configMap!.name);
    assert.match(cm.metadata.name, /^shop-health-sidecar-[a-z0-9]{10}$/);
    assert.equal(cm.data['sidecar.yaml'], readFileSync(join(FIXTURE, 'sidecar.yaml'), 'utf8'));
    assert.match(sidecar.envFrom![0]!.configMapRef!.name, /^shop-health-sidecar-env-[a-z0-9]{10}$/);
    assert.deepEqual(sidecar.envFrom![1], { secretRef: { name: 'health-sidecar-env', optional: true } }, 'the Secret you create with kubectl (optional)');
    const config = loadedConfig(objects, api, sidecar, 'shop-api-7c9f8d6b5-x2x9z');
    assert.deepEqual(config.checks.map((c) => [c.name, 'url' in c ? c.url : undefined]), [['api', 'http://127.0.0.1:8080/healthz']]);
    assert.equal(config.server.port, sidecar.ports![0]!.containerPort, 'the config binds the port the container declares');
    const env = Object.fromEntries((sidecar.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath ?? e.value]));
    assert.deepEqual(env, { K8S_POD_NAME: 'metadata.name', K8S_NAMESPACE_NAME: 'metadata.namespace', K8S_NODE_NAME: 'spec.nodeName', NODE_OPTIONS: '--max-old-space-size=64' });
  });

  test('the app container\'s probes now ask the sidecar (its own replaced); the other container, and everything else, untouched', () => {
    const [app, shipper] = pod.containers;
    assert.deepEqual(probes(app!).map(([k, p]) => [k, p.httpGet?.path, p.httpGet?.port, p.tcpSocket]), [
      ['startupProbe', '/startupz', 9465, undefined],
      ['readinessProbe', '/readyz', 9465, undefined],
      ['livenessProbe', '/livez', 9465, undefined],
    ]);
    assert.deepEqual(shipper, before.spec.template.spec.containers[1]);
    const strip = (w: Workload) => {
      const copy = structuredClone(w) as Workload;
      const s = copy.spec.template.spec;
      delete s.initContainers;
      delete s.volumes;
      for (const k of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) delete s.containers[0]![k];
      delete copy.spec.template.metadata.labels[INJECT];
      return copy;
    };
    assert.deepEqual(strip(api), strip(before), 'nothing else changed');
    assert.equal(api.spec.template.metadata.labels[INJECT], 'true', 'pods carry the label the PodMonitor and NetworkPolicy select');
    assert.deepEqual(api.spec.selector, before.spec.selector, 'the selector is never changed (it is immutable)');
  });

  test('an unlabelled Deployment of the same kustomization is left exactly as it was', () => {
    assert.deepEqual(byKind(objects, 'Deployment', 'shop-worker'), byKind(source, 'Deployment', 'shop-worker'));
  });

  test('the labelled Service gains port "health" → 9464, which the ServiceMonitor scrapes', () => {
    const svc = byKind<ServiceObj>(objects, 'Service', 'shop-api');
    assert.deepEqual(svc.spec.ports.map((p) => [p.name, p.port, p.targetPort]).sort(), [['health', 9464, 9464], ['http', 80, 'http']]);
    const sm = byKind<K8sObject & { spec: { selector: Selector; endpoints: { port: string }[] } }>(objects, 'ServiceMonitor');
    assert.equal(sm.metadata.namespace, 'shop');
    assert.ok(matches(sm.spec.selector, svc.metadata.labels ?? {}), 'selects the labelled Service');
    assert.equal(svc.spec.ports.find((p) => p.name === sm.spec.endpoints[0]!.port)?.targetPort, pod.initContainers![0]!.ports![0]!.containerPort);
  });

  test('NetworkPolicy: port 9464 only from the namespaces named in HealthSidecarParams; nothing else of the pod opened by it', () => {
    const np = byKind<NetworkPolicy>(objects, 'NetworkPolicy');
    const params = parse(readFileSync(join(FIXTURE, 'health-sidecar-params.yaml'), 'utf8')) as { spec: { metricsNamespaces: string[] } };
    assert.deepEqual(params.spec.metricsNamespaces, ['monitoring', 'observability']);
    const labels = api.spec.template.metadata.labels;
    for (const ns of params.spec.metricsNamespaces) assert.ok(admits(np, labels, ns, 9464), `${ns} → 9464 admitted`);
    for (const ns of ['shop', 'default', 'kube-system']) assert.ok(!admits(np, labels, ns, 9464), `${ns} → 9464 refused`);
    assert.ok(!admits(np, labels, 'monitoring', 8080), 'the app port is not this policy\'s business');
    assert.ok(!admits(np, byKind<Workload>(objects, 'Deployment', 'shop-worker').spec.template.metadata.labels, 'monitoring', 9464), 'only injected pods selected');
    assert.deepEqual(np.spec.policyTypes, ['Ingress']);
    assert.equal(objects.filter((o) => o.kind === 'HealthSidecarParams').length, 0, 'the parameter object is local config: never applied');
  });

  test('forgetting the ConfigMap, or the NetworkPolicy\'s parameter, stops the build with a message that names it', () => {
    const noConfig = tempKustomization({ resources: ['deployment.yaml', 'service.yaml'], components: [COMPONENT] }, ['deployment.yaml', 'service.yaml']);
    assert.throws(() => kustomize(noConfig), /nothing selected by ConfigMap[^\n]*\/health-sidecar\b/);
    const noParams = tempKustomization(
      { resources: ['deployment.yaml'], components: [COMPONENT, join(COMPONENT, 'network-policy')], configMapGenerator: [{ name: 'health-sidecar', files: ['sidecar.yaml'] }] },
      ['deployment.yaml', 'sidecar.yaml'],
    );
    assert.throws(() => kustomize(noParams), /nothing selected by HealthSidecarParams[^\n]*health-sidecar-params/);
  });

  test('the same component injects into a StatefulSet (any workload kind with a pod template)', () => {
    const dir = tempKustomization({ resources: ['sts.yaml'], components: [COMPONENT], configMapGenerator: [{ name: 'health-sidecar', files: ['sidecar.yaml'] }] }, ['sidecar.yaml']);
    writeFileSync(join(dir, 'sts.yaml'), stringify({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db', labels: { [INJECT]: 'true' } }, spec: { serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: 'postgres:16' }] } } } }));
    const sts = byKind<Workload>(kustomize(dir), 'StatefulSet');
    assert.equal(sts.spec.template.spec.initContainers?.[0]?.name, 'health-sidecar');
    assert.equal(sts.spec.template.spec.containers[0]!.readinessProbe?.httpGet?.path, '/readyz');
  });
});

describe('deploy/kustomize/base: podinfo + the component', () => {
  const objects = kustomize(join(DEPLOY, 'kustomize/base'));
  const dep = byKind<Workload>(objects, 'Deployment');
  const pod = dep.spec.template.spec;
  const sidecar = pod.initContainers?.[0] as Container;
  const app = pod.containers[0]!;
  const config = loadedConfig(objects, dep, sidecar, 'sample-app-7c9f8d6b5-x2x9z');

  test('exactly: the Deployment, its Service, the config and env ConfigMaps; the sidecar comes from the component', () => {
    assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '-HASH')}`).sort(), ['ConfigMap/health-sidecar', 'ConfigMap/health-sidecar-env-HASH', 'Deployment/sample-app', 'Service/sample-app']);
    assert.equal(pod.initContainers?.length, 1);
    assert.equal(sidecar.name, 'health-sidecar');
    const deploymentSource = readFileSync(join(DEPLOY, 'kustomize/base/deployment.yaml'), 'utf8');
    assert.doesNotMatch(deploymentSource, /initContainers|health-sidecar:|9464/, 'the base does not repeat the component');
    assert.equal(dep.metadata.labels?.[INJECT], 'true');
    assert.deepEqual(config.checks.map((c) => [c.name, 'url' in c ? c.url : undefined]), [
      ['app', 'http://127.0.0.1:9898/healthz'],
      ['app-ready', 'http://127.0.0.1:9898/readyz'],
      ['cache', 'redis://redis:6379'],
      ['db', (containerEnv(objects, sidecar, 'x').DATABASE_URL)],
    ]);
    const appPort = app.ports!.find((p) => p.name === 'http')!.containerPort;
    for (const c of config.checks.filter((x) => x.name.startsWith('app'))) assert.equal(new URL((c as { url: string }).url).port, String(appPort), `${c.name} targets the app container port`);
  });

  test('secrets only through a Secret: nothing secret-looking in a ConfigMap or an inline env value', () => {
    const envCm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('health-sidecar-env')) as K8sObject & { data: Record<string, string> };
    assert.deepEqual(Object.keys(envCm.data).filter((k) => /KEY|PASSWORD|SECRET|TOKEN|DATABASE_URL/.test(k)), []);
    assert.ok(!(sidecar.env ?? []).some((e) => e.value !== undefined && /KEY|PASSWORD|SECRET|TOKEN/.test(e.name)));
    assert.ok(config.server.auth.keys.length === 1 && config.server.auth.keys[0]!.key.includes('from-the-secret'), 'the admin key comes from the Secret health-sidecar-env');
  });

  test('the app probes ask the sidecar\'s kubelet port with sane timings: liveness slower than readiness, startup budget ample, drain within the grace period', () => {
    const port = sidecar.ports!.find((p) => p.name === 'health')!.containerPort;
    assert.equal(config.server.port, port, 'the config binds the port the container declares');
    const probePort = sidecar.ports!.find((p) => p.name === 'probes')!.containerPort;
    const args = sidecar.args ?? [];
    assert.equal(args[args.indexOf('--probe-port') + 1], String(probePort), 'the kubelet listener binds the port the container declares');
    assert.notEqual(probePort, port);
    assert.deepEqual(probes(app).map(([k, p]) => [k, p.httpGet?.path, p.httpGet?.port]), [['startupProbe', '/startupz', probePort], ['readinessProbe', '/readyz', probePort], ['livenessProbe', '/livez', probePort]]);
    for (const [kind, probe] of [...probes(app), ...probes(sidecar)]) {
      assert.ok((probe.timeoutSeconds ?? 1) >= 1 && (probe.timeoutSeconds ?? 1) <= (probe.periodSeconds ?? 10), `${kind}: timeout within the period`);
      assert.ok((probe.failureThreshold ?? 3) >= 2 || kind === 'startupProbe', `${kind}: one blip does not act`);
    }
    const live = app.livenessProbe!;
    const liveWindowMs = live.periodSeconds! * live.failureThreshold! * 1000;
    const liveChecks = config.checks.filter((c) => c.groups.includes('live'));
    assert.ok(liveChecks.length > 0);
    for (const check of liveChecks) assert.ok(liveWindowMs >= 2 * check.interval, `liveness window ${liveWindowMs}ms vs ${check.name} interval ${check.interval}ms`);
    const ready = app.readinessProbe!;
    assert.ok(liveWindowMs > ready.periodSeconds! * ready.failureThreshold! * 1000, 'a dependency blip unroutes before it could ever restart');
    const startup = app.startupProbe!;
    for (const check of config.checks.filter((c) => c.groups.includes('startup'))) {
      const firstRunMs = check.retry.attempts * check.timeout + (check.retry.attempts - 1) * check.retry.backoff.max;
      assert.ok(startup.periodSeconds! * startup.failureThreshold! * 1000 >= 10 * firstRunMs, `startup budget vs ${check.name}`);
    }
    assert.ok(config.checks.every((c) => !c.groups.includes('live') || c.name === 'app'), 'only the app itself is in live: a dependency outage never restarts the pod');
    assert.ok(pod.terminationGracePeriodSeconds! * 1000 >= config.server.drainDelay + 10_000);
  });

  test('every container hardened; pod non-root; the Service selects the pods and names real ports', () => {
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) assertHardened(c, c.name);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    for (const [k, v] of Object.entries(dep.spec.selector.matchLabels)) assert.equal(dep.spec.template.metadata.labels[k], v);
    const svc = byKind<ServiceObj>(objects, 'Service');
    assert.deepEqual(svc.spec.selector, dep.spec.selector.matchLabels);
    const ports = [...(pod.initContainers ?? []), ...pod.containers].flatMap((c) => c.ports ?? []);
    for (const p of svc.spec.ports) assert.ok(ports.some((cp) => cp.name === p.targetPort || cp.containerPort === p.targetPort), `Service port ${p.name} → container port ${p.targetPort}`);
    assert.deepEqual(svc.spec.ports.map((p) => [p.name, p.port, p.targetPort]).sort(), [['health', 9464, 9464], ['http', 80, 'http']]);
    assert.ok(objects.every((o) => o.metadata.labels?.['app.kubernetes.io/part-of'] === 'sample-app'), 'kustomize labels applied');
  });
});

describe('the monitors: standalone (Deployment) and sharded (StatefulSet), both from components/monitor', () => {
  for (const [dir, kind] of [['overlays/standalone-monitor', 'Deployment'], ['overlays/sharded-monitor', 'StatefulSet']] as const) {
    test(`${dir}: the monitor container comes from the component; its own probes ask about itself only; hardened`, () => {
      const objects = kustomize(join(DEPLOY, 'kustomize', dir));
      const workload = byKind<Workload>(objects, kind);
      const source = readFileSync(join(DEPLOY, 'kustomize', dir, kind === 'Deployment' ? 'deployment.yaml' : 'statefulset.yaml'), 'utf8');
      assert.doesNotMatch(source, /image:|Probe:|securityContext:/, 'the overlay does not repeat the component');
      const pod = workload.spec.template.spec;
      assert.equal(pod.initContainers, undefined);
      const monitor = pod.containers[0]!;
      assert.match(monitor.image, IMAGE);
      assertHardened(monitor, 'monitor');
      assert.equal(pod.securityContext?.runAsNonRoot, true);
      for (const [k, probe] of probes(monitor)) {
        assert.ok(['/-/healthy', '/livez'].includes(probe.httpGet!.path), `${k} asks about the monitor itself`);
        assert.equal(probe.httpGet!.port, 'health');
      }
      const config = loadedConfig(objects, workload, monitor, `${workload.metadata.name}-0`);
      assert.equal(monitor.ports!.find((p) => p.name === 'health')!.containerPort, config.server.port);
      assert.ok(config.checks.every((c) => !c.groups.includes('live')), 'a monitor never restarts because a target is down');
      const svc = byKind<ServiceObj>(objects, 'Service');
      assert.deepEqual(svc.spec.selector, workload.spec.selector.matchLabels);
    });
  }

  test('standalone: one replica, Recreate (two would probe and notify twice)', () => {
    const dep = byKind<Workload & { spec: { strategy: { type: string } } }>(kustomize(join(DEPLOY, 'kustomize/overlays/standalone-monitor')), 'Deployment');
    assert.equal(dep.spec.replicas, 1);
    assert.equal(dep.spec.strategy.type, 'Recreate');
  });

  test('sharded: each StatefulSet ordinal loads its shard, together every check exactly once; SHARD_COUNT = replicas; one pod too many refuses to start', () => {
    const objects = kustomize(join(DEPLOY, 'kustomize/overlays/sharded-monitor'));
    const sts = byKind<Workload & { spec: { serviceName: string } }>(objects, 'StatefulSet');
    const monitor = sts.spec.template.spec.containers[0]!;
    const env = Object.fromEntries((monitor.env ?? []).map((e) => [e.name, e]));
    assert.equal(env.SHARD_COUNT?.value, String(sts.spec.replicas), 'SHARD_COUNT = spec.replicas');
    assert.equal(env.K8S_POD_NAME?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', 'index: auto reads the pod name');
    const svc = byKind<ServiceObj>(objects, 'Service');
    assert.equal(svc.metadata.name, sts.spec.serviceName, 'the governing Service exists');
    assert.equal(svc.spec.clusterIP, 'None', 'headless');
    const configFor = (ordinal: number) => loadedConfig(objects, sts, monitor, `${sts.metadata.name}-${ordinal}`);
    const replicas = sts.spec.replicas!;
    const shards = Array.from({ length: replicas }, (_, i) => configFor(i));
    const all = shards[0]!.shard!.total;
    assert.ok(all >= 10, 'an example with enough checks to split');
    const owned = shards.flatMap((c) => c.checks.map((check) => check.name));
    assert.equal(owned.length, all, 'no check on two replicas');
    assert.equal(new Set(owned).size, all, 'every check on one replica');
    shards.forEach((c, i) => {
      assert.deepEqual(c.shard, { index: i, count: replicas, indexFrom: 'K8S_POD_NAME', owned: c.checks.length, total: all });
      assert.ok(c.checks.length > 0, `shard ${i} owns something`);
    });
    assert.ok(['smtp', 'imap'].every((n) => shards[0]!.checks.some((c) => c.name === n)), 'pinned checks on shard 0');
    assert.throws(() => configFor(replicas), /shard\.index: auto: ordinal 3 \(from K8S_POD_NAME\) is not less than shard\.count \(3\)/);
  });
});

describe('deploy/otel-collector: the collector for the OTLP pipeline', () => {
  const objects = kustomize(join(DEPLOY, 'otel-collector'));

  test('Namespace observability, a Deployment running config.yaml from its ConfigMap, a Service the sidecars\' endpoint names', () => {
    assert.deepEqual(objects.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'Namespace', 'Service']);
    const dep = byKind<Workload>(objects, 'Deployment');
    const c = dep.spec.template.spec.containers[0]!;
    assertHardened(c, 'otel-collector');
    const cm = byKind<K8sObject & { data: Record<string, string> }>(objects, 'ConfigMap');
    assert.equal(cm.data['config.yaml'], readFileSync(join(DEPLOY, 'otel-collector/config.yaml'), 'utf8'));
    assert.equal(dep.spec.template.spec.volumes!.find((v) => v.configMap)!.configMap!.name, cm.metadata.name);
    const collector = parse(cm.data['config.yaml']!) as { receivers: { otlp: { protocols: Record<string, { endpoint: string }> } }; exporters: { prometheus: { endpoint: string } }; extensions: { health_check: { endpoint: string } } };
    const portOf = (endpoint: string) => Number(endpoint.split(':').at(-1));
    const containerPorts = Object.fromEntries(c.ports!.map((p) => [p.name, p.containerPort]));
    assert.deepEqual(containerPorts, {
      'otlp-grpc': portOf(collector.receivers.otlp.protocols.grpc!.endpoint),
      'otlp-http': portOf(collector.receivers.otlp.protocols.http!.endpoint),
      prometheus: portOf(collector.exporters.prometheus.endpoint),
      health: portOf(collector.extensions.health_check.endpoint),
    });
    for (const [k, p] of probes(c)) assert.equal(p.httpGet?.port, 'health', `${k} asks the health_check extension`);
    // the endpoint every sidecar is given resolves to this Service
    const svc = byKind<ServiceObj>(objects, 'Service');
    const base = kustomize(join(DEPLOY, 'kustomize/base'));
    const endpoint = new URL(containerEnv(base, byKind<Workload>(base, 'Deployment').spec.template.spec.initContainers![0]!, 'x').OTEL_EXPORTER_OTLP_ENDPOINT!);
    assert.equal(endpoint.hostname, `${svc.metadata.name}.${svc.metadata.namespace}`);
    assert.equal(svc.spec.ports.find((p) => p.port === Number(endpoint.port))?.targetPort, 'otlp-http');
    assert.deepEqual(svc.spec.selector, dep.spec.selector.matchLabels);
  });
});
