/**
 * Who may do and see what (SPEC §4): every admin endpoint × {no key, wrong
 * key, right key as Bearer, right key as X-API-Key}; the admin API off when no
 * key is configured; showDetails never | when-authorized | always on /health,
 * /health/{check}, /readyz?verbose and /health/system; kubelet probes never
 * need a key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freePort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { apiKey, bearer, call, startSidecar, type RunningSidecar } from '../security/support';

const OPS_KEY = 'ops-key-0123456789abcdef';
const CI_KEY = 'ci-key-fedcba9876543210';
const WRONG_KEY = 'not-the-key-0123456789';

let dependency: TestHttpServer;
let closedPort: number;

function yaml(showDetails: string, keys = true): string {
  return `
server:
  port: 0
  host: 127.0.0.1
  showDetails: ${showDetails}
  auth:
${keys ? `    keys:
      - name: ops
        key: \${OPS_KEY}
        rateLimit: 10000/1m
      - name: ci
        key: \${CI_KEY}
        rateLimit: 10000/1m
` : ''}    anonymousRateLimit: 10000/1m
defaults:
  retry: { attempts: 1 }
checks:
  - name: app
    kind: http
    url: ${dependency.url}/ok
    interval: 1h
    groups: [live, ready]
  - name: dep
    kind: tcp
    url: tcp://127.0.0.1:${closedPort}
    interval: 1h
    critical: false
`;
}

async function start(showDetails: string, keys = true): Promise<RunningSidecar> {
  const running = await startSidecar(yaml(showDetails, keys), { env: { OPS_KEY, CI_KEY } });
  await waitFor(() => running.sidecar.store.all().every((s) => s.status !== 'UNKNOWN'), { what: 'first results', timeoutMs: 30_000 });
  return running;
}

before(async () => {
  dependency = await startHttpServer((_req, res) => res.end('ok'));
  closedPort = await freePort();
});
after(() => dependency.close());

const CREDENTIALS = {
  none: {},
  wrong: bearer(WRONG_KEY),
  bearer: bearer(OPS_KEY),
  xApiKey: apiKey(OPS_KEY),
} as const;

const ADMIN = [
  { method: 'POST', path: '/admin/checks/app/run' },
  { method: 'POST', path: '/admin/checks/app/reset' },
  { method: 'GET', path: '/admin/diagnostics' },
  { method: 'GET', path: '/admin/notifications/dead' },
  { method: 'POST', path: '/admin/notifications/dead' },
  { method: 'GET', path: '/admin/notifications/pending' },
] as const;

describe('admin endpoints × credentials', () => {
  let running: RunningSidecar;
  before(async () => {
    running = await start('when-authorized');
  });
  after(() => running.stop());

  for (const endpoint of ADMIN) {
    test(`${endpoint.method} ${endpoint.path}: no key → 401 missing_key with WWW-Authenticate`, async () => {
      const reply = await call(running.port, endpoint.method, endpoint.path, CREDENTIALS.none);
      assert.equal(reply.status, 401);
      assert.equal(reply.headers['www-authenticate'], 'Bearer realm="health-sidecar"');
      assert.equal(reply.headers['cache-control'], 'no-store');
      assert.equal(reply.headers['x-content-type-options'], 'nosniff');
      assert.deepEqual(reply.json(), { error: { code: 'missing_key', message: 'an API key is required: Authorization: Bearer <key> or X-API-Key: <key>' } });
    });

    test(`${endpoint.method} ${endpoint.path}: wrong key (Bearer and X-API-Key) → 401 invalid_key`, async () => {
      for (const headers of [bearer(WRONG_KEY), apiKey(WRONG_KEY), { authorization: `Basic ${Buffer.from(`x:${OPS_KEY}`).toString('base64')}` }, bearer(OPS_KEY.slice(0, -1))]) {
        const reply = await call(running.port, endpoint.method, endpoint.path, headers);
        assert.equal(reply.status, 401, JSON.stringify(headers));
        assert.equal(reply.headers['www-authenticate'], 'Bearer realm="health-sidecar", error="invalid_token"');
        assert.deepEqual(reply.json(), { error: { code: 'invalid_key', message: 'the API key is not valid' } });
      }
    });

    for (const style of ['bearer', 'xApiKey'] as const) {
      test(`${endpoint.method} ${endpoint.path}: right key as ${style} → 200`, async () => {
        const reply = await call(running.port, endpoint.method, endpoint.path, CREDENTIALS[style]);
        assert.equal(reply.status, 200, reply.text);
        assert.equal(reply.headers['content-type'], 'application/json; charset=utf-8');
        assert.equal(reply.headers['cache-control'], 'no-store');
        const body = reply.json();
        if (endpoint.path.endsWith('/run')) {
          assert.deepEqual(Object.keys(body), ['check', 'action', 'status', 'result']);
          assert.equal(body.check, 'app');
          assert.equal(body.status, 'UP');
          assert.deepEqual({ ...body.result, latencyMs: 0, startedAt: '', finishedAt: '' }, {
            ok: true,
            outcome: 'success',
            message: `GET ${dependency.url}/ok: status 200`,
            latencyMs: 0,
            attempts: 1,
            startedAt: '',
            finishedAt: '',
            breaker: 'closed',
            traceId: null,
          });
        } else if (endpoint.path.endsWith('/reset')) {
          assert.equal(body.check, 'app');
          assert.equal(body.action, 'reset');
          assert.equal(body.state.status, 'UNKNOWN');
          assert.equal(body.state.consecutiveFailures, 0);
          assert.equal(body.state.breaker, 'closed');
        } else if (endpoint.path === '/admin/notifications/dead') {
          if (endpoint.method === 'GET') assert.deepEqual(body, { count: 0, dropped: 0, max: 100, deadLetters: [] });
          else assert.deepEqual(body, { retried: 0, delivered: 0, failed: 0, remaining: 0, results: [] });
        } else if (endpoint.path === '/admin/notifications/pending') {
          assert.deepEqual(body, { count: 0, pending: [] });
        } else {
          assert.deepEqual(Object.keys(body).sort(), ['checks', 'config', 'rateLimits', 'skipped', 'startedAt', 'status', 'uptimeSeconds', 'versions']);
          assert.deepEqual(Object.keys(body.checks).sort(), ['app', 'dep']);
        }
      });
    }
  }

  test('the second key works too, and admin actions log the key name, never the key', async () => {
    const reply = await call(running.port, 'POST', '/admin/checks/app/run', apiKey(CI_KEY));
    assert.equal(reply.status, 200);
    const line = running.logs.map((l) => JSON.parse(l)).find((l) => l.action === 'run' && l.keyName === 'ci');
    assert.ok(line, 'an admin log line naming key "ci"');
    assert.equal(line.msg, 'admin: check app run by key "ci"');
    assert.equal(line.check, 'app');
    const all = running.logs.join('\n');
    assert.ok(!all.includes(OPS_KEY) && !all.includes(CI_KEY) && !all.includes(WRONG_KEY), 'no key value in any log line');
  });

  test('unknown check: 401 without a key (names are not revealed), 404 JSON with one', async () => {
    assert.equal((await call(running.port, 'POST', '/admin/checks/nope/run')).status, 401);
    const reply = await call(running.port, 'POST', '/admin/checks/nope/run', bearer(OPS_KEY));
    assert.equal(reply.status, 404);
    assert.deepEqual(reply.json(), { error: { code: 'unknown_check', message: 'no check named "nope"' } });
    const reset = await call(running.port, 'POST', '/admin/checks/nope/reset', bearer(OPS_KEY));
    assert.deepEqual([reset.status, reset.json()], [404, { error: { code: 'unknown_check', message: 'no check named "nope"' } }]);
    const action = await call(running.port, 'POST', '/admin/checks/app/explode', bearer(OPS_KEY));
    assert.deepEqual([action.status, action.json()], [404, { error: { code: 'not_found', message: 'no such admin action "explode" (run, reset)' } }]);
  });

  test('wrong method: 405 with Allow, before any key is asked for', async () => {
    for (const [method, path, allow] of [
      ['GET', '/admin/checks/app/run', 'POST'],
      ['DELETE', '/admin/checks/app/reset', 'POST'],
      ['POST', '/admin/diagnostics', 'GET, HEAD'],
    ] as const) {
      const reply = await call(running.port, method, path, bearer(OPS_KEY));
      assert.equal(reply.status, 405, `${method} ${path}`);
      assert.equal(reply.headers.allow, allow);
      assert.deepEqual(reply.json(), { error: { code: 'method_not_allowed', message: `${method} is not allowed on ${path}` } });
    }
  });

  test('kubelet probes need no key and ignore a wrong one', async () => {
    for (const path of ['/livez', '/readyz', '/startupz', '/health/live', '/health/ready', '/health/startup', '/-/healthy']) {
      for (const headers of [{}, bearer(WRONG_KEY), bearer(OPS_KEY)]) {
        const reply = await call(running.port, 'GET', path, headers);
        assert.deepEqual([reply.status, reply.text], [200, 'ok'], `${path} ${JSON.stringify(headers)}`);
      }
    }
  });
});

describe('no keys configured', () => {
  let running: RunningSidecar;
  before(async () => {
    running = await start('when-authorized', false);
  });
  after(() => running.stop());

  test('admin endpoints answer 403 admin_disabled, with or without a key', async () => {
    for (const endpoint of ADMIN) {
      for (const headers of [{}, bearer(OPS_KEY)]) {
        const reply = await call(running.port, endpoint.method, endpoint.path, headers);
        assert.equal(reply.status, 403);
        assert.deepEqual(reply.json(), { error: { code: 'admin_disabled', message: 'admin API disabled: no keys configured (server.auth.keys)' } });
      }
    }
  });

  test('a presented key is not an error elsewhere (nothing to check it against), and shows no details', async () => {
    const reply = await call(running.port, 'GET', '/health/app', bearer(OPS_KEY));
    const { timestamp: _t, uptimeSeconds: _u, ...verdict } = reply.json();
    assert.deepEqual([reply.status, verdict], [200, { name: 'app', status: 'UP' }]);
  });
});

describe('showDetails', () => {
  const modes = ['never', 'when-authorized', 'always'] as const;
  const sidecars = new Map<string, RunningSidecar>();
  before(async () => {
    for (const mode of modes) sidecars.set(mode, await start(mode));
  });
  after(async () => {
    for (const running of sidecars.values()) await running.stop();
  });

  const DETAIL_KEYS = ['status', 'kind', 'critical', 'groups', 'latencyMs', 'message', 'outcome', 'lastCheckedAt', 'lastSuccessAt', 'lastChangeAt', 'since', 'durationMs', 'errorCode', 'consecutiveFailures', 'breaker', 'version'];
  /** every answer of /health/{check} carries these (test/server/health-body.test.ts) */
  const ENVELOPE = ['timestamp', 'uptimeSeconds'];

  for (const mode of modes) {
    for (const who of ['anonymous', 'key'] as const) {
      const details = mode === 'always' || (mode === 'when-authorized' && who === 'key');
      test(`${mode} × ${who}: details ${details ? 'shown' : 'hidden'} on /health, /health/{check}, /readyz?verbose, /health/system`, async () => {
        const { port } = sidecars.get(mode)!;
        const headers = who === 'key' ? bearer(OPS_KEY) : {};

        const all = await call(port, 'GET', '/health', headers);
        assert.equal(all.status, 200);
        const body = all.json();
        assert.deepEqual({ status: body.status, groups: body.groups }, { status: 'DEGRADED', groups: { live: 'UP', ready: 'DEGRADED', startup: 'UP' } });
        if (details) {
          assert.deepEqual(Object.keys(body.checks.dep), DETAIL_KEYS);
          assert.equal(body.checks.dep.status, 'DOWN');
          assert.match(body.checks.dep.message, /connection refused/);
        } else assert.deepEqual(body.checks, { app: { status: 'UP' }, dep: { status: 'DOWN' } });

        const one = await call(port, 'GET', '/health/dep', headers);
        assert.equal(one.status, 503);
        // with details, /health/{check} adds the uptime history and the SLO block (null: no SLO) (issue 18)
        if (details) assert.deepEqual(Object.keys(one.json()), ['name', ...DETAIL_KEYS, 'history', 'slo', ...ENVELOPE]);
        else assert.deepEqual(Object.keys(one.json()), ['name', 'status', ...ENVELOPE]);
        assert.equal(one.json().status, 'DOWN');

        const verbose = await call(port, 'GET', '/readyz?verbose', headers);
        assert.equal(verbose.status, 200);
        const lines = verbose.text.trimEnd().split('\n');
        assert.equal(lines[0], '[+]app ok');
        if (details) assert.match(lines[1]!, /^\[-\]dep failed \(non-critical\): tcp? ?.*connection refused/);
        else assert.equal(lines[1], '[-]dep failed (non-critical): reason withheld');
        assert.equal(lines.at(-1), 'readyz check passed');

        const system = await call(port, 'GET', '/health/system', headers);
        assert.equal(system.status, 200);
        if (details) assert.deepEqual(Object.keys(system.json()).sort(), ['cpu', 'eventLoopDelayMs', 'memory', 'pid', 'status', 'uptimeSeconds', 'versions']);
        else assert.deepEqual(system.json(), { status: 'UP' });
      });
    }

    test(`${mode}: a wrong key on a details endpoint is 401, not a silent downgrade`, async () => {
      const { port } = sidecars.get(mode)!;
      for (const path of ['/health', '/health/app', '/health/system']) {
        const reply = await call(port, 'GET', path, apiKey(WRONG_KEY));
        assert.equal(reply.status, 401, path);
        assert.deepEqual(reply.json(), { error: { code: 'invalid_key', message: 'the API key is not valid' } });
      }
      // the kubelet path answers as always
      assert.equal((await call(port, 'GET', '/readyz?verbose', apiKey(WRONG_KEY))).status, 200);
    });
  }
});
