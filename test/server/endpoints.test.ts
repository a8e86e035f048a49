/**
 * The HTTP endpoints of a real Sidecar (port 0) probing real Redis and
 * PostgreSQL through fault proxies and real HTTP servers: kubelet probes and
 * their aliases, ?verbose / ?exclude, HEAD / 405 / 400 / 404, /health JSON with
 * ETags, /health/{check}, /health/system, headers on every answer, DEGRADED,
 * startup latching and draining.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Sidecar } from '../../src/sidecar';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { DATABASE_URL, hostPort, REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { sidecarFromYaml, type CapturedLog } from './helpers';
import { type Reply, request as rawRequest } from '../helpers/http';

const KEY = 'test-admin-key-0123456789abcdef';
const AUTH = { authorization: `Bearer ${KEY}` };
const CHECKS = ['app', 'cache', 'db', 'cdn'];

let redisProxy: FaultProxy;
let pgProxy: FaultProxy;
let app: TestHttpServer;
let cdn: TestHttpServer;
/** the app server holds every request until released: the app check has no result before */
let releaseApp: () => void;
const appGate = new Promise<void>((resolve) => (releaseApp = resolve));
let cdnStatus = 200;
let sidecar: Sidecar;
let log: CapturedLog;
let port: number;
const seen: Reply[] = [];

/** Every answer must carry the two headers: checked on every request of this file. */
async function get(path: string, options: Parameters<typeof rawRequest>[2] = {}): Promise<Reply> {
  const reply = await rawRequest(port, path, options);
  assert.equal(reply.headers['cache-control'], 'no-store', `${options.method ?? 'GET'} ${path}: Cache-Control`);
  assert.equal(reply.headers['x-content-type-options'], 'nosniff', `${options.method ?? 'GET'} ${path}: X-Content-Type-Options`);
  seen.push(reply);
  return reply;
}

/**
 * A plain GET/HEAD of a probe path takes the synchronous fast path; the same path with an
 * empty `?exclude=` takes the full router. Both must answer the same status, headers and body.
 */
async function assertFastPathMatchesFullPath(path: string): Promise<void> {
  for (const method of ['GET', 'HEAD']) {
    const fast = await get(path, { method });
    const full = await get(`${path}?exclude=`, { method });
    const strip = (r: Reply) => ({ status: r.status, body: r.body, headers: { ...r.headers, date: undefined } });
    assert.deepEqual(strip(fast), strip(full), `${method} ${path}: fast path and full path answer alike`);
  }
}

const json = (reply: Reply) => JSON.parse(reply.body) as Record<string, any>;
/** the body without the fields that change with every answer (timestamp, uptimeSeconds) and the summary (health-body.test.ts covers them) */
const verdicts = (reply: Reply) => {
  const { timestamp: _t, uptimeSeconds: _u, summary: _s, ...rest } = json(reply);
  return rest;
};
const status = (name: string) => sidecar.store.get(name)?.status;

function config(): string {
  return `
server:
  port: 0
  host: 127.0.0.1
  showDetails: when-authorized
  drainDelay: 1s
  auth:
    keys:
      - name: ops
        key: ${KEY}
    anonymousRateLimit: 100000/1m
log: { level: info }
defaults:
  # a loaded machine may take a few hundred ms for a local connect: the timeout is not what is tested here
  interval: 1s
  timeout: 1s
  retry: { attempts: 1, backoff: { initial: 10ms, max: 10ms }, jitter: false }
  breaker: { failures: 1000, halfOpenAfter: 1s }
  thresholds: { failure: 2, success: 1 }
checks:
  - name: app
    kind: http
    url: ${app.url}/healthz
    timeout: 30s
    interval: 30s
    groups: [live, ready, startup]
  - name: cache
    kind: redis
    url: ${redisProxy.url('redis')}
    groups: [ready]
  - name: db
    kind: postgres
    url: postgres://postgres@127.0.0.1:${pgProxy.port}/test
    groups: [ready, startup]
  - name: cdn
    kind: http
    url: ${cdn.url}/ping
    critical: false
    groups: [ready]
`;
}

before(async () => {
  redisProxy = await startFaultProxy(hostPort(REDIS_URL));
  pgProxy = await startFaultProxy(hostPort(DATABASE_URL));
  app = await startHttpServer((_req: IncomingMessage, res: ServerResponse) => {
    void appGate.then(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  cdn = await startHttpServer((_req, res) => {
    res.writeHead(cdnStatus, { 'content-type': 'text/plain' });
    res.end(cdnStatus === 200 ? 'ok' : 'broken');
  });
  ({ sidecar, log } = sidecarFromYaml(config()));
  port = await sidecar.start();
});

after(async () => {
  releaseApp();
  await sidecar?.shutdown({ drain: false });
  await Promise.all([redisProxy?.close(), pgProxy?.close(), app?.close(), cdn?.close()]);
});

describe('probe endpoints on a real sidecar', () => {
  it('answers 503 on every probe path before the first results', async () => {
    assert.equal(status('app'), 'UNKNOWN');
    for (const [path, label] of [['/livez', 'livez'], ['/health/live', 'livez'], ['/readyz', 'readyz'], ['/health/ready', 'readyz'], ['/startupz', 'startupz'], ['/health/startup', 'startupz']]) {
      const reply = await get(path!);
      // as the API server: a failure always lists the members, ?verbose or not
      const verbose = await get(`${path}?verbose`);
      assert.deepEqual({ status: reply.status, body: reply.body, type: reply.headers['content-type'] }, { status: 503, body: verbose.body, type: 'text/plain; charset=utf-8' }, path);
      assert.ok(reply.body.endsWith(`\n${label} check failed\n`), reply.body);
      await assertFastPathMatchesFullPath(path!);
    }
    const verbose = await get('/livez?verbose');
    assert.equal(verbose.status, 503);
    assert.equal(verbose.body, '[-]app failed: not checked yet\nlivez check failed\n');
    const health = await get('/health');
    assert.equal(health.status, 503);
    // every check runs once at start, at once: the ungated checks (150 ms timeouts) may already have
    // a verdict, even DOWN on a busy machine; the overall status cannot be UP while app is unknown
    assert.notEqual(json(health).status, 'UP');
    assert.equal(json(health).checks.app.status, 'UNKNOWN');
    assert.equal((await get('/health/app')).status, 503);
  });

  it('answers 200 ok once every member is UP, on all paths and aliases', async () => {
    releaseApp();
    await waitFor(() => CHECKS.every((c) => status(c) === 'UP'), { timeoutMs: 30_000, what: 'every check UP' });
    for (const path of ['/livez', '/health/live', '/readyz', '/health/ready', '/startupz', '/health/startup']) {
      const reply = await get(path);
      assert.deepEqual({ status: reply.status, body: reply.body }, { status: 200, body: 'ok' }, path);
      await assertFastPathMatchesFullPath(path);
    }
  });

  it('?verbose lists every member of the group, Kubernetes style', async () => {
    const ready = await get('/readyz?verbose');
    assert.equal(ready.status, 200);
    assert.equal(ready.body, '[+]app ok\n[+]cache ok\n[+]db ok\n[+]cdn ok\nreadyz check passed\n');
    const alias = await get('/health/ready?verbose=1');
    assert.equal(alias.body, ready.body);
    const live = await get('/livez?verbose');
    assert.equal(live.body, '[+]app ok\nlivez check passed\n');
  });

  it('a critical check DOWN fails readiness; the reason shows only to an authorised caller', async () => {
    redisProxy.setMode('refuse');
    try {
      await waitFor(() => status('cache') === 'DOWN', { timeoutMs: 30_000, what: 'cache DOWN' });
      const plain = await get('/readyz');
      assert.deepEqual({ status: plain.status, body: plain.body }, { status: 503, body: '[+]app ok\n[-]cache failed: reason withheld\n[+]db ok\n[+]cdn ok\nreadyz check failed\n' });
      await assertFastPathMatchesFullPath('/readyz');
      await assertFastPathMatchesFullPath('/livez');
      const anonymous = await get('/readyz?verbose');
      assert.equal(anonymous.status, 503);
      assert.equal(anonymous.body, '[+]app ok\n[-]cache failed: reason withheld\n[+]db ok\n[+]cdn ok\nreadyz check failed\n');
      const before = sidecar.store.get('cache')!.message;
      const detailed = await get('/readyz?verbose', { headers: AUTH });
      const afterMessage = sidecar.store.get('cache')!.message;
      assert.ok(before.length > 0);
      const expected = (m: string) => `[+]app ok\n[-]cache failed: ${m}\n[+]db ok\n[+]cdn ok\nreadyz check failed\n`;
      assert.ok(detailed.body === expected(before) || detailed.body === expected(afterMessage), detailed.body);
      // liveness and startup do not contain the cache
      assert.equal((await get('/livez')).status, 200);
      assert.equal((await get('/startupz')).status, 200);

      // ?exclude leaves it out, listed as excluded: one name, a comma list, repeated parameters
      const excluded = await get('/readyz?exclude=cache&verbose');
      assert.equal(excluded.status, 200);
      assert.equal(excluded.body, '[+]app ok\n[+]cache excluded: ok\n[+]db ok\n[+]cdn ok\nreadyz check passed\n');
      const list = await get('/readyz?exclude=cache,db&verbose');
      assert.equal(list.body, '[+]app ok\n[+]cache excluded: ok\n[+]db excluded: ok\n[+]cdn ok\nreadyz check passed\n');
      const repeated = await get('/readyz?exclude=cache&exclude=cdn&verbose');
      assert.equal(repeated.body, '[+]app ok\n[+]cache excluded: ok\n[+]db ok\n[+]cdn excluded: ok\nreadyz check passed\n');
      assert.deepEqual(pick(await get('/readyz?exclude=cache')), { status: 200, body: 'ok' });
      assert.deepEqual(pick(await get('/readyz?exclude=db')), { status: 503, body: '[+]app ok\n[-]cache failed: reason withheld\n[+]db excluded: ok\n[+]cdn ok\nreadyz check failed\n' });
      const unknown = await get('/readyz?exclude=cache,nope&verbose');
      assert.equal(unknown.body, '[+]app ok\n[+]cache excluded: ok\n[+]db ok\n[+]cdn ok\nwarn: some health checks cannot be excluded: no matches for "nope"\nreadyz check passed\n');
      // per-check paths: that member alone
      assert.deepEqual(pick(await get('/readyz/db')), { status: 200, body: 'ok' });
      assert.deepEqual(pick(await get('/readyz/cache')), { status: 503, body: 'internal server error: reason withheld\n' });
      const cacheDetailed = await get('/readyz/cache', { headers: AUTH });
      assert.equal(cacheDetailed.status, 503);
      assert.match(cacheDetailed.body, /^internal server error: .*refused.*\n$/);
      assert.deepEqual(pick(await get('/livez/app')), { status: 200, body: 'ok' });
      assert.equal((await get('/livez/cache')).status, 404, 'cache is not a member of live');
      assert.equal((await get('/readyz/nope')).status, 404);
      // the same bytes the API server writes: its format strings (k8s.io/apiserver pkg/server/healthz/healthz.go,
      // handleRootHealthz and adaptCheckToHandler), rendered for our members
      const go = (format: string, ...args: string[]) => { let i = 0; return format.replace(/%[vsq]/g, (verb) => (verb === '%q' ? JSON.stringify(args[i++]) : args[i++]!)); };
      const k8s = { ok: '[+]%v ok\n', excluded: '[+]%v excluded: ok\n', failed: '[-]%v failed: reason withheld\n', noMatch: 'warn: some health checks cannot be excluded: no matches for %v\n', checkFailed: '%s check failed', checkPassed: '%s check passed\n', single: 'internal server error: %v' };
      // http.Error appends a newline to the failure body
      assert.equal((await get('/readyz?exclude=db')).body, `${go(k8s.ok, 'app')}${go(k8s.failed, 'cache')}${go(k8s.excluded, 'db')}${go(k8s.ok, 'cdn')}${go(k8s.checkFailed, 'readyz')}\n`);
      assert.equal((await get('/readyz?exclude=cache,nope&verbose')).body, `${go(k8s.ok, 'app')}${go(k8s.excluded, 'cache')}${go(k8s.ok, 'db')}${go(k8s.ok, 'cdn')}${go(k8s.noMatch, go('%q', 'nope'))}${go(k8s.checkPassed, 'readyz')}`);
      assert.equal((await get('/readyz/cache')).body, `${go(k8s.single, 'reason withheld')}\n`);
    } finally {
      redisProxy.setMode('pass');
    }
    await waitFor(() => status('cache') === 'UP', { timeoutMs: 30_000, what: 'cache UP again' });
    assert.deepEqual(pick(await get('/readyz')), { status: 200, body: 'ok' });
  });

  it('a non-critical check DOWN keeps readiness 200 and makes /health DEGRADED', async () => {
    cdnStatus = 500;
    try {
      await waitFor(() => status('cdn') === 'DOWN', { timeoutMs: 30_000, what: 'cdn DOWN' });
      assert.deepEqual(pick(await get('/readyz')), { status: 200, body: 'ok' });
      const verbose = await get('/readyz?verbose');
      assert.equal(verbose.status, 200);
      assert.equal(verbose.body, '[+]app ok\n[+]cache ok\n[+]db ok\n[-]cdn failed (non-critical): reason withheld\nreadyz check passed\n');
      // its own path fails: the check itself is DOWN
      assert.deepEqual(pick(await get('/readyz/cdn')), { status: 503, body: 'internal server error: reason withheld\n' });
      const health = await get('/health');
      assert.equal(health.status, 200);
      assert.equal(json(health).status, 'DEGRADED');
      assert.deepEqual(json(health).groups, { live: 'UP', ready: 'DEGRADED', startup: 'UP' });
      const one = await get('/health/cdn');
      assert.equal(one.status, 503);
      assert.deepEqual(verdicts(one), { name: 'cdn', status: 'DOWN' });
    } finally {
      cdnStatus = 200;
    }
    await waitFor(() => status('cdn') === 'UP', { timeoutMs: 30_000, what: 'cdn UP again' });
  });

  it('rejects an unknown query parameter with 400 JSON', async () => {
    const reply = await get('/readyz?verbos');
    assert.equal(reply.status, 400);
    assert.equal(reply.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(json(reply), { error: { code: 'bad_parameter', message: 'unknown query parameter "verbos" (allowed: verbose, exclude)' } });
    const onHealth = await get('/health?pretty=1');
    assert.equal(onHealth.status, 400);
    assert.deepEqual(json(onHealth), { error: { code: 'bad_parameter', message: 'unknown query parameter "pretty"' } });
  });

  it('HEAD answers with the headers and no body', async () => {
    for (const path of ['/readyz', '/livez', '/health', '/health/db', '/-/healthy']) {
      const getReply = await get(path);
      const head = await get(path, { method: 'HEAD' });
      assert.equal(head.status, getReply.status, path);
      assert.equal(head.body, '', path);
      assert.equal(head.headers['content-type'], getReply.headers['content-type'], path);
      assert.equal(head.headers['content-length'], getReply.headers['content-length'], path);
    }
  });

  it('other methods get 405 with Allow and a JSON error', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const reply = await get('/readyz', { method, body: method === 'DELETE' ? undefined : 'x' });
      assert.equal(reply.status, 405);
      assert.equal(reply.headers.allow, 'GET, HEAD');
      assert.deepEqual(json(reply), { error: { code: 'method_not_allowed', message: `${method} is not allowed on /readyz` } });
    }
    assert.equal((await get('/health/db', { method: 'POST' })).headers.allow, 'GET, HEAD');
  });

  it('/-/healthy answers for the process itself', async () => {
    assert.deepEqual(pick(await get('/-/healthy')), { status: 200, body: 'ok' });
  });

  it('/health: whole JSON with details for a key, statuses only without', async () => {
    const anonymous = await get('/health');
    assert.equal(anonymous.status, 200);
    assert.equal(anonymous.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(verdicts(anonymous), {
      status: 'UP',
      groups: { live: 'UP', ready: 'UP', startup: 'UP' },
      checks: { app: { status: 'UP' }, cache: { status: 'UP' }, db: { status: 'UP' }, cdn: { status: 'UP' } },
    });
    const detailed = json(await get('/health', { headers: AUTH }));
    assert.equal(detailed.status, 'UP');
    assert.deepEqual(Object.keys(detailed.checks), CHECKS);
    const expectations: Record<string, { kind: string; critical: boolean; groups: string[] }> = {
      app: { kind: 'http', critical: true, groups: ['live', 'ready', 'startup'] },
      cache: { kind: 'redis', critical: true, groups: ['ready'] },
      db: { kind: 'postgres', critical: true, groups: ['ready', 'startup'] },
      cdn: { kind: 'http', critical: false, groups: ['ready'] },
    };
    const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
    for (const [name, check] of Object.entries(detailed.checks) as [string, Record<string, unknown>][]) {
      // every field SPEC §4 lists
      for (const field of ['status', 'kind', 'critical', 'groups', 'latencyMs', 'message', 'lastCheckedAt', 'lastSuccessAt', 'consecutiveFailures', 'breaker', 'version']) {
        assert.ok(field in check, `${name}.${field} present`);
      }
      assert.equal(check.status, 'UP');
      assert.equal(check.kind, expectations[name]!.kind);
      assert.equal(check.critical, expectations[name]!.critical);
      assert.deepEqual(check.groups, expectations[name]!.groups);
      assert.equal(typeof check.latencyMs, 'number');
      assert.ok((check.latencyMs as number) >= 0);
      assert.equal(typeof check.message, 'string');
      assert.match(check.lastCheckedAt as string, ISO);
      assert.match(check.lastSuccessAt as string, ISO);
      assert.equal(check.consecutiveFailures, 0);
      assert.equal(check.breaker, 'closed');
      assert.equal(typeof check.version, 'number');
      assert.ok((check.version as number) >= 1);
    }
  });

  it('/health has an ETag; If-None-Match gives 304 until the state changes', async () => {
    const first = await get('/health');
    const etag = first.headers.etag;
    assert.ok(etag, 'ETag present');
    const again = await get('/health', { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');
    assert.equal(again.headers.etag, etag);
    assert.equal((await get('/health', { headers: { 'if-none-match': '*' } })).status, 304);
    // details and no details are different representations
    const detailed = await get('/health', { headers: AUTH });
    assert.notEqual(detailed.headers.etag, etag);
    assert.equal((await get('/health', { headers: { ...AUTH, 'if-none-match': etag } })).status, 200);

    const dbEtag = (await get('/health/db')).headers.etag;
    assert.ok(dbEtag);
    assert.equal((await get('/health/db', { headers: { 'if-none-match': dbEtag } })).status, 304);

    cdnStatus = 500;
    try {
      await waitFor(() => status('cdn') === 'DOWN', { timeoutMs: 30_000, what: 'cdn DOWN' });
      const changed = await get('/health', { headers: { 'if-none-match': etag } });
      assert.equal(changed.status, 200);
      assert.notEqual(changed.headers.etag, etag);
      assert.equal(json(changed).status, 'DEGRADED');
      // another check's change leaves db's tag alone
      assert.equal((await get('/health/db', { headers: { 'if-none-match': dbEtag } })).status, 304);
    } finally {
      cdnStatus = 200;
    }
    await waitFor(() => status('cdn') === 'UP', { timeoutMs: 30_000, what: 'cdn UP again' });
  });

  it('/health/{check}: 200 when UP, 503 when DOWN, 404 JSON naming an unknown check', async () => {
    const up = await get('/health/db');
    assert.equal(up.status, 200);
    assert.deepEqual(verdicts(up), { name: 'db', status: 'UP' });
    const detailed = json(await get('/health/db', { headers: AUTH }));
    assert.equal(detailed.name, 'db');
    assert.equal(detailed.kind, 'postgres');
    assert.equal(detailed.status, 'UP');

    pgProxy.setMode('blackhole');
    try {
      await waitFor(() => status('db') === 'DOWN', { timeoutMs: 30_000, what: 'db DOWN' });
      const down = await get('/health/db');
      assert.equal(down.status, 503);
      assert.deepEqual(verdicts(down), { name: 'db', status: 'DOWN' });
      const reason = json(await get('/health/db', { headers: AUTH }));
      assert.equal(reason.outcome, 'timeout');
      assert.equal(reason.message, 'timed out after 1000ms');
      assert.ok(reason.consecutiveFailures >= 2);
    } finally {
      pgProxy.setMode('pass');
      pgProxy.dropAll();
    }
    await waitFor(() => status('db') === 'UP', { timeoutMs: 30_000, what: 'db UP again' });

    const missing = await get('/health/nope');
    assert.equal(missing.status, 404);
    assert.deepEqual(json(missing), { error: { code: 'unknown_check', message: 'no check named "nope"' } });
    const encoded = await get('/health/no%20such');
    assert.deepEqual(json(encoded), { error: { code: 'unknown_check', message: 'no check named "no such"' } });
  });

  it('/health/system reports the process to a key holder, status only otherwise', async () => {
    const anonymous = await get('/health/system');
    assert.equal(anonymous.status, 200);
    assert.deepEqual(json(anonymous), { status: 'UP' });
    const system = json(await get('/health/system', { headers: AUTH }));
    assert.deepEqual(Object.keys(system).sort(), ['cpu', 'eventLoopDelayMs', 'memory', 'pid', 'status', 'uptimeSeconds', 'versions']);
    assert.equal(system.status, 'UP');
    assert.equal(system.pid, process.pid);
    assert.deepEqual(system.versions, { sidecar: '0.1.0', node: process.version });
    assert.ok(system.memory.rssBytes > 0 && system.memory.heapUsedBytes > 0 && system.memory.heapTotalBytes > 0);
    assert.ok(system.cpu.userSeconds > 0);
    assert.ok(system.uptimeSeconds >= 0);
    for (const p of ['p50', 'p99', 'max']) assert.equal(typeof system.eventLoopDelayMs[p], 'number');
  });

  it('an unknown path is a 404 JSON error', async () => {
    const reply = await get('/nope');
    assert.equal(reply.status, 404);
    assert.deepEqual(json(reply), { error: { code: 'not_found', message: 'no such endpoint: /nope' } });
    assert.equal((await get('/readyz/extra')).status, 404);
    assert.equal((await get('/health/db/extra')).status, 404);
  });

  it('logs one JSON line per state change with check, from and to', () => {
    const transitions = log.records().filter((r) => 'from' in r && 'to' in r);
    assert.ok(transitions.length > 0);
    for (const t of transitions) {
      assert.ok(CHECKS.includes(t.check as string), JSON.stringify(t));
      assert.equal(t.msg, `check ${t.check} ${t.from} → ${t.to}`);
      assert.equal(t.level, t.to === 'DOWN' ? 'warn' : 'info');
    }
    // the history of each check as logged matches what happened in this file
    const history = (name: string) => transitions.filter((t) => t.check === name).map((t) => `${t.from}>${t.to}`);
    assert.deepEqual(history('app'), ['UNKNOWN>UP']);
    assert.deepEqual(history('cache'), ['UNKNOWN>UP', 'UP>DOWN', 'DOWN>UP']);
    assert.deepEqual(history('cdn'), ['UNKNOWN>UP', 'UP>DOWN', 'DOWN>UP', 'UP>DOWN', 'DOWN>UP']);
    assert.deepEqual(history('db'), ['UNKNOWN>UP', 'UP>DOWN', 'DOWN>UP']);
  });

  it('startup stays latched UP after its members go DOWN', async () => {
    pgProxy.setMode('refuse');
    try {
      await waitFor(() => status('db') === 'DOWN', { timeoutMs: 30_000, what: 'db DOWN' });
      assert.deepEqual(pick(await get('/startupz')), { status: 200, body: 'ok' });
      assert.equal((await get('/startupz?verbose')).body, `[+]startup started\n[+]app ok\n[-]db failed: reason withheld\nstartupz check passed\n`);
      assert.equal((await get('/readyz')).status, 503);
    } finally {
      pgProxy.setMode('pass');
      await pgProxy.ready();
    }
    await waitFor(() => status('db') === 'UP', { timeoutMs: 30_000, what: 'db UP again' });
  });

  it('every response carried Cache-Control: no-store and X-Content-Type-Options: nosniff', () => {
    assert.ok(seen.length > 60, `${seen.length} responses checked`);
    assert.deepEqual(new Set(seen.map((r) => r.status)), new Set([200, 304, 400, 404, 405, 503]));
  });

  it('draining: /readyz 503 at once with a note, /livez still 200, /health DOWN with a new ETag', async () => {
    const etag = (await get('/health')).headers.etag!;
    const stopping = sidecar.shutdown();
    try {
      const ready = await get('/readyz?verbose');
      assert.equal(ready.status, 503);
      assert.equal(ready.body, '[-]ready shutting down\n[+]app ok\n[+]cache ok\n[+]db ok\n[+]cdn ok\nreadyz check failed\n');
      assert.deepEqual(pick(await get('/readyz?exclude=cache,db,cdn,app')), {
        status: 503,
        body: '[-]ready shutting down\n[+]app excluded: ok\n[+]cache excluded: ok\n[+]db excluded: ok\n[+]cdn excluded: ok\nreadyz check failed\n',
      });
      assert.deepEqual(pick(await get('/readyz')), { status: 503, body: ready.body }, 'the fast path sees the drain at once');
      await assertFastPathMatchesFullPath('/readyz');
      assert.deepEqual(pick(await get('/livez')), { status: 200, body: 'ok' });
      assert.deepEqual(pick(await get('/startupz')), { status: 200, body: 'ok' });
      const health = await get('/health', { headers: { 'if-none-match': etag } });
      assert.equal(health.status, 503, 'a cached 304 would hide the drain');
      assert.notEqual(health.headers.etag, etag);
      assert.equal(json(health).status, 'DOWN');
      assert.equal(json(health).groups.ready, 'DOWN');
    } finally {
      await stopping;
    }
    assert.ok(log.records().some((r) => r.msg === 'shutting down: readiness now fails; draining'));
  });
});

function pick(reply: Reply): { status: number; body: string } {
  return { status: reply.status, body: reply.body };
}
