/**
 * Admin API behaviour: single flight of forced runs (counted at a real HTTP
 * dependency), reset (breaker closed, counters cleared, version bumped,
 * probes reach the dependency again), diagnostics (shape, redaction), HEAD.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { bearer, call, startSidecar, type RunningSidecar } from '../security/support';

const KEY = 'admin-test-key-0123456789';

describe('POST /admin/checks/{name}/run: single flight', () => {
  let dependency: TestHttpServer;
  let running: RunningSidecar;
  let hold = false;
  const held: ServerResponse[] = [];

  before(async () => {
    dependency = await startHttpServer((_req, res) => {
      if (hold) held.push(res);
      else res.end('ok');
    });
    running = await startSidecar(
      `
server:
  port: 0
  host: 127.0.0.1
  auth: { keys: [ { name: ops, key: "${KEY}", rateLimit: 1000/1m } ] }
  # single flight of 50 callers at once, not load shedding (test/server/overload.test.ts): room for all 50
  overload: { perTurn: 100, maxInFlight: 100 }
defaults: { retry: { attempts: 1 } }
checks:
  - { name: app, kind: http, url: "${dependency.url}/ok", interval: 1h, timeout: 10s }
`,
    );
    await waitFor(() => running.sidecar.store.get('app')?.status === 'UP', { what: 'first scheduled run', timeoutMs: 30_000 });
  });
  after(async () => {
    for (const res of held) res.end('ok');
    await running.stop();
    await dependency.close();
  });

  test('50 concurrent force-runs cause exactly one request at the dependency and all get the same result', async () => {
    const before = dependency.requests();
    hold = true;
    const replies = Promise.all(Array.from({ length: 50 }, () => call(running.port, 'POST', '/admin/checks/app/run', bearer(KEY))));
    // every one of the 50 has joined once its admin log line is written (before it awaits the run)
    await waitFor(() => running.logs.filter((l) => l.includes('"action":"run"')).length >= 50, { what: '50 admin runs joined', timeoutMs: 30_000 });
    await waitFor(() => held.length >= 1, { what: 'the probe at the dependency' });
    hold = false;
    for (const res of held.splice(0)) res.end('ok');
    const answers = await replies;
    assert.equal(dependency.requests() - before, 1, 'exactly one probe request reached the dependency');
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
    const texts = new Set(answers.map((a) => a.text));
    assert.equal(texts.size, 1, 'every caller got the same result JSON');
    const body = answers[0]!.json();
    assert.equal(body.result.ok, true);
    assert.equal(body.result.attempts, 1);
    // and the run after that is a new one
    const again = await call(running.port, 'POST', '/admin/checks/app/run', bearer(KEY));
    assert.equal(again.status, 200);
    assert.equal(dependency.requests() - before, 2);
    assert.notEqual(again.json().result.startedAt, body.result.startedAt);
  });
});

describe('POST /admin/checks/{name}/reset', () => {
  let dependency: TestHttpServer;
  let running: RunningSidecar;
  let status = 500;

  before(async () => {
    dependency = await startHttpServer((_req, res) => {
      res.statusCode = status;
      res.end('x');
    });
    running = await startSidecar(
      `
server: { port: 0, host: 127.0.0.1, auth: { keys: [ { name: ops, key: "${KEY}" } ] } }
defaults: { retry: { attempts: 1 }, breaker: { failures: 2, halfOpenAfter: 1h }, thresholds: { failure: 1 } }
checks:
  - { name: app, kind: http, url: "${dependency.url}/ok", interval: 1h }
`,
    );
    await waitFor(() => running.sidecar.store.get('app')?.status === 'DOWN', { what: 'first scheduled run', timeoutMs: 30_000 });
  });
  after(async () => {
    await running.stop();
    await dependency.close();
  });

  test('closes an open breaker, clears counters, bumps the version; the next run reaches the dependency', async () => {
    // second failure opens the breaker; the third run is rejected without a request
    const second = (await call(running.port, 'POST', '/admin/checks/app/run', bearer(KEY))).json();
    assert.equal(second.result.breaker, 'open');
    const requestsWhenOpen = dependency.requests();
    const rejected = (await call(running.port, 'POST', '/admin/checks/app/run', bearer(KEY))).json();
    assert.equal(rejected.result.outcome, 'rejected');
    assert.equal(dependency.requests(), requestsWhenOpen, 'an open breaker makes no request');
    const beforeReset = running.sidecar.store.get('app')!;
    assert.equal(beforeReset.consecutiveFailures, 3);
    assert.equal(beforeReset.breaker, 'open');

    const reply = await call(running.port, 'POST', '/admin/checks/app/reset', bearer(KEY));
    assert.equal(reply.status, 200);
    const body = reply.json();
    assert.equal(body.check, 'app');
    assert.equal(body.action, 'reset');
    assert.equal(body.state.status, 'UNKNOWN');
    assert.equal(body.state.breaker, 'closed');
    assert.equal(body.state.consecutiveFailures, 0);
    assert.equal(body.state.version, beforeReset.version + 1);
    assert.ok(running.logs.some((l) => l.includes('"action":"reset"') && l.includes('"keyName":"ops"')));

    status = 200;
    const after = (await call(running.port, 'POST', '/admin/checks/app/run', bearer(KEY))).json();
    assert.equal(dependency.requests(), requestsWhenOpen + 1, 'closed breaker: the probe reached the dependency');
    assert.deepEqual([after.status, after.result.outcome, after.result.breaker], ['UP', 'success', 'closed']);
  });
});

describe('GET /admin/diagnostics', () => {
  let running: RunningSidecar;
  const secrets = {
    KEY,
    URL_PW: 'url-password-4f1c',
    HDR: 'header-secret-9a7e',
    CUSTOM: 'custom-secret-77b2',
  };

  before(async () => {
    running = await startSidecar(
      `
server: { port: 0, host: 127.0.0.1, auth: { keys: [ { name: ops, key: "\${KEY}", rateLimit: 5/1s } ] } }
checks:
  - name: api
    kind: http
    url: "http://svc:\${URL_PW}@127.0.0.1:1/x"
    interval: 1h
    headers: { Authorization: "Bearer \${HDR}", X-Custom: "\${CUSTOM}", X-Plain: visible }
    secretHeaders: [X-Custom]
`,
      { env: secrets },
    );
  });
  after(() => running.stop());

  test('effective config with every secret masked, checks, versions, uptime, limiter sizes', async () => {
    const reply = await call(running.port, 'GET', '/admin/diagnostics', bearer(KEY));
    assert.equal(reply.status, 200);
    for (const secret of Object.values(secrets)) assert.ok(!reply.text.includes(secret), `diagnostics leak ${secret}`);
    const body = reply.json();
    assert.deepEqual(body.config.server.auth.keys, [{ name: 'ops', key: '***', rateLimit: { limit: 5, windowMs: 1000 }, scopes: ['monitors:read', 'monitors:write', 'admin'] }]);
    const check = body.config.checks[0];
    assert.equal(check.url, 'http://svc:***@127.0.0.1:1/x');
    assert.deepEqual(check.headers, { Authorization: '***', 'X-Custom': '***', 'X-Plain': 'visible' });
    assert.equal(body.config.secrets, undefined, 'the list of secret values is not shown at all');
    assert.equal(body.versions.node, process.version);
    assert.equal(typeof body.versions.sidecar, 'string');
    assert.equal(typeof body.uptimeSeconds, 'number');
    assert.deepEqual(Object.keys(body.checks.api).sort(), ['breaker', 'consecutiveFailures', 'lastCheckedAt', 'running', 'status', 'version']);
    assert.deepEqual(Object.keys(body.rateLimits).sort(), ['evictedClients', 'maxClients', 'trackedClients', 'trackedKeys']);
    assert.equal(body.rateLimits.maxClients, 10_000);
  });

  test('HEAD answers 200 with headers and no body; a query parameter is 400', async () => {
    const head = await call(running.port, 'HEAD', '/admin/diagnostics', bearer(KEY));
    assert.deepEqual([head.status, head.text], [200, '']);
    const bad = await call(running.port, 'GET', '/admin/diagnostics?x=1', bearer(KEY));
    assert.deepEqual([bad.status, bad.json()], [400, { error: { code: 'bad_parameter', message: 'unknown query parameter "x"' } }]);
  });
});
