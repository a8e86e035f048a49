/**
 * Spans as they leave the compiled CLI (a fresh process: the instrumentations'
 * require hooks are installed by telemetry/sdk before http/ioredis/pg load),
 * received and decoded by the OTLP receiver in test/helpers:
 *   run span → attempt span(s) → ioredis / pg / http client spans,
 *   attributes, status, retry and breaker events, a timeout (fault proxy
 *   black hole), a breaker rejection; no password, key or token anywhere in
 *   the exported bytes; no spans for /livez, /readyz, /metrics; SIGTERM
 *   flushes what is pending and exits 0.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startOtlpReceiver, SPAN_KIND, STATUS_CODE, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver';
import { startPrivatePostgres, startPrivateRedis, type PrivatePostgres, type PrivateRedis } from '../helpers/private-services';
import { REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { VERSION } from '../../src/version';
import { startCli, type CliProcess } from './support';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';

const REDIS_PASSWORD = 'redis-canary-Pw7731';
const PG_PASSWORD = 'pg-canary-Pw5513';
const HTTP_PASSWORD = 'http-canary-Pw9021';
const HEADER_TOKEN = 'hdr-canary-Tok4460';
const QUERY_TOKEN = 'qry-canary-Tok8812';
const CANARIES = [REDIS_PASSWORD, PG_PASSWORD, HTTP_PASSWORD, HEADER_TOKEN, QUERY_TOKEN];

const isRun = (name: string) => (s: ReceivedSpan) => s.name === `healthcheck ${name}` && s.parentSpanId === '';

function tree(receiver: OtlpReceiver, span: ReceivedSpan, depth = 0): string[] {
  const status = ['UNSET', 'OK', 'ERROR'][span.status.code];
  const line = `${'  '.repeat(depth)}${span.name} [${['', 'internal', 'server', 'client'][span.kind]}] ${status}${span.events.length ? ` events: ${span.events.map((e) => e.name).join(', ')}` : ''}`;
  return [line, ...receiver.children(span).flatMap((child) => tree(receiver, child, depth + 1))];
}

describe('traces: the compiled CLI exporting to a real OTLP/HTTP receiver', () => {
  let receiver: OtlpReceiver;
  let redis: PrivateRedis;
  let postgres: PrivatePostgres;
  let web: TestHttpServer;
  let blackhole: FaultProxy;
  let flaky: FaultProxy;
  let cli: CliProcess | undefined;
  let exit: { code: number | null; signal: NodeJS.Signals | null; ms: number };
  const webRequests: { authorization?: string; url?: string }[] = [];

  before(async () => {
    ensureBuilt();
    receiver = await startOtlpReceiver();
    [redis, postgres] = await Promise.all([startPrivateRedis(REDIS_PASSWORD), startPrivatePostgres(PG_PASSWORD)]);
    web = await startHttpServer((req, res) => {
      webRequests.push({ authorization: req.headers.authorization, url: req.url });
      res.writeHead(200).end('ok');
    });
    blackhole = await startFaultProxy({ host: '127.0.0.1', port: web.port });
    blackhole.setMode('blackhole');
    const { host, port } = { host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) };
    flaky = await startFaultProxy({ host, port });
    const webUrl = new URL(`${web.url}/healthz`);
    webUrl.username = 'probe';
    webUrl.password = HTTP_PASSWORD;
    const yaml = `
server: { port: 0, host: 127.0.0.1, drainDelay: 200ms }
telemetry: { serviceName: from-config }
# the checks meant to succeed get a timeout no busy machine reaches; only slow (the black hole) times out
defaults: { interval: 2s, timeout: 2s, retry: { attempts: 2, backoff: { initial: 10ms, max: 20ms }, jitter: false }, breaker: { failures: 3, halfOpenAfter: 1m } }
checks:
  - { name: cache, kind: redis, url: "\${CACHE_URL}" }
  - { name: db, kind: postgres, url: "\${DB_URL}", query: "SELECT 1" }
  - name: web
    kind: http
    url: "${webUrl.toString()}?token=\${QUERY_TOKEN}"
    headers: { Authorization: "Bearer \${HEADER_TOKEN}" }
  - { name: slow, kind: http, url: "http://127.0.0.1:${blackhole.port}/healthz", critical: false, interval: 400ms, timeout: 150ms }
  - { name: flaky, kind: redis, url: "redis://127.0.0.1:${flaky.port}", critical: false, interval: 1s, timeout: 1s, retry: { attempts: 1 }, breaker: { failures: 1, halfOpenAfter: 1m } }
`;
    cli = await startCli(yaml, {
      CACHE_URL: redis.url(REDIS_PASSWORD),
      DB_URL: postgres.url('postgres', PG_PASSWORD),
      QUERY_TOKEN,
      HEADER_TOKEN,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_SERVICE_NAME: 'from-env',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test',
      K8S_POD_NAME: 'pod-7',
      K8S_NAMESPACE_NAME: 'shop',
      K8S_NODE_NAME: 'node-3',
    });
    // flaky: one good run, then refused → its breaker (failures: 1) opens → the next run is rejected
    await receiver.waitFor((spans) => spans.some((s) => isRun('flaky')(s) && s.status.code === STATUS_CODE.ok));
    flaky.setMode('refuse');
    // our own endpoints, hit while spans are being recorded: they must make none
    for (let i = 0; i < 5; i++) {
      for (const path of ['/livez', '/readyz', '/metrics', '/health', '/-/healthy']) await get(cli.port, path);
    }
    await receiver.waitFor(
      (spans) =>
        spans.some((s) => isRun('flaky')(s) && s.attributes['healthcheck.outcome'] === 'rejected') &&
        spans.filter((s) => isRun('slow')(s) && s.attributes['healthcheck.outcome'] === 'timeout').length >= 1 &&
        ['cache', 'db', 'web'].every((name) => spans.some((s) => isRun(name)(s) && s.status.code === STATUS_CODE.ok)),
      30_000,
    );
    const total = receiver.spans.length;
    exit = await cli.stop('SIGTERM');
    // spans recorded between the last batch and SIGTERM were flushed before exit
    assert.ok(receiver.spans.length >= total);
  });

  after(async () => {
    cli?.kill();
    await Promise.all([receiver?.close(), redis?.stop(), postgres?.stop(), web?.close(), blackhole?.close(), flaky?.close()]);
  });

  it('decodes every request (protobuf, the OTLP default) without errors', () => {
    assert.deepEqual(receiver.errors, []);
    assert.ok(receiver.requests.length > 0);
    assert.deepEqual([...new Set(receiver.requests.map((r) => r.contentType))], ['application/x-protobuf']);
  });

  it('exits 0 on SIGTERM by itself after flushing (no hang: not killed by the stop guard)', () => {
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `exit after ${Math.round(exit.ms)} ms`);
    const records = cli!.records();
    assert.equal(records.filter((r) => typeof r.msg === 'string' && r.msg.startsWith('traces: OTLP http/protobuf to ')).length, 1);
  });

  it('resource: OTEL_SERVICE_NAME wins over the config, service.version, k8s.* from the downward API env, OTEL_RESOURCE_ATTRIBUTES', () => {
    const resource = receiver.spans[0]!.resource;
    const pick = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, resource[k]]));
    assert.deepEqual(pick(['service.name', 'service.version', 'k8s.pod.name', 'k8s.namespace.name', 'k8s.node.name', 'deployment.environment.name']), {
      'service.name': 'from-env',
      'service.version': VERSION,
      'k8s.pod.name': 'pod-7',
      'k8s.namespace.name': 'shop',
      'k8s.node.name': 'node-3',
      'deployment.environment.name': 'test',
    });
  });

  it('redis success: run → attempt → ioredis client spans with db semantic conventions', () => {
    const run = receiver.spans.filter(isRun('cache')).find((s) => s.status.code === STATUS_CODE.ok)!;
    assert.deepEqual(
      { kind: run.kind, status: run.status, attributes: run.attributes, scope: run.scope.name },
      {
        kind: SPAN_KIND.internal,
        status: { code: STATUS_CODE.ok, message: '' },
        attributes: {
          'healthcheck.name': 'cache',
          'healthcheck.kind': 'redis',
          'healthcheck.critical': true,
          'healthcheck.trigger': 'schedule',
          'healthcheck.outcome': 'success',
          'healthcheck.attempts': 1,
          'healthcheck.breaker.state': 'closed',
        },
        scope: 'otel-health-sidecar',
      },
    );
    const [attempt, ...more] = receiver.children(run);
    assert.equal(more.length, 0);
    assert.deepEqual(
      { name: attempt!.name, status: attempt!.status, attributes: attempt!.attributes },
      {
        name: 'healthcheck cache attempt',
        status: { code: STATUS_CODE.ok, message: '' },
        attributes: { 'healthcheck.name': 'cache', 'healthcheck.kind': 'redis', 'healthcheck.attempt': 1, 'healthcheck.outcome': 'success' },
      },
    );
    const ping = receiver.children(attempt!).find((s) => s.name === 'ping')!;
    assert.deepEqual(
      { kind: ping.kind, attributes: ping.attributes, scope: ping.scope.name },
      {
        kind: SPAN_KIND.client,
        attributes: { 'db.system.name': 'redis', 'db.operation.name': 'ping', 'db.query.text': 'ping', 'server.address': '127.0.0.1', 'server.port': redis.port },
        scope: '@opentelemetry/instrumentation-ioredis',
      },
    );
    // the first run also shows the connection being made and authenticated, below the attempt
    const first = receiver.spans.filter(isRun('cache'))[0]!;
    const clientNames = receiver.children(receiver.children(first)[0]!).map((s) => s.name);
    assert.ok(clientNames.includes('connect') && clientNames.includes('auth') && clientNames.includes('ping'), clientNames.join(', '));
  });

  it('postgres success: pg client spans (connect, query) with db.system.name, db.namespace, server.*, the query text and nothing else', () => {
    const run = receiver.spans.filter(isRun('db'))[0]!;
    assert.equal(run.status.code, STATUS_CODE.ok);
    const attempt = receiver.children(run)[0]!;
    const clients = receiver.children(attempt);
    const connect = clients.find((s) => s.name === 'pg.connect')!;
    const query = clients.find((s) => s.name.startsWith('pg.query'))!;
    const base = { 'db.system.name': 'postgresql', 'db.namespace': 'postgres', 'server.address': '127.0.0.1', 'server.port': postgres.port };
    assert.deepEqual({ kind: connect.kind, attributes: connect.attributes }, { kind: SPAN_KIND.client, attributes: base });
    assert.deepEqual({ kind: query.kind, name: query.name, attributes: query.attributes }, { kind: SPAN_KIND.client, name: 'pg.query:SELECT postgres', attributes: { ...base, 'db.query.text': 'SELECT 1' } });
  });

  it('http success: the client span under the attempt, url.full without credentials or the secret query value', () => {
    const run = receiver.spans.filter(isRun('web')).find((s) => s.status.code === STATUS_CODE.ok)!;
    const attempt = receiver.children(run)[0]!;
    const [client] = receiver.children(attempt);
    assert.deepEqual(
      { name: client!.name, kind: client!.kind, status: client!.status.code, attributes: client!.attributes },
      {
        name: 'GET',
        kind: SPAN_KIND.client,
        status: STATUS_CODE.unset,
        attributes: {
          'http.request.method': 'GET',
          'server.address': '127.0.0.1',
          'server.port': web.port,
          'url.full': `http://REDACTED:***@127.0.0.1:${web.port}/healthz?token=***`,
          'user_agent.original': 'otel-health-sidecar',
          'http.response.status_code': 200,
          'network.peer.address': '127.0.0.1',
          'network.peer.port': web.port,
          'network.protocol.version': '1.1',
        },
      },
    );
    // the probe did send the secrets (so their absence from spans means something)
    assert.ok(webRequests.some((r) => r.authorization === `Bearer ${HEADER_TOKEN}` && r.url === `/healthz?token=${QUERY_TOKEN}`));
  });

  it('timeout (black hole): run ERROR with the message, two attempts each timed out, a retry event between them', () => {
    const run = receiver.spans.filter(isRun('slow')).find((s) => s.attributes['healthcheck.outcome'] === 'timeout')!;
    assert.deepEqual(
      { status: run.status, attempts: run.attributes['healthcheck.attempts'], events: run.events.map((e) => ({ name: e.name, attributes: e.attributes })) },
      {
        status: { code: STATUS_CODE.error, message: 'timed out after 150ms' },
        attempts: 2,
        events: [{ name: 'retry', attributes: { 'healthcheck.attempt': 1, 'healthcheck.retry.delay_ms': 10, 'healthcheck.retry.reason': 'Operation timed out after 150ms' } }],
      },
    );
    const attempts = receiver.children(run);
    assert.deepEqual(
      attempts.map((a) => ({ name: a.name, n: a.attributes['healthcheck.attempt'], outcome: a.attributes['healthcheck.outcome'], status: a.status })),
      [1, 2].map((n) => ({ name: 'healthcheck slow attempt', n, outcome: 'timeout', status: { code: STATUS_CODE.error, message: 'timed out after 150ms' } })),
    );
    for (const attempt of attempts) {
      const clients = receiver.children(attempt);
      assert.deepEqual(clients.map((c) => [c.name, c.kind]), [['GET', SPAN_KIND.client]], 'the aborted request is a client span under its attempt');
    }
  });

  it('breaker: the failure that opens it carries a breaker.state_change event; the next run is rejected without an attempt', () => {
    const runs = receiver.spans.filter(isRun('flaky'));
    const opening = runs.find((s) => s.events.some((e) => e.name === 'breaker.state_change' && e.attributes['healthcheck.breaker.state'] === 'open'));
    assert.ok(opening, `no run with a breaker.state_change event:\n${runs.map((r) => tree(receiver, r).join('\n')).join('\n')}`);
    assert.equal(opening.status.code, STATUS_CODE.error);
    assert.equal(opening.attributes['error.type'], 'ERR_PROBE_CONNECT', 'the run names why it failed (the connection was cut)');
    const rejected = runs.find((s) => s.attributes['healthcheck.outcome'] === 'rejected')!;
    // the first rejected run is a scheduled one, or an event-triggered confirmation run when
    // the dropped Redis connection started an event episode (README, "Event-driven re-probe")
    const { 'healthcheck.trigger': trigger, ...attributes } = rejected.attributes;
    assert.ok(trigger === 'schedule' || trigger === 'event', `trigger ${String(trigger)}`);
    assert.deepEqual(
      { status: rejected.status.code, message: rejected.status.message.startsWith('circuit breaker open'), attributes: { ...attributes, 'healthcheck.trigger': 'schedule' }, children: receiver.children(rejected).length },
      {
        status: STATUS_CODE.error,
        message: true,
        attributes: {
          'healthcheck.name': 'flaky',
          'healthcheck.kind': 'redis',
          'healthcheck.critical': false,
          'healthcheck.trigger': 'schedule',
          'healthcheck.outcome': 'rejected',
          'healthcheck.attempts': 0,
          'healthcheck.breaker.state': 'open',
          'error.type': 'ERR_BREAKER_OPEN',
        },
        children: 0,
      },
    );
  });

  it('every span belongs to a probe run: the sidecar\'s own endpoints made none, and no span is a server span', () => {
    const roots = new Set(receiver.spans.filter((s) => s.parentSpanId === '').map((s) => s.name));
    assert.deepEqual([...roots].sort(), ['healthcheck cache', 'healthcheck db', 'healthcheck flaky', 'healthcheck slow', 'healthcheck web']);
    assert.deepEqual(receiver.spans.filter((s) => s.kind === SPAN_KIND.server), []);
    const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
    for (const span of receiver.spans) {
      let cursor = span;
      while (cursor.parentSpanId) {
        const parent = byId.get(cursor.parentSpanId);
        assert.ok(parent, `span ${span.name} has a parent that was never exported`);
        cursor = parent;
      }
      assert.ok(cursor.name.startsWith('healthcheck '));
    }
  });

  it('no password, key or token appears anywhere in the exported bytes (or the log)', () => {
    const raw = Buffer.concat(receiver.requests.map((r) => r.body));
    for (const canary of CANARIES) {
      assert.equal(raw.indexOf(canary), -1, `${canary} leaked into an exported span`);
      assert.ok(!cli!.lines.some((l) => l.includes(canary)), `${canary} leaked into the log`);
    }
  });

  it('sample tree (for docs/telemetry.md)', () => {
    const slow = receiver.spans.filter(isRun('slow')).find((s) => s.attributes['healthcheck.outcome'] === 'timeout')!;
    const db = receiver.spans.filter(isRun('db'))[0]!;
    const flakyRuns = receiver.spans.filter(isRun('flaky'));
    const opening = flakyRuns.find((r) => [r, ...receiver.children(r)].some((s) => s.events.some((e) => e.name === 'breaker.state_change')))!;
    const rejected = flakyRuns.find((r) => r.attributes['healthcheck.outcome'] === 'rejected')!;
    const lines = [...tree(receiver, db), ...tree(receiver, slow), ...tree(receiver, opening), ...tree(receiver, rejected)];
    assert.deepEqual(lines.slice(0, 4), ['healthcheck db [internal] OK', '  healthcheck db attempt [internal] OK', '    pg.connect [client] UNSET', '    pg.query:SELECT postgres [client] UNSET']);
    if (process.env.PRINT_SPAN_TREE) process.stdout.write(`${lines.join('\n')}\n`);
  });
});

describe('traces: http/json when asked for, off without an endpoint', () => {
  let receiver: OtlpReceiver;
  let cli: CliProcess | undefined;

  before(async () => {
    ensureBuilt();
    receiver = await startOtlpReceiver();
  });

  after(async () => {
    cli?.kill();
    await receiver?.close();
  });

  it('OTEL_EXPORTER_OTLP_PROTOCOL=http/json and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: JSON arrives at that exact URL and decodes to the same tree', async () => {
    cli = await startCli(`
server: { port: 0, host: 127.0.0.1, drainDelay: 0ms }
defaults: { interval: 300ms, timeout: 250ms }
checks:
  - { name: cache, kind: redis, url: "${REDIS_URL}" }
`, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100' });
    await receiver.waitFor((spans) => spans.some((s) => s.name === 'ping'));
    const exit = await cli.stop();
    assert.equal(exit.code, 0);
    assert.deepEqual(receiver.errors, []);
    assert.deepEqual([...new Set(receiver.requests.map((r) => r.contentType))], ['application/json']);
    const ping = receiver.spans.find((s) => s.name === 'ping')!;
    const attempt = receiver.spans.find((s) => s.spanId === ping.parentSpanId)!;
    const run = receiver.spans.find((s) => s.spanId === attempt.parentSpanId)!;
    assert.deepEqual([run.name, attempt.name, ping.name, run.parentSpanId], ['healthcheck cache', 'healthcheck cache attempt', 'ping', '']);
    assert.equal(run.resource['service.name'], 'health-sidecar');
  });

  it('no endpoint: one "traces disabled" line, nothing sent, probes still run and /metrics still works', async () => {
    receiver.clear();
    cli = await startCli(`
server: { port: 0, host: 127.0.0.1, drainDelay: 0ms }
defaults: { interval: 200ms, timeout: 150ms }
checks:
  - { name: cache, kind: redis, url: "${REDIS_URL}" }
`, {});
    const port = cli.port;
    await waitFor(async () => (await get(port, '/metrics')).body.includes('healthcheck_probe_attempts_total{healthcheck_name="cache"'), { timeoutMs: 30_000, what: 'a counted attempt' });
    const exit = await cli.stop();
    assert.equal(exit.code, 0);
    const disabled = cli.records().filter((r) => typeof r.msg === 'string' && r.msg.startsWith('traces disabled'));
    assert.deepEqual(disabled.map((r) => r.msg), ['traces disabled: no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set']);
    assert.equal(receiver.requests.length, 0);
  });
});
