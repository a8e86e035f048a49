/** Shared pieces of the notification tests: a config, a driven store, receivers, metrics. */
import type { IncomingHttpHeaders } from 'node:http';
import { DataPointType, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { parseConfig } from '../../src/probes/registry';
import type { SidecarConfig } from '../../src/config/types';
import { HealthStore, type RunResult } from '../../src/health/state';
import { NotificationService, type NotificationServiceOptions } from '../../src/notify/service';
import { notifyMetrics } from '../../src/telemetry/instruments';
import { Redactor } from '../../src/redact';
import { startHttpServer, type TestHttpServer } from '../helpers/servers';

export function config(yaml: string): SidecarConfig {
  return parseConfig(yaml, 'test.yaml', { env: {} });
}

let clock = Date.parse('2030-01-01T00:00:00Z');
/** one run result; time moves forward 1 s per run */
export function run(ok: boolean, message = ok ? 'HTTP 200' : 'HTTP 500', latencyMs = 12): RunResult {
  clock += 1000;
  return { ok, outcome: ok ? 'success' : 'failure', message, latencyMs, attempts: 1, startedAt: clock - latencyMs, finishedAt: clock, breaker: 'closed' };
}

/** a HealthStore with the config's checks whose transitions feed a NotificationService */
export function wire(cfg: SidecarConfig, overrides: Partial<NotificationServiceOptions> = {}) {
  const store = new HealthStore();
  for (const check of cfg.checks) store.upsert(check);
  const metrics = new TestMetrics();
  const service = new NotificationService({
    targets: cfg.notifications,
    maxDeadLetters: cfg.state.maxDeadLetters,
    service: cfg.telemetry.serviceName,
    redactor: () => new Redactor(cfg.secrets),
    currentState: (check) => store.get(check),
    metrics: notifyMetrics(metrics.meter),
    ...overrides,
  });
  // one incident per DOWN episode, as health/incidents.ts opens them: inc-<check>, then inc-<check>-2, …
  // (the same id for every DOWN made a later DOWN's message share the id of one still in flight)
  const episodes = new Map<string, number>();
  store.onTransition((t) => {
    if (t.to !== 'DOWN') return service.notify(t, null);
    const n = (episodes.get(t.check) ?? 0) + 1;
    episodes.set(t.check, n);
    service.notify(t, n === 1 ? `inc-${t.check}` : `inc-${t.check}-${n}`);
  });
  return { store, service, metrics };
}

export interface Received {
  body: string;
  headers: IncomingHttpHeaders;
  status: number;
}

/** A real HTTP receiver; `answer(n)` gives the status for the n-th request (1-based). */
export async function receiver(answer: (n: number) => number = () => 200): Promise<TestHttpServer & { received: Received[]; accepted: () => Received[] }> {
  const received: Received[] = [];
  const server = await startHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = answer(received.length + 1);
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers, status });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'receiver unhappy');
    });
  });
  return Object.assign(server, { received, accepted: () => received.filter((r) => r.status === 200) });
}

class CollectingReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** A private MeterProvider (the global one belongs to the telemetry tests). */
export class TestMetrics {
  private readonly reader = new CollectingReader();
  private readonly provider = new MeterProvider({ readers: [this.reader] });
  readonly meter = this.provider.getMeter('otel-health-sidecar');

  /** counter values by `name{target}` */
  async counters(): Promise<Record<string, number>> {
    const { resourceMetrics } = await this.reader.collect();
    const out: Record<string, number> = {};
    for (const scope of (resourceMetrics as ResourceMetrics).scopeMetrics) {
      for (const metric of scope.metrics) {
        if (metric.dataPointType === DataPointType.GAUGE) continue; // counters only (queue gauges: see queue())
        for (const point of metric.dataPoints) {
          const outcome = point.attributes['healthcheck.outcome'];
          out[`${metric.descriptor.name}{${String(point.attributes['notification.target'])}${outcome === undefined ? '' : `,${String(outcome)}`}}`] = point.value as number;
        }
      }
    }
    return out;
  }

  /** the queue gauges of the one target there is */
  async queue(): Promise<{ depth: number; oldestAgeSeconds: number }> {
    const { resourceMetrics } = await this.reader.collect();
    const value = (name: string) => {
      for (const scope of (resourceMetrics as ResourceMetrics).scopeMetrics) for (const metric of scope.metrics) if (metric.descriptor.name === name) return metric.dataPoints[0]?.value as number;
      return NaN;
    };
    return { depth: value('healthcheck.notifications.queue.depth'), oldestAgeSeconds: value('healthcheck.notifications.queue.oldest_age') };
  }
}
