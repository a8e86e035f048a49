/**
 * Per-phase HTTP timing (issue 21.9) and the http check's connection gauge
 * (issue 21.7), against real servers on port 0: plain HTTP (reached as
 * "localhost", so there is a DNS lookup) and HTTPS with a certificate made by
 * openssl. Assertions are about presence, order and consistency of the
 * phases — never about how long anything took.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { DataPointType, MeterProvider, MetricReader, type SumMetricData, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { CheckRunner } from '../../src/health/runner';
import { hopPhases, runPhases, HTTP_PHASES, type HopMarks } from '../../src/probes/http-phases';
import { makeCa, makeServerCert, type Pem } from '../helpers/certs';
import { probeMetrics } from '../../src/telemetry/instruments';
import { SCOPE } from '../../src/telemetry/semconv';
import { checkFromYaml, runnerFor } from './support';

class TestReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

const BIG = 100 * 1024;
const handler: http.RequestListener = (req, res) => {
  const path = (req.url ?? '').split('?')[0];
  if (path === '/hop') {
    res.writeHead(302, { location: '/final' });
    res.end();
  } else if (path === '/big') {
    res.end(Buffer.alloc(BIG, 'x'));
  } else if (path === '/final') {
    res.end('final answer');
  } else {
    res.end('hello, phases'); // 13 bytes
  }
};

async function listen(server: http.Server): Promise<number> {
  // keep-alive longer than any gap between two runs of a test, so "reused" is certain
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

const close = (server: http.Server) =>
  new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });

const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const reader = new TestReader();
const probes = probeMetrics(new MeterProvider({ readers: [reader] }).getMeter(SCOPE));
let plain: http.Server;
let secure: https.Server;
let plainPort: number;
let securePort: number;
let ca: Pem;
const runners: CheckRunner[] = [];

function httpRunner(body: string) {
  const built = checkFromYaml(`kind: http\n    ${body.trim()}`, { timeout: '10s' });
  const runner = runnerFor(built.check, built.redactor, undefined, undefined, probes);
  runners.push(runner);
  return runner;
}

/** the attempt span of the last run, and its phase events in the order they were added */
function lastAttempt(): { span: ReadableSpan; events: { name: string; at: number; ms: number; hop: number; connection: string }[] } {
  const span = exporter.getFinishedSpans().filter((s) => s.name.endsWith(' attempt')).at(-1);
  assert.ok(span, 'an attempt span');
  const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;
  const events = span.events
    .filter((e) => e.name.startsWith('http.phase.'))
    .map((e) => ({
      name: e.name.slice('http.phase.'.length),
      at: ms(e.time),
      ms: e.attributes!['healthcheck.http.phase.duration_ms'] as number,
      hop: e.attributes!['healthcheck.http.hop'] as number,
      connection: e.attributes!['healthcheck.http.connection'] as string,
    }));
  return { span, events };
}

const phaseNames = (phases: object | undefined) => Object.keys(phases ?? {});

async function collect() {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

describe('http phases: the pure arithmetic', () => {
  test('a new https connection: every phase, in order, adding up to start → end', () => {
    const marks: HopMarks = { start: 100, https: true, reused: false, lookup: 102, connect: 105, secure: 111, firstByte: 120, end: 121.5 };
    assert.deepEqual(hopPhases(marks), { dns: 2, connect: 3, tls: 6, ttfb: 9, transfer: 1.5 });
    const sum = Object.values(hopPhases(marks)).reduce((a, b) => a + b, 0);
    assert.equal(sum, marks.end! - marks.start);
  });

  test('an IP literal (no lookup): dns 0; plain http: no tls phase', () => {
    assert.deepEqual(hopPhases({ start: 0, https: false, reused: false, connect: 4, firstByte: 7, end: 8 }), { dns: 0, connect: 4, ttfb: 3, transfer: 1 });
  });

  test('a reused keep-alive connection: no dns, connect or tls; ttfb from the request start', () => {
    assert.deepEqual(hopPhases({ start: 50, https: true, reused: true, firstByte: 53, end: 54 }), { ttfb: 3, transfer: 1 });
  });

  test('a request that stopped early has only the phases that ended', () => {
    assert.deepEqual(hopPhases({ start: 0, https: false, lookup: 2 }), { dns: 2 }, 'connect never completed');
    assert.deepEqual(hopPhases({ start: 0, https: true, reused: false, lookup: 1, connect: 2 }), { dns: 1, connect: 1 }, 'TLS handshake never completed');
    assert.deepEqual(hopPhases({ start: 0, https: false, reused: false, connect: 2, firstByte: 5 }), { dns: 0, connect: 2, ttfb: 3 }, 'redirect: the body is not read');
  });

  test('a run sums each phase over its hops (as blackbox_exporter does); a phase no hop had stays absent', () => {
    const first: HopMarks = { start: 0, https: false, reused: false, lookup: 1, connect: 3, firstByte: 6 };
    const second: HopMarks = { start: 7, https: false, reused: true, firstByte: 9, end: 10 };
    assert.deepEqual(runPhases([first, second]), { dns: 1, connect: 2, ttfb: 5, transfer: 1 });
    assert.deepEqual(runPhases([]), {});
  });
});

describe('http phases against real servers', () => {
  before(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(tracerProvider);
    ca = await makeCa(30);
    const leaf = await makeServerCert(ca, 30);
    plain = http.createServer(handler);
    secure = https.createServer({ key: leaf.key, cert: leaf.cert }, handler);
    plainPort = await listen(plain);
    securePort = await listen(secure);
  });

  after(async () => {
    await Promise.all(runners.map((r) => r.close()));
    await Promise.all([close(plain), close(secure)]);
    trace.disable();
    context.disable();
  });

  test('plain http by host name: dns, connect, ttfb, transfer — no tls; events in order; status, size, no redirects in the response', async () => {
    const runner = httpRunner(`url: http://localhost:${plainPort}/`);
    const run = await runner.run('manual');
    assert.equal(run.ok, true, run.message);
    const response = run.response as Record<string, any>;
    assert.equal(response.statusCode, 200);
    assert.equal(response.bodyBytes, 'hello, phases'.length);
    assert.equal(response.redirects, 0);
    assert.equal(response.connection, 'new');
    assert.deepEqual(phaseNames(response.phasesMs), ['dns', 'connect', 'ttfb', 'transfer']);
    for (const ms of Object.values(response.phasesMs as Record<string, number>)) assert.ok(ms >= 0, `${ms} ≥ 0`);

    const { span, events } = lastAttempt();
    assert.deepEqual(events.map((e) => e.name), ['dns', 'connect', 'ttfb', 'transfer']);
    for (let i = 1; i < events.length; i++) assert.ok(events[i - 1]!.at <= events[i]!.at, `${events[i - 1]!.name} ends before ${events[i]!.name}`);
    assert.ok(events.every((e) => e.hop === 0 && e.connection === 'new'));
    // consistency: the span attributes are the sums of the events, and the phases fit inside the attempt
    for (const e of events) assert.equal(span.attributes[`healthcheck.http.phase.${e.name}_ms`], e.ms);
    const attemptMs = (span.endTime[0] - span.startTime[0]) * 1000 + (span.endTime[1] - span.startTime[1]) / 1e6;
    const total = events.reduce((sum, e) => sum + e.ms, 0);
    assert.ok(total <= attemptMs + 0.01, `phases ${total} ms within the attempt's ${attemptMs} ms`);
    assert.equal(span.attributes['http.response.status_code'], 200);
    assert.equal(span.attributes['http.response.body.size'], 'hello, phases'.length);

    // the next run reuses the kept-alive connection: ttfb and transfer only
    const again = await runner.run('manual');
    assert.equal(again.ok, true, again.message);
    const reused = again.response as Record<string, any>;
    assert.equal(reused.connection, 'reused');
    assert.deepEqual(phaseNames(reused.phasesMs), ['ttfb', 'transfer']);
    assert.deepEqual(lastAttempt().events.map((e) => [e.name, e.connection]), [['ttfb', 'reused'], ['transfer', 'reused']]);
  });

  test('https: the tls phase sits between connect and ttfb; an IP literal has dns 0', async () => {
    const runner = httpRunner([`url: https://127.0.0.1:${securePort}/`, 'tls:', `  ca: ${JSON.stringify(ca.cert)}`].join('\n    '));
    const run = await runner.run('manual');
    assert.equal(run.ok, true, run.message);
    const response = run.response as Record<string, any>;
    assert.deepEqual(phaseNames(response.phasesMs), ['dns', 'connect', 'tls', 'ttfb', 'transfer']);
    assert.equal(response.phasesMs.dns, 0, 'no lookup for an IP literal');
    const { events } = lastAttempt();
    assert.deepEqual(events.map((e) => e.name), ['dns', 'connect', 'tls', 'ttfb', 'transfer']);
    const at = Object.fromEntries(events.map((e) => [e.name, e.at]));
    assert.ok(at.connect! <= at.tls! && at.tls! <= at.ttfb! && at.ttfb! <= at.transfer!, JSON.stringify(at));

    const again = await runner.run('manual');
    assert.equal((again.response as Record<string, any>).connection, 'reused');
    assert.deepEqual(phaseNames((again.response as Record<string, any>).phasesMs), ['ttfb', 'transfer'], 'a reused TLS connection has no handshake');
  });

  test('a redirect: redirects 1, phases summed over both hops (the 3xx body is not read: no transfer for it)', async () => {
    const runner = httpRunner(`url: http://127.0.0.1:${plainPort}/hop\n    followRedirects: true`);
    const run = await runner.run('manual');
    assert.equal(run.ok, true, run.message);
    const response = run.response as Record<string, any>;
    assert.equal(response.redirects, 1);
    assert.equal(response.bodyBytes, 'final answer'.length);
    const { events } = lastAttempt();
    assert.deepEqual(
      events.map((e) => `${e.hop}:${e.name}`),
      ['0:dns', '0:connect', '0:ttfb', '1:ttfb', '1:transfer'],
      'the second hop reuses the first hop’s connection (same origin)',
    );
    for (const phase of HTTP_PHASES) {
      const sum = events.filter((e) => e.name === phase).reduce((s, e) => s + e.ms, 0);
      if (response.phasesMs[phase] !== undefined) assert.ok(Math.abs(response.phasesMs[phase] - sum) < 0.01, `${phase}: ${response.phasesMs[phase]} = Σ ${sum}`);
    }
  });

  test('a body larger than the assertions read: bodyBytes is what was read (64 KiB), status and phases still there', async () => {
    const runner = httpRunner(`url: http://127.0.0.1:${plainPort}/big\n    expect: { bodyContains: "x" }`);
    const run = await runner.run('manual');
    assert.equal(run.ok, true, run.message);
    const response = run.response as Record<string, any>;
    assert.equal(response.bodyBytes, 64 * 1024);
    assert.ok(phaseNames(response.phasesMs).includes('transfer'));
    // without body assertions the whole body is drained and counted
    const drained = await httpRunner(`url: http://127.0.0.1:${plainPort}/big`).run('manual');
    assert.equal((drained.response as Record<string, any>).bodyBytes, BIG);
  });

  test('a failed status still reports the response; a refused connection reports none', async () => {
    const notFound = await httpRunner(`url: http://127.0.0.1:${plainPort}/\n    expect: { status: [204] }`).run('manual');
    assert.equal(notFound.ok, false);
    assert.equal((notFound.response as Record<string, any>).statusCode, 200);
    const refused = await httpRunner(`url: http://127.0.0.1:1/`).run('manual');
    assert.equal(refused.ok, false);
    assert.equal(refused.response, undefined);
  });

  test('healthcheck.http.phase.duration: one series per check and phase, tls only for the https check; healthcheck.connections counts the kept socket', async () => {
    const name = 'probe-under-test'; // every check of the support config has this name: read one at a time
    for (const r of runners.splice(0)) await r.close();
    await collect(); // forget what earlier tests recorded (cumulative per series: compare before/after)
    const runner = httpRunner(`url: https://localhost:${securePort}/`.concat(`\n    tls:\n      ca: ${JSON.stringify(ca.cert)}`));
    const countsOf = async () => {
      const all = await collect();
      const histogram = all.find((m) => m.descriptor.name === 'healthcheck.http.phase.duration') as HistogramMetricData | undefined;
      assert.ok(histogram, 'phase histogram exported');
      assert.equal(histogram.dataPointType, DataPointType.HISTOGRAM);
      assert.equal(histogram.descriptor.unit, 's');
      const counts: Record<string, number> = {};
      for (const p of histogram.dataPoints) if (p.attributes['healthcheck.name'] === name) counts[p.attributes['healthcheck.http.phase'] as string] = p.value.count;
      const gauge = all.find((m) => m.descriptor.name === 'healthcheck.connections') as SumMetricData | undefined;
      const connections = Object.fromEntries(
        (gauge?.dataPoints ?? []).filter((p) => p.attributes['healthcheck.name'] === name).map((p) => [p.attributes['db.client.connection.state'], p.value]),
      );
      return { counts, connections };
    };
    const before = await runner.run('manual');
    assert.equal(before.ok, true, before.message);
    const first = await countsOf();
    await runner.run('manual'); // reused: ttfb and transfer only
    const second = await countsOf();
    for (const phase of ['dns', 'connect', 'tls']) assert.equal(second.counts[phase], first.counts[phase], `${phase}: no record for a reused connection`);
    for (const phase of ['ttfb', 'transfer']) assert.equal(second.counts[phase], first.counts[phase]! + 1, `${phase}: one record per run`);
    assert.ok(first.counts.tls! >= 1, 'the https check recorded its handshake');
    assert.deepEqual(second.connections, { idle: 1, used: 0 }, 'one kept-alive socket, idle between runs');

    await runner.close();
    const closed = await countsOf();
    assert.deepEqual(closed.connections, { idle: 0, used: 0 }, "a closed check reports it holds nothing");
  });
});
