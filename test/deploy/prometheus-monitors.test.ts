/**
 * PodMonitor / ServiceMonitor (Prometheus Operator CRDs, the optional
 * components beside components/health-sidecar), as rendered by `kubectl
 * kustomize` in overlays/production (PodMonitor on the sample base) and in the
 * test fixture (ServiceMonitor): right API group, selectors that match the
 * injected pods / labelled Services and nothing else, port names that exist
 * there, the metrics path the sidecar config serves, scrape timeout below the
 * interval, and the job label the alert rules and the dashboard select on.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { parseConfig } from '../../src/probes/registry';
import { DEPLOY, kustomize, type K8sObject } from './support';
import { ROOT } from '../helpers/paths';

type Endpoint = { port: string; path: string; interval: string; scrapeTimeout: string; relabelings: { targetLabel: string; replacement?: string; sourceLabels?: string[] }[] };
type Monitor = K8sObject & { spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints?: Endpoint[]; endpoints?: Endpoint[] } };
type Pod = { metadata: { labels: Record<string, string> }; spec: { initContainers?: { name: string; ports?: { name: string; containerPort: number }[] }[] } };
type Service = K8sObject & { spec: { ports: { name: string; targetPort: number | string }[] } };

const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1]);
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);
const rules = readFileSync(join(DEPLOY, 'prometheus/rules.yaml'), 'utf8');

function checkEndpoint(ep: Endpoint, metricsPath: string): void {
  assert.equal(ep.path, metricsPath, 'the path the sidecar config serves');
  assert.ok(seconds(ep.scrapeTimeout) < seconds(ep.interval), 'scrapeTimeout below interval');
  assert.deepEqual(ep.relabelings[0], { targetLabel: 'job', replacement: 'health-sidecar' }, 'job="health-sidecar", as rules.yaml and the dashboard expect');
  assert.match(rules, /job="health-sidecar"/);
}

describe('Prometheus Operator monitors', () => {
  test('PodMonitor (overlays/production): selects the pods the component injected, scrapes the sidecar container port by name', () => {
    const objects = kustomize(join(DEPLOY, 'kustomize/overlays/production'));
    const pm = objects.find((o) => o.kind === 'PodMonitor') as Monitor;
    assert.equal(pm.apiVersion, 'monitoring.coreos.com/v1');
    const dep = objects.find((o) => o.kind === 'Deployment') as unknown as { spec: { template: Pod } };
    assert.ok(matches(pm.spec.selector.matchLabels, dep.spec.template.metadata.labels), 'selector matches the pod template labels');
    assert.ok(!matches(pm.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'endpoint-monitor' }), 'not the monitors, not any pod');
    assert.equal(pm.spec.podMetricsEndpoints?.length, 1);
    const ep = pm.spec.podMetricsEndpoints[0]!;
    const sidecar = dep.spec.template.spec.initContainers!.find((c) => c.name === 'health-sidecar')!;
    const port = sidecar.ports!.find((p) => p.name === ep.port);
    assert.ok(port, `port "${ep.port}" is a named port of the sidecar container`);
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'health-sidecar') as unknown as { data: Record<string, string> };
    const config = parseConfig(cm.data['sidecar.yaml']!, 'sidecar.yaml', { env: { REDIS_URL: 'redis://r:6379', HEALTH_ADMIN_KEY: 'k'.repeat(24) } });
    assert.equal(port.containerPort, config.server.port);
    checkEndpoint(ep, config.telemetry.prometheus.path);
  });

  test('ServiceMonitor (test/fixtures/kustomize/shop): selects the labelled Service and scrapes its port "health"', () => {
    const objects = kustomize(join(ROOT, 'test/fixtures/kustomize/shop'));
    const sm = objects.find((o) => o.kind === 'ServiceMonitor') as Monitor;
    assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
    const services = objects.filter((o) => o.kind === 'Service') as Service[];
    const selected = services.filter((s) => matches(sm.spec.selector.matchLabels, s.metadata.labels));
    assert.deepEqual(selected.map((s) => s.metadata.name), ['shop-api']);
    const ep = sm.spec.endpoints![0]!;
    const port = selected[0]!.spec.ports.find((p) => p.name === ep.port);
    assert.ok(port, `port "${ep.port}" is a named port of the Service`);
    const config = parseConfig(readFileSync(join(ROOT, 'test/fixtures/kustomize/shop/sidecar.yaml'), 'utf8'), 'sidecar.yaml', { env: { APP_URL: 'http://127.0.0.1:8080/' } });
    assert.equal(port.targetPort, config.server.port);
    checkEndpoint(ep, config.telemetry.prometheus.path);
  });

  test('both name the same job and endpoint settings (use one OR the other)', () => {
    const pm = parse(readFileSync(join(DEPLOY, 'kustomize/components/health-sidecar/podmonitor/podmonitor.yaml'), 'utf8')) as Monitor;
    const sm = parse(readFileSync(join(DEPLOY, 'kustomize/components/health-sidecar/servicemonitor/servicemonitor.yaml'), 'utf8')) as Monitor;
    const common = (e: Endpoint) => ({ port: e.port, path: e.path, interval: e.interval, scrapeTimeout: e.scrapeTimeout, job: e.relabelings[0] });
    assert.deepEqual(common(pm.spec.podMetricsEndpoints![0]!), common(sm.spec.endpoints![0]!));
    assert.deepEqual(pm.spec.selector, sm.spec.selector);
  });
});
