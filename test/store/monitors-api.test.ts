/**
 * Issue 20: monitors managed at run time, through the compiled CLI's HTTP API
 * on a private database of the machine's PostgreSQL: CRUD round trip (a
 * created monitor is probed within one interval and shows in /health,
 * /metrics and the status page; PATCH changes the interval; DELETE stops it
 * and removes its series), optimistic concurrency (20 parallel PATCHes with
 * one ETag: 1 wins, 19 get 412), idempotent creates, scopes, the audit log,
 * and the bad-input table (nothing written).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { api, monitorYaml, privateDatabase, startMonitor, type MonitorProcess, type PrivateDatabase } from '../helpers/monitor-store';

const ADMIN = 'api-admin-key-0123456789';
const READER = 'api-reader-key-0123456789';
let db: PrivateDatabase;
let target: TestHttpServer;
let monitor: MonitorProcess;
/** path → times probed */
const hits = new Map<string, number[]>();

before(async () => {
  ensureBuilt();
  db = await privateDatabase();
  target = await startHttpServer((req, res) => {
    const list = hits.get(req.url ?? '') ?? [];
    list.push(Date.now());
    hits.set(req.url ?? '', list);
    res.end('ok');
  });
  monitor = await startMonitor(
    (port) =>
      monitorYaml({
        port,
        // 20 PATCHes at once are the point here, not shedding
        overload: '{ perTurn: 100, maxInFlight: 100 }',
        keys: [
          { name: 'ops', key: ADMIN },
          { name: 'viewer', key: READER, scopes: ['monitors:read'] },
        ],
        store: { maxMonitors: '30', writeRateLimit: '1000/1m' },
        defaults: { interval: '200ms', timeout: '150ms' },
        checks: [`{ name: from-file, kind: http, url: "http://127.0.0.1:${target.port}/file" }`],
      }),
    { STORE_URL: db.url, TARGET_PASSWORD: 'canary-target-secret-4711' },
  );
});

after(async () => {
  await monitor?.stop();
  await target?.close();
  await db?.drop();
});

const monitorCount = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM ohs_monitors'))[0]!.n);

test('CRUD round trip: created → probed, in /health, /metrics, status page; PATCH interval; DELETE stops it and removes its series', async () => {
  const { port } = monitor;
  const body = { name: 'shop', kind: 'http', url: `http://127.0.0.1:${target.port}/shop`, interval: '200ms', timeout: '150ms' };
  const created = await api(port, 'POST', '/api/v1/monitors', ADMIN, body);
  assert.equal(created.status, 201, created.body);
  assert.equal(created.headers.etag, '"1"');
  assert.equal(created.headers.location, '/api/v1/monitors/shop');
  assert.equal(created.json().source, 'api');
  await waitFor(() => (hits.get('/shop')?.length ?? 0) > 0, { what: 'shop probed' });
  await waitFor(async () => (await get(port, '/health')).json().checks?.shop?.status === 'UP', { what: 'shop UP in /health' });
  assert.match((await get(port, '/metrics')).body, /healthcheck_status\{[^}]*healthcheck_name="shop"/);
  assert.match((await get(port, '/status/fragment')).body, /shop/);

  // listed beside the file check, which is read-only
  const list = (await api(port, 'GET', '/api/v1/monitors', READER)).json();
  assert.deepEqual(list.items.map((m: { name: string; source: string; readOnly: boolean }) => [m.name, m.source, m.readOnly]), [['from-file', 'file', true], ['shop', 'api', false]]);

  // PATCH the interval: probing follows it
  const patched = await api(port, 'PATCH', '/api/v1/monitors/shop', ADMIN, { interval: '1m', timeout: '1s' }, { 'if-match': '"1"' });
  assert.equal(patched.status, 200, patched.body);
  assert.equal(patched.headers.etag, '"2"');
  assert.equal(patched.json().check.interval, '1m');
  const diagnostics = (await get(port, '/admin/diagnostics', { authorization: `Bearer ${ADMIN}` })).json();
  assert.equal(diagnostics.config.checks.find((c: { name: string }) => c.name === 'shop').interval, 60_000);

  // PUT replaces the whole body (what it leaves out is gone); a stale If-Match changes nothing
  const put = await api(port, 'PUT', '/api/v1/monitors/shop', ADMIN, { kind: 'http', url: `http://127.0.0.1:${target.port}/shop`, interval: '1m', timeout: '1s', critical: false }, { 'if-match': '"2"' });
  assert.equal(put.status, 200, put.body);
  assert.equal(put.headers.etag, '"3"');
  assert.deepEqual(put.json().check, { name: 'shop', kind: 'http', url: `http://127.0.0.1:${target.port}/shop`, interval: '1m', timeout: '1s', critical: false });
  assert.equal((await api(port, 'PUT', '/api/v1/monitors/shop', ADMIN, { kind: 'tcp', url: 'tcp://h:1' }, { 'if-match': '"2"' })).status, 412);
  const renamed = await api(port, 'PUT', '/api/v1/monitors/shop', ADMIN, { name: 'other', kind: 'tcp', url: 'tcp://h:1' });
  assert.equal(renamed.status, 400);
  assert.match(renamed.json().error.message, /name: must be "shop"/);
  assert.equal((await api(port, 'GET', '/api/v1/monitors/shop', READER)).json().version, 3, 'nothing written by the refused PUTs');

  // DELETE: gone from /health, /metrics and the API, probing stops
  assert.equal((await api(port, 'DELETE', '/api/v1/monitors/shop', ADMIN, undefined, { 'if-match': '"2"' })).status, 412);
  const deleted = await api(port, 'DELETE', '/api/v1/monitors/shop', ADMIN, undefined, { 'if-match': '"3"' });
  assert.equal(deleted.status, 200, deleted.body);
  assert.equal((await get(port, '/health')).json().checks.shop, undefined);
  const metrics = (await get(port, '/metrics')).body;
  assert.doesNotMatch(metrics, /healthcheck_name="shop"/, 'no series of the deleted monitor (status, attempts, durations, …)');
  assert.match(metrics, /healthcheck_status\{[^}]*healthcheck_name="from-file"/, 'the file check is still exported');
  assert.doesNotMatch((await get(port, '/metrics', { accept: 'application/openmetrics-text; version=1.0.0' })).body, /healthcheck_name="shop"/);
  assert.equal((await api(port, 'GET', '/api/v1/monitors/shop', READER)).status, 404);
  const probes = hits.get('/shop')!.length;
  // the next file-check probe proves time passed at 200 ms intervals without a shop probe
  const fileProbes = hits.get('/file')!.length;
  await waitFor(() => hits.get('/file')!.length >= fileProbes + 3, { what: 'three more file probes' });
  assert.equal(hits.get('/shop')!.length, probes, 'no probe of a deleted monitor');

  // the audit log: who, what, before and after
  const audit = (await api(port, 'GET', '/api/v1/audit?monitor=shop', ADMIN)).json().items;
  assert.deepEqual(audit.map((e: { action: string; actor: string }) => [e.action, e.actor]), [['delete', 'key:ops'], ['update', 'key:ops'], ['update', 'key:ops'], ['create', 'key:ops']]);
  assert.equal(audit[2].before.interval, '200ms');
  assert.equal(audit[2].after.interval, '1m');
  assert.equal(audit[1].after.critical, false);
  assert.ok(audit.every((e: { at: string }) => !Number.isNaN(Date.parse(e.at))), 'when');
});

test('20 parallel PATCHes with the same ETag: exactly 1 succeeds, 19 get 412, nothing half-written', async () => {
  const { port } = monitor;
  const created = await api(port, 'POST', '/api/v1/monitors', ADMIN, { name: 'race', kind: 'tcp', url: `tcp://127.0.0.1:${target.port}` });
  assert.equal(created.status, 201, created.body);
  const tag = created.headers.etag as string;
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => api(port, 'PATCH', '/api/v1/monitors/race', ADMIN, { critical: i % 2 === 0, groups: [i % 2 ? 'ready' : 'live'] }, { 'if-match': tag })));
  const statuses = answers.map((a) => a.status).sort();
  assert.deepEqual(statuses, [200, ...Array(19).fill(412)], answers.map((a) => a.body).join('\n'));
  const winner = answers.find((a) => a.status === 200)!.json();
  const [row] = await db.query<{ version: number; body: { critical: boolean; groups: string[] } }>("SELECT version, body FROM ohs_monitors WHERE name = 'race'");
  assert.equal(row!.version, 2);
  assert.deepEqual({ critical: row!.body.critical, groups: row!.body.groups }, { critical: winner.check.critical, groups: winner.check.groups }, 'the row is the winner whole');
  assert.equal((await db.query("SELECT 1 FROM ohs_audit WHERE monitor = 'race' AND action = 'update'")).length, 1);
  assert.equal(answers.find((a) => a.status === 412)!.json().error.code, 'precondition_failed');
});

test('Idempotency-Key: a repeated create answers the first result and creates once', async () => {
  const { port } = monitor;
  const body = { name: 'idem', kind: 'tcp', url: `tcp://127.0.0.1:${target.port}` };
  const [a, b] = await Promise.all([0, 1].map(() => api(port, 'POST', '/api/v1/monitors', ADMIN, body, { 'idempotency-key': 'create-idem-1' })));
  assert.deepEqual([a!.status, b!.status].sort(), [200, 201]);
  assert.equal(a!.json().version, b!.json().version);
  assert.equal((await db.query("SELECT 1 FROM ohs_audit WHERE monitor = 'idem'")).length, 1);
  const other = await api(port, 'POST', '/api/v1/monitors', ADMIN, { ...body, name: 'idem2' }, { 'idempotency-key': 'create-idem-1' });
  assert.equal(other.status, 422, other.body);
});

test('scopes: a read-only key reads but cannot write; no key is 401', async () => {
  const { port } = monitor;
  assert.equal((await api(port, 'GET', '/api/v1/monitors', READER)).status, 200);
  const write = await api(port, 'POST', '/api/v1/monitors', READER, { name: 'nope', kind: 'tcp', url: 'tcp://127.0.0.1:1' });
  assert.equal(write.status, 403);
  assert.equal(write.json().error.code, 'insufficient_scope');
  assert.equal((await get(port, '/api/v1/monitors')).status, 401);
  assert.equal((await api(port, 'GET', '/api/v1/audit', READER)).status, 403);
});

test('bad input: 400/409/413/415 with the config messages, nothing written', async () => {
  const { port } = monitor;
  const before = await monitorCount();
  const auditBefore = (await db.query('SELECT id FROM ohs_audit')).length;
  const cases: { what: string; body: unknown; headers?: Record<string, string>; status: number; code: string; message?: RegExp }[] = [
    { what: 'malformed JSON', body: '{"name": "x",', status: 400, code: 'invalid_json' },
    { what: 'unknown kind', body: { name: 'k1', kind: 'ftp', url: 'ftp://x' }, status: 400, code: 'invalid_monitor', message: /kind: must be one of http, tcp, redis, postgres, grpc, dns/ },
    { what: 'unknown field', body: { name: 'k2', kind: 'tcp', url: 'tcp://h:1', colour: 'red' }, status: 400, code: 'invalid_monitor', message: /colour/ },
    { what: 'wrong type', body: { name: 'k3', kind: 'tcp', url: 'tcp://h:1', critical: 'yes' }, status: 400, code: 'invalid_monitor', message: /critical/ },
    { what: 'bare-number duration', body: { name: 'k4', kind: 'tcp', url: 'tcp://h:1', interval: 5 }, status: 400, code: 'invalid_monitor', message: /interval: must be a duration with a unit, such as "5s"/ },
    { what: 'literal secret', body: { name: 'k5', kind: 'postgres', url: 'postgres://app:hunter2-literal@db:5432/app' }, status: 400, code: 'invalid_monitor', message: /literal password/ },
    { what: 'clash with a file check', body: { name: 'from-file', kind: 'tcp', url: 'tcp://h:1' }, status: 409, code: 'name_taken' },
    { what: 'oversized', body: { name: 'k6', kind: 'http', url: 'http://x/', headers: { 'x-big': 'a'.repeat(20_000) } }, status: 413, code: 'body_too_large' },
    { what: 'not JSON', body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' },
    { what: 'reserved name', body: { name: 'ready', kind: 'tcp', url: 'tcp://h:1' }, status: 400, code: 'invalid_monitor', message: /name: is reserved/ },
  ];
  for (const c of cases) {
    const reply = await api(port, 'POST', '/api/v1/monitors', ADMIN, c.body, c.headers);
    assert.equal(reply.status, c.status, `${c.what}: ${reply.body}`);
    assert.match(reply.headers['content-type'] ?? '', /application\/json/, c.what);
    assert.equal(reply.json().error.code, c.code, c.what);
    if (c.message) assert.match(reply.json().error.message, c.message, c.what);
    assert.doesNotMatch(reply.body, /hunter2-literal/, `${c.what}: the literal secret is not echoed`);
  }
  // file checks are read-only
  assert.equal((await api(port, 'PATCH', '/api/v1/monitors/from-file', ADMIN, { critical: false })).status, 409);
  assert.equal((await api(port, 'DELETE', '/api/v1/monitors/from-file', ADMIN)).status, 409);
  assert.equal(await monitorCount(), before, 'no monitor written');
  assert.equal((await db.query('SELECT id FROM ohs_audit')).length, auditBefore, 'no audit entry written');
});

test('a ${VAR} reference is stored as written, never its value; the audit log keeps no secret', async () => {
  const { port } = monitor;
  const created = await api(port, 'POST', '/api/v1/monitors', ADMIN, { name: 'with-ref', kind: 'http', url: `http://user:\${TARGET_PASSWORD}@127.0.0.1:${target.port}/ref`, headers: { authorization: 'Bearer ${TARGET_PASSWORD}' } });
  assert.equal(created.status, 201, created.body);
  await waitFor(() => (hits.get('/ref')?.length ?? 0) > 0, { what: 'with-ref probed (the reference resolved in the process)' });
  const [row] = await db.query<{ body: { url: string } }>("SELECT body FROM ohs_monitors WHERE name = 'with-ref'");
  assert.equal(row!.body.url, `http://user:\${TARGET_PASSWORD}@127.0.0.1:${target.port}/ref`);
  const everything = JSON.stringify(await db.query('SELECT * FROM ohs_audit')) + JSON.stringify(await db.query('SELECT * FROM ohs_monitors'));
  assert.doesNotMatch(everything, /canary-target-secret-4711/);
  for (const path of ['/api/v1/monitors/with-ref', '/api/v1/monitors', '/api/v1/audit']) {
    assert.doesNotMatch((await api(port, 'GET', path, ADMIN)).body, /canary-target-secret-4711/, path);
  }
  assert.doesNotMatch(monitor.output(), /canary-target-secret-4711/);
});

test('list filters: label (name, name=value, repeated), group, source; unknown parameters refused', async () => {
  const { port } = monitor;
  const make = (name: string, labels: Record<string, string>, groups: string[]) => api(port, 'POST', '/api/v1/monitors', ADMIN, { name, kind: 'tcp', url: `tcp://127.0.0.1:${target.port}`, interval: '1h', timeout: '1s', labels, groups });
  assert.equal((await make('pay-a', { team: 'payments', tier: 'gold' }, ['ready'])).status, 201);
  assert.equal((await make('pay-b', { team: 'payments' }, ['live'])).status, 201);
  assert.equal((await make('shop-a', { team: 'shop' }, ['ready'])).status, 201);
  const names = async (query: string) => ((await api(port, 'GET', `/api/v1/monitors?${query}`, READER)).json().items as { name: string }[]).map((m) => m.name);
  assert.deepEqual(await names('label=team=payments'), ['pay-a', 'pay-b']);
  assert.deepEqual(await names('label=tier'), ['pay-a']);
  assert.deepEqual(await names('label=team=payments&label=tier=gold'), ['pay-a']);
  assert.deepEqual(await names('label=team=payments&group=live'), ['pay-b']);
  assert.deepEqual(await names('source=file'), ['from-file']);
  const bad = await api(port, 'GET', '/api/v1/monitors?colour=red', READER);
  assert.equal(bad.status, 400);
  assert.match(bad.json().error.message, /unknown query parameter "colour"/);
  const badLabel = await make('bad-label', { 'no spaces allowed': 'x' }, ['ready']);
  assert.equal(badLabel.status, 400);
  assert.match(badLabel.json().error.message, /labels/);
});

test('max monitors per store: a create past store.maxMonitors is refused', async () => {
  const { port } = monitor;
  const existing = await monitorCount();
  for (let i = existing; i < 30; i++) assert.equal((await api(port, 'POST', '/api/v1/monitors', ADMIN, { name: `fill-${i}`, kind: 'tcp', url: `tcp://127.0.0.1:${target.port}`, interval: '1h', timeout: '1s' })).status, 201);
  const over = await api(port, 'POST', '/api/v1/monitors', ADMIN, { name: 'one-too-many', kind: 'tcp', url: `tcp://127.0.0.1:${target.port}` });
  assert.equal(over.status, 409, over.body);
  assert.equal(over.json().error.code, 'monitor_limit');
  // cursor pagination walks all of them once
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: { name: string }[]; nextCursor: string | null } = (await api(port, 'GET', `/api/v1/monitors?source=api&limit=7${cursor ? `&cursor=${cursor}` : ''}`, READER)).json();
    seen.push(...page.items.map((m) => m.name));
    cursor = page.nextCursor;
  } while (cursor);
  assert.equal(seen.length, 30);
  assert.equal(new Set(seen).size, 30);
});
