/**
 * deploy/otel-collector/config.yaml: every pipeline references defined
 * receivers/processors/exporters, everything defined is used, processors are
 * in the safe order (memory_limiter first, batch last), and the endpoints line
 * up with the rest of the kit (sidecar OTLP/HTTP endpoint, Jaeger OTLP gRPC,
 * Prometheus scrape target).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { DEPLOY, kustomize } from './support';

type Collector = {
  receivers: Record<string, { protocols?: Record<string, { endpoint: string }> }>;
  processors: Record<string, Record<string, unknown>>;
  exporters: Record<string, { endpoint: string; tls?: { insecure?: boolean } }>;
  extensions?: Record<string, { endpoint?: string }>;
  service: { extensions?: string[]; pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }> };
};
const KNOWN_TYPES = {
  receivers: ['otlp'],
  processors: ['memory_limiter', 'batch'],
  exporters: ['otlp', 'otlphttp', 'prometheus', 'prometheusremotewrite', 'debug'],
  extensions: ['health_check'],
};
const typeOf = (id: string) => id.split('/')[0]!;

/** Problems in a collector config's wiring (pure, so the checker itself can be tested). */
export function collectorProblems(c: Collector): string[] {
  const problems: string[] = [];
  const used = { receivers: new Set<string>(), processors: new Set<string>(), exporters: new Set<string>() };
  for (const [name, p] of Object.entries(c.service.pipelines)) {
    if (!['traces', 'metrics', 'logs'].includes(typeOf(name))) problems.push(`pipeline ${name}: unknown signal`);
    if (!p.receivers?.length) problems.push(`pipeline ${name}: no receivers`);
    if (!p.exporters?.length) problems.push(`pipeline ${name}: no exporters`);
    for (const kind of ['receivers', 'processors', 'exporters'] as const) {
      for (const id of p[kind] ?? []) {
        used[kind].add(id);
        if (!(id in (c[kind] ?? {}))) problems.push(`pipeline ${name}: ${kind} "${id}" is not defined`);
      }
    }
    const procs = p.processors ?? [];
    if (procs.length && procs[0] !== 'memory_limiter') problems.push(`pipeline ${name}: memory_limiter must come first`);
    if (procs.length && procs[procs.length - 1] !== 'batch') problems.push(`pipeline ${name}: batch must come last`);
  }
  for (const kind of ['receivers', 'processors', 'exporters'] as const) {
    for (const id of Object.keys(c[kind] ?? {})) {
      if (!used[kind].has(id)) problems.push(`${kind} "${id}" is defined but used by no pipeline`);
      if (!KNOWN_TYPES[kind].includes(typeOf(id))) problems.push(`${kind} "${id}": unknown component type`);
    }
  }
  for (const id of Object.keys(c.extensions ?? {})) if (!c.service.extensions?.includes(id)) problems.push(`extension "${id}" is defined but not enabled`);
  for (const id of c.service.extensions ?? []) if (!(id in (c.extensions ?? {}))) problems.push(`extension "${id}" is enabled but not defined`);
  return problems;
}

const config = parse(readFileSync(join(DEPLOY, 'otel-collector/config.yaml'), 'utf8')) as Collector;

describe('OpenTelemetry Collector config', () => {
  test('pipelines reference only defined components, and every defined component is used', () => {
    assert.deepEqual(collectorProblems(config), []);
    assert.deepEqual(Object.keys(config.service.pipelines).sort(), ['logs', 'metrics', 'traces']);
    // the sidecar pushes all three signals over OTLP: each pipeline receives from the OTLP receiver
    for (const signal of ['traces', 'metrics', 'logs']) assert.deepEqual(config.service.pipelines[signal]?.receivers, ['otlp'], signal);
  });

  test('the checker finds wiring mistakes', () => {
    const broken = structuredClone(config);
    broken.service.pipelines.traces!.exporters = ['jaeger'];
    broken.service.pipelines.metrics!.processors = ['batch', 'memory_limiter'];
    broken.receivers.zipkin = {};
    assert.deepEqual(collectorProblems(broken), [
      'pipeline traces: exporters "jaeger" is not defined',
      'pipeline metrics: memory_limiter must come first',
      'pipeline metrics: batch must come last',
      'receivers "zipkin" is defined but used by no pipeline',
      'receivers "zipkin": unknown component type',
      'exporters "otlp/jaeger" is defined but used by no pipeline',
    ]);
  });

  test('OTLP in on 4317 (gRPC) and 4318 (HTTP); traces to Jaeger over OTLP; metrics to a Prometheus endpoint', () => {
    assert.deepEqual(config.receivers.otlp!.protocols, { grpc: { endpoint: '0.0.0.0:4317' }, http: { endpoint: '0.0.0.0:4318' } });
    assert.deepEqual(config.service.pipelines.traces, { receivers: ['otlp'], processors: ['memory_limiter', 'batch'], exporters: ['otlp/jaeger'] });
    assert.deepEqual(config.exporters['otlp/jaeger'], { endpoint: 'jaeger:4317', tls: { insecure: true } });
    assert.deepEqual(config.service.pipelines.metrics!.exporters, ['prometheus']);
    // the Prometheus scrape config scrapes the collector's exporter port
    const prom = parse(readFileSync(join(DEPLOY, 'prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    const port = config.exporters.prometheus!.endpoint.split(':')[1];
    assert.ok(prom.scrape_configs.some((s) => s.static_configs.some((sc) => sc.targets.includes(`otel-collector:${port}`))));
    // the sidecar exports OTLP/HTTP: its configured endpoint is the collector's HTTP receiver port
    const envConfigMap = kustomize(join(DEPLOY, 'kustomize/base')).find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('health-sidecar-env')) as unknown as { data: Record<string, string> };
    const endpoint = envConfigMap.data.OTEL_EXPORTER_OTLP_ENDPOINT!;
    assert.equal(new URL(endpoint).port, config.receivers.otlp!.protocols!.http!.endpoint.split(':')[1]);
  });
});
