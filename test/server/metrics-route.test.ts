/**
 * The `/metrics` route (src/server/metrics-route.ts) over the real renderer
 * (telemetry's PrometheusRenderer on a PrometheusExporter): concurrent
 * scrapes of one format join one render and get the same gzipped bytes; two
 * formats render apart; a scrape after a render has ended renders afresh
 * (nothing is cached); a failed collection is a 500 and a log line.
 *
 * The renderer is wrapped only to count: `negotiate` counts the scrapes that
 * reached the handler, and a render waits until all of the scrapes of a
 * burst have arrived, so "joined" is an event, not a race.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import pino from 'pino';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { metricsHandler, type MetricsFormat, type MetricsRenderer } from '../../src/server/metrics-route';
import { HealthMetrics, metricViews, PrometheusRenderer, PROMETHEUS_CONTENT_TYPE } from '../../src/telemetry/metrics';
import { OPENMETRICS_CONTENT_TYPE } from '../../src/telemetry/openmetrics';
import { SCOPE } from '../../src/telemetry/semconv';
import { request } from '../helpers/http';

const OPENMETRICS_ACCEPT = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5';

/** the real renderer, counting scrapes and renders; a render starts once `expected` scrapes have arrived */
function counting(inner: MetricsRenderer) {
  const state = { scrapes: 0, renders: [] as string[], expected: 1 };
  let arrived: () => void = () => {};
  let allArrived = Promise.resolve();
  const renderer: MetricsRenderer = {
    negotiate(accept) {
      state.scrapes++;
      if (state.scrapes >= state.expected) arrived();
      return inner.negotiate(accept);
    },
    async render(format: MetricsFormat) {
      state.renders.push(format.name);
      await allArrived;
      return inner.render(format);
    },
  };
  /** the next burst: `n` scrapes, renders held until all n reached the handler */
  const burst = (n: number) => {
    state.scrapes = 0;
    state.renders = [];
    state.expected = n;
    allArrived = new Promise<void>((resolve) => (arrived = resolve));
  };
  return { renderer, state, burst };
}

describe('/metrics route: single flight, one gzip, no cache', () => {
  let provider: MeterProvider;
  let server: http.Server;
  let port: number;
  let counted: ReturnType<typeof counting>;
  let failing = false;
  const errors: string[] = [];

  before(async () => {
    const exporter = new PrometheusExporter({ preventServerStart: true });
    provider = new MeterProvider({ readers: [exporter], views: metricViews() });
    const health = new HealthMetrics(provider.getMeter(SCOPE));
    // enough series that the body is worth gzipping
    for (let i = 0; i < 20; i++) health.attemptFinished({ name: `check-${i}`, kind: 'http' } as never, 'success', 5 + i);
    const real = new PrometheusRenderer(exporter);
    counted = counting({
      negotiate: (accept) => real.negotiate(accept),
      render: (format) => (failing ? Promise.reject(new Error('collection broke')) : real.render(format)),
    });
    const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) });
    const handler = metricsHandler(counted.renderer, logger);
    server = http.createServer((req, res) => void handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await provider.shutdown();
  });

  const scrape = (accept?: string) => request(port, '/metrics', { headers: { 'accept-encoding': 'gzip', ...(accept ? { accept } : {}) } });

  it('concurrent scrapes of one format: one render, the same gzipped bytes for all', async () => {
    counted.burst(5);
    const replies = await Promise.all(Array.from({ length: 5 }, () => scrape()));
    assert.deepEqual(counted.state.renders, ['prometheus']);
    for (const reply of replies) {
      assert.deepEqual({ status: reply.status, type: reply.headers['content-type'], encoding: reply.headers['content-encoding'], vary: reply.headers.vary }, { status: 200, type: PROMETHEUS_CONTENT_TYPE, encoding: 'gzip', vary: 'Accept, Accept-Encoding' });
      assert.ok(reply.bytes.equals(replies[0]!.bytes));
    }
    assert.match(gunzipSync(replies[0]!.bytes).toString(), /^healthcheck_probe_duration_seconds_count\{[^}]*healthcheck_name="check-19"[^}]*\} 1$/m);
  });

  it('two formats at once: one render each, each with its content type', async () => {
    counted.burst(4);
    const replies = await Promise.all([scrape(), scrape(OPENMETRICS_ACCEPT), scrape(), scrape(OPENMETRICS_ACCEPT)]);
    assert.deepEqual(counted.state.renders.sort(), ['openmetrics', 'prometheus']);
    assert.deepEqual(replies.map((r) => r.headers['content-type']), [PROMETHEUS_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE]);
    assert.match(gunzipSync(replies[1]!.bytes).toString(), /# EOF\n$/);
  });

  it('a scrape after the render ended renders afresh: nothing is kept between renders', async () => {
    counted.burst(1);
    const first = await scrape();
    assert.deepEqual(counted.state.renders, ['prometheus']);
    counted.burst(1);
    const second = await scrape();
    assert.deepEqual(counted.state.renders, ['prometheus'], 'the second scrape rendered again');
    assert.deepEqual([first.status, second.status], [200, 200]);
  });

  it('a failed collection: 500 and an error line for every scrape that joined it; the next scrape renders again', async () => {
    failing = true;
    counted.burst(3);
    const replies = await Promise.all([scrape(), scrape(), scrape()]);
    failing = false;
    assert.deepEqual(replies.map((r) => [r.status, r.body]), Array(3).fill([500, '# metrics collection failed\n']));
    assert.deepEqual(counted.state.renders, ['prometheus']);
    assert.equal(errors.filter((l) => l.includes('metrics collection failed')).length, 3);
    counted.burst(1);
    assert.equal((await scrape()).status, 200);
  });
});
