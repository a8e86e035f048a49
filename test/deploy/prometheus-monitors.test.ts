/**
 * PodMonitor / ServiceMonitor (Prometheus Operator CRDs): right API group,
 * selectors that match the rendered base's pods and Service, port names that
 * exist there, the metrics path the sidecar config serves, and the job label
 * the alert rules and the dashboard select on.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/probes/registry';
import { DEPLOY, loadYamlDocs, renderKustomization } from './support';

type Endpoint = { port: string; path: string; interval: string; scrapeTimeout: string; relabelings: { targetLabel: string; replacement?: string; sourceLabels?: string[] }[] };
type Monitor = { apiVersion: string; kind: string; metadata: { name: string }; spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints?: Endpoint[]; endpoints?: Endpoint[] } };
type Pod = { metadata: { labels: Record<string, string> }; spec: { initContainers?: { name: string; ports?: { name: string; containerPort: number }[] }[]; containers: { name: string; ports?: { name: string; containerPort: number }[] }[]; volumes: unknown[] } };

const { objects } = renderKustomization(join(DEPLOY, 'kustomize/base'));
const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as { spec: { template: Pod } };
const service = objects.find((o) => o.kind === 'Service') as unknown as { metadata: { labels: Record<string, string> }; spec: { ports: { name: string; targetPort: number | string }[] } };
const configMap = objects.find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
const sidecarConfig = parseConfig(configMap.data['sidecar.yaml']!, 'sidecar.yaml', { env: { REDIS_URL: 'redis://r:6379', DATABASE_URL: 'postgres://d/x', HEALTH_ADMIN_KEY: 'k'.repeat(24) } });
const load = (file: string) => loadYamlDocs(join(DEPLOY, 'prometheus', file))[0] as Monitor;
const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1]);

function checkEndpoint(ep: Endpoint): void {
  assert.equal(ep.path, sidecarConfig.telemetry.prometheus.path);
  assert.ok(seconds(ep.scrapeTimeout) < seconds(ep.interval), 'scrapeTimeout below interval');
  assert.deepEqual(ep.relabelings[0], { targetLabel: 'job', replacement: 'health-sidecar' }, 'job="health-sidecar", as rules.yaml and the dashboard expect');
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('Prometheus Operator monitors', () => {
  test('PodMonitor selects the sample-app pods and scrapes the sidecar container port by name', () => {
    const pm = load('podmonitor.yaml');
    assert.equal(pm.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(pm.kind, 'PodMonitor');
    assert.ok(matches(pm.spec.selector.matchLabels, deployment.spec.template.metadata.labels), 'selector matches the pod template labels');
    assert.ok(!matches(pm.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'endpoint-monitor' }));
    assert.equal(pm.spec.podMetricsEndpoints?.length, 1);
    const ep = pm.spec.podMetricsEndpoints[0]!;
    const sidecar = deployment.spec.template.spec.initContainers!.find((c) => c.name === 'health-sidecar')!;
    const port = sidecar.ports!.find((p) => p.name === ep.port);
    assert.ok(port, `port "${ep.port}" is a named port of the sidecar container`);
    assert.equal(port.containerPort, sidecarConfig.server.port);
    checkEndpoint(ep);
  });

  test('ServiceMonitor selects the sample-app Service and scrapes its health port', () => {
    const sm = load('servicemonitor.yaml');
    assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(sm.kind, 'ServiceMonitor');
    assert.ok(matches(sm.spec.selector.matchLabels, service.metadata.labels), 'selector matches the Service labels');
    assert.equal(sm.spec.endpoints?.length, 1);
    const ep = sm.spec.endpoints[0]!;
    const port = service.spec.ports.find((p) => p.name === ep.port);
    assert.ok(port, `port "${ep.port}" is a named port of the Service`);
    assert.equal(port.targetPort, sidecarConfig.server.port);
    checkEndpoint(ep);
  });
});
