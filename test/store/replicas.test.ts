/**
 * Issue 20: two monitor processes (the compiled CLI) on one store, sharded
 * `{ index: auto, count: 2 }` as a StatefulSet would run them. A monitor
 * created on one replica is probed by the other through LISTEN/NOTIFY (the
 * periodic resync is set to an hour, so only the change feed can bring it),
 * and each new monitor is probed by exactly one process: the one the
 * rendezvous hash names. A delete on either replica stops probing on both.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { shardOf } from '../../src/config/shard';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { api, monitorYaml, privateDatabase, startMonitor, type MonitorProcess, type PrivateDatabase } from '../helpers/monitor-store';

const KEY = 'replica-key-0123456789abc';
const NAMES = Array.from({ length: 8 }, (_, i) => `team-${i}`);
let db: PrivateDatabase;
let target: TestHttpServer;
const replicas: MonitorProcess[] = [];
/** path → the HOSTNAMEs that probed it */
const probedBy = new Map<string, Set<string>>();
/** path → when it was first probed */
const firstProbe = new Map<string, number>();

before(async () => {
  ensureBuilt();
  db = await privateDatabase();
  target = await startHttpServer((req, res) => {
    const path = req.url ?? '';
    if (!probedBy.has(path)) probedBy.set(path, new Set());
    probedBy.get(path)!.add(String(req.headers['x-probe-by'] ?? '?'));
    if (!firstProbe.has(path)) firstProbe.set(path, Date.now());
    res.end('ok');
  });
  for (const hostname of ['mon-0', 'mon-1']) {
    replicas.push(
      await startMonitor(
        (port) =>
          monitorYaml({
            port,
            keys: [{ name: 'ops', key: KEY }],
            shard: '{ index: auto, count: 2 }',
            store: { resync: '1h', writeRateLimit: '1000/1m' },
            defaults: { interval: '200ms', timeout: '150ms' },
          }),
        { STORE_URL: db.url, HOSTNAME: hostname },
      ),
    );
  }
});

after(async () => {
  for (const r of replicas) await r.stop();
  await target?.close();
  await db?.drop();
});

test('created on one replica: probed by exactly one process, the hash owner, via LISTEN/NOTIFY', async (t) => {
  const [zero, one] = replicas as [MonitorProcess, MonitorProcess];
  assert.ok(NAMES.some((n) => shardOf(n, 2) === 1) && NAMES.some((n) => shardOf(n, 2) === 0), 'both shards own some');
  const createdAt = new Map<string, number>();
  for (const name of NAMES) {
    const created = await api(zero.port, 'POST', '/api/v1/monitors', KEY, { name, kind: 'http', url: `http://127.0.0.1:${target.port}/${name}`, headers: { 'x-probe-by': '${HOSTNAME}' } });
    assert.equal(created.status, 201, created.body);
    createdAt.set(name, Date.now());
  }
  await waitFor(() => NAMES.every((n) => probedBy.has(`/${n}`)), { what: 'every monitor probed' });
  // reported, not asserted (a busy machine decides wall-clock figures): created on mon-0 → first probe by mon-1
  const lags = NAMES.filter((n) => shardOf(n, 2) === 1).map((n) => firstProbe.get(`/${n}`)! - createdAt.get(n)!);
  t.diagnostic(`created on mon-0 → first probe by mon-1: ${lags.map((ms) => `${ms} ms`).join(', ')}`);
  // a few more rounds: nobody else joins in
  const before = probedBy.size;
  await waitFor(async () => (await get(one.port, '/health')).json().checks?.[NAMES.find((n) => shardOf(n, 2) === 1)!]?.lastCheckedAt !== undefined, { what: 'mon-1 health' });
  for (const name of NAMES) assert.deepEqual([...probedBy.get(`/${name}`)!], [`mon-${shardOf(name, 2)}`], `${name} probed by its owner only`);
  assert.equal(probedBy.size, before);
  for (const [i, r] of replicas.entries()) {
    const checks = Object.keys((await get(r.port, '/health')).json().checks).sort();
    assert.deepEqual(checks, NAMES.filter((n) => shardOf(n, 2) === i).sort(), `mon-${i} /health has exactly its own`);
    // every replica lists every monitor, with its shard
    const list = (await api(r.port, 'GET', '/api/v1/monitors', KEY)).json().items as { name: string; shard: number }[];
    assert.deepEqual(list.map((m) => [m.name, m.shard]), NAMES.map((n) => [n, shardOf(n, 2)]));
  }
});

test('a PATCH and a DELETE on one replica take effect on the other', async () => {
  const [zero, one] = replicas as [MonitorProcess, MonitorProcess];
  const owned0 = NAMES.find((n) => shardOf(n, 2) === 0)!;
  const tag = (await api(one.port, 'GET', `/api/v1/monitors/${owned0}`, KEY)).headers.etag as string;
  const patched = await api(one.port, 'PATCH', `/api/v1/monitors/${owned0}`, KEY, { critical: false }, { 'if-match': tag });
  assert.equal(patched.status, 200, patched.body);
  await waitFor(async () => (await get(zero.port, `/health/${owned0}`)).json().critical === false, { what: `mon-0 applied the PATCH made on mon-1` });
  assert.equal((await api(one.port, 'DELETE', `/api/v1/monitors/${owned0}`, KEY)).status, 200);
  await waitFor(async () => (await get(zero.port, '/health')).json().checks[owned0] === undefined, { what: 'mon-0 stopped probing the monitor deleted on mon-1' });
});
