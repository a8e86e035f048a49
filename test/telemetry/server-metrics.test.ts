/**
 * The sidecar's own HTTP server metrics and the new counters (issues 21.6,
 * 21.7) through the compiled CLI and its /metrics: exact counts of
 * http.server.request.duration per method, route and status for the requests
 * this test made (kubelet fast path, routed endpoints, 404, 401, 429, 503),
 * authentication failures by reason (never the key), breaker transitions of a
 * check whose dependency is refused and comes back (a real HTTP server behind
 * the fault proxy), notification attempts by outcome against a real webhook
 * receiver that fails once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { request } from '../helpers/http';
import { ensureBuilt } from '../helpers/paths';
import { parsePrometheus, startCli, type CliProcess, type Family } from './support';

const KEY = 'server-metrics-key-CANARY-7c1e';
const AUTH = { authorization: `Bearer ${KEY}` };

describe('server metrics and counters through the compiled CLI', () => {
  let cli: CliProcess | undefined;
  let web: TestHttpServer;
  let proxy: FaultProxy;
  let hook: TestHttpServer;
  const hookStatuses = [500];
  let hookCalls = 0;

  const scrape = async () => {
    const reply = await request(cli!.port, '/metrics', { headers: AUTH }); // the key's quota, not the anonymous one this test exhausts
    assert.equal(reply.status, 200);
    assert.ok(!reply.body.includes(KEY), 'the key is not in /metrics');
    return parsePrometheus(reply.body);
  };
  const value = (family: Family | undefined, labels: Record<string, string>, suffix = '') =>
    family?.samples.find((s) => s.name === `${family.name}${suffix}` && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;

  before(async () => {
    ensureBuilt();
    web = await startHttpServer((_req, res) => res.end('ok'));
    proxy = await startFaultProxy({ host: '127.0.0.1', port: web.port });
    hook = await startHttpServer((_req, res) => {
      hookCalls++;
      res.writeHead(hookStatuses.shift() ?? 200).end();
    });
    cli = await startCli(
      `
server:
  port: 0
  host: 127.0.0.1
  drainDelay: 0ms
  auth: { keys: [{ name: ops, key: ${KEY}, rateLimit: 1000/1m }], anonymousRateLimit: 6/1h }
telemetry: { serviceName: server-metrics-test }
defaults: { interval: 300ms, timeout: 250ms, retry: { attempts: 1 }, thresholds: { failure: 1, success: 1 } }
checks:
  - { name: web, kind: http, url: "http://127.0.0.1:${proxy.port}/", breaker: { failures: 2, halfOpenAfter: 300ms } }
notifications:
  - { name: hook, kind: webhook, url: "${hook.url}/", cooldown: 0s, retry: { attempts: 3, backoff: { initial: 10ms, max: 10ms } } }
`,
      { OTEL_TRACES_EXPORTER: 'none' },
    );
    await waitFor(async () => (await request(cli!.port, '/readyz')).status === 200, { what: 'ready', timeoutMs: 15_000 });
  });
  after(async () => {
    await cli?.stop();
    await Promise.all([proxy?.close(), web?.close(), hook?.close()]);
  });

  it('http.server.request.duration: every answer counted by method, route and status — fast path, routed, 404, 401, 429', async () => {
    const before = (await scrape()).get('http_server_request_duration_seconds');
    const readyBefore = (status: string) => value(before, { http_request_method: 'GET', http_route: '/readyz', http_response_status_code: status }, '_count');
    const ready: Record<string, number> = { '200': 0, '503': 0 };
    // the fast path (7) and the full path (?verbose), one route; 200 or 503 as the check stands on a busy machine
    for (const path of ['/readyz', '/readyz', '/readyz', '/readyz', '/readyz', '/readyz', '/readyz', '/readyz?verbose']) ready[String((await request(cli!.port, path)).status)]!++;
    const head = (await request(cli!.port, '/readyz', { method: 'HEAD' })).status;
    const one = (await request(cli!.port, '/health/web', { headers: AUTH })).status;
    assert.equal((await request(cli!.port, '/nope')).status, 404);
    assert.equal((await request(cli!.port, '/admin/diagnostics')).status, 401); // missing key
    assert.equal((await request(cli!.port, '/admin/diagnostics', { headers: { authorization: 'Bearer wrong-key-guess-0001' } })).status, 401);
    const limited: number[] = [];
    for (let i = 0; i < 8; i++) limited.push((await request(cli!.port, '/health')).status);
    assert.ok(limited.includes(429), `anonymous /health beyond 6/1h: ${limited.join(',')}`);
    const rateLimited = limited.filter((s) => s === 429).length;

    const families = await scrape();
    const duration = families.get('http_server_request_duration_seconds')!;
    assert.equal(duration.type, 'histogram');
    const count = (labels: Record<string, string>) => value(duration, labels, '_count');
    for (const status of ['200', '503']) assert.equal(count({ http_request_method: 'GET', http_route: '/readyz', http_response_status_code: status }) - readyBefore(status), ready[status], `GET /readyz ${status}`);
    assert.equal(count({ http_request_method: 'HEAD', http_route: '/readyz', http_response_status_code: String(head) }), 1);
    assert.equal(count({ http_request_method: 'GET', http_route: '/health/{check}', http_response_status_code: String(one) }), 1);
    assert.equal(count({ http_request_method: 'GET', http_route: '/admin/diagnostics', http_response_status_code: '401' }), 2);
    assert.equal(count({ http_request_method: 'GET', http_route: '/health', http_response_status_code: '429' }), rateLimited);
    const notFound = duration.samples.find((s) => s.name.endsWith('_count') && s.labels.http_response_status_code === '404');
    assert.equal(notFound?.value, 1);
    assert.equal(notFound?.labels.http_route, undefined, 'no route matched: no http.route');
    // sum and buckets are consistent with the count
    const inf = value(duration, { http_request_method: 'HEAD', http_route: '/readyz', http_response_status_code: String(head), le: '+Inf' }, '_bucket');
    assert.equal(inf, 1);

    const auth = families.get('healthcheck_server_auth_failures_total')!;
    assert.equal(value(auth, { healthcheck_auth_reason: 'missing' }), 1);
    assert.equal(value(auth, { healthcheck_auth_reason: 'wrong_key' }), 1);
    assert.equal(value(auth, { healthcheck_auth_reason: 'rate_limited' }), rateLimited);
  });

  it('breaker transitions closed → open → half-open → closed, and notification attempts by outcome; /readyz 503 counted', async () => {
    proxy.setMode('refuse');
    await waitFor(async () => value((await scrape()).get('healthcheck_breaker_transitions_total'), { healthcheck_name: 'web', healthcheck_from: 'closed', healthcheck_to: 'open' }) >= 1, {
      what: 'the breaker to open',
      timeoutMs: 15_000,
    });
    assert.equal((await request(cli!.port, '/readyz')).status, 503);
    proxy.setMode('pass');
    await waitFor(async () => value((await scrape()).get('healthcheck_breaker_transitions_total'), { healthcheck_name: 'web', healthcheck_from: 'half-open', healthcheck_to: 'closed' }) >= 1, {
      what: 'the breaker to close again',
      timeoutMs: 15_000,
    });
    await waitFor(async () => (await request(cli!.port, '/readyz')).status === 200, { what: 'ready again', timeoutMs: 10_000 });
    const families = await scrape();
    const breaker = families.get('healthcheck_breaker_transitions_total')!;
    assert.ok(value(breaker, { healthcheck_name: 'web', healthcheck_from: 'open', healthcheck_to: 'half-open' }) >= 1);
    const duration = families.get('http_server_request_duration_seconds')!;
    assert.ok(value(duration, { http_request_method: 'GET', http_route: '/readyz', http_response_status_code: '503' }, '_count') >= 1);

    // DOWN and UP were notified: the first delivery attempt got 500, every later one 200
    await waitFor(async () => value((await scrape()).get('healthcheck_notification_attempts_total'), { notification_target: 'hook', healthcheck_outcome: 'success' }) >= 2, {
      what: 'both notifications delivered',
      timeoutMs: 15_000,
    });
    const attempts = (await scrape()).get('healthcheck_notification_attempts_total')!;
    assert.equal(value(attempts, { notification_target: 'hook', healthcheck_outcome: 'failure' }), 1);
    assert.equal(value(attempts, { notification_target: 'hook', healthcheck_outcome: 'success' }), hookCalls - 1);
  });
});
