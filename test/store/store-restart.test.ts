/**
 * Issue 20: the store's PostgreSQL (a private cluster from initdb) stopped
 * mid-run: probing goes on from memory, reads answer from memory, writes get
 * 503 store_unavailable saying nothing was written; once PostgreSQL is back
 * the same write succeeds, and a change made straight in the database (with
 * its NOTIFY) is picked up through the re-established change feed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { api, monitorYaml, startMonitor, startRestartablePostgres, type MonitorProcess, type RestartablePostgres } from '../helpers/monitor-store';

const KEY = 'restart-key-0123456789abc';
let database: RestartablePostgres;
let target: TestHttpServer;
let monitor: MonitorProcess;
const hits = new Map<string, number>();

before(async () => {
  ensureBuilt();
  database = await startRestartablePostgres();
  target = await startHttpServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    res.end('ok');
  });
  monitor = await startMonitor(
    (port) =>
      monitorYaml({
        port,
        keys: [{ name: 'ops', key: KEY }],
        store: { writeRateLimit: '1000/1m' },
        defaults: { interval: '200ms', timeout: '190ms', breaker: '{ failures: 1000, halfOpenAfter: 200ms }' },
      }),
    { STORE_URL: database.url },
  );
});

after(async () => {
  await monitor?.stop();
  await target?.close();
  await database?.destroy();
});

test('PostgreSQL restarted: probing from memory, 503 for writes, then caught up', async () => {
  const { port } = monitor;
  const body = (name: string) => ({ name, kind: 'http', url: `http://127.0.0.1:${target.port}/${name}` });
  assert.equal((await api(port, 'POST', '/api/v1/monitors', KEY, body('before'))).status, 201);
  await waitFor(() => (hits.get('/before') ?? 0) > 0, { what: 'before probed' });

  await database.stop();
  const during = hits.get('/before')!;
  await waitFor(() => hits.get('/before')! >= during + 3, { what: 'probing goes on with PostgreSQL down' });
  const list = await api(port, 'GET', '/api/v1/monitors', KEY);
  assert.equal(list.status, 200, 'reads answer from memory');
  assert.deepEqual(list.json().items.map((m: { name: string }) => m.name), ['before']);
  const refused = await api(port, 'POST', '/api/v1/monitors', KEY, body('after'));
  assert.equal(refused.status, 503, refused.body);
  assert.equal(refused.json().error.code, 'store_unavailable');
  assert.match(refused.json().error.message, /not reachable.*the change was not made/);
  assert.equal(refused.headers['retry-after'], '5');
  assert.equal((await api(port, 'PATCH', '/api/v1/monitors/before', KEY, { critical: false })).status, 503);
  assert.equal((await get(port, '/-/healthy')).status, 200);

  await database.start();
  // the same write, retried as a client would, succeeds once PostgreSQL answers
  await waitFor(async () => (await api(port, 'POST', '/api/v1/monitors', KEY, body('after'))).status === 201, { intervalMs: 200, what: 'write accepted again' });
  await waitFor(() => (hits.get('/after') ?? 0) > 0, { what: 'after probed' });
  // a change made elsewhere (straight in the database, with its NOTIFY) arrives through the change feed
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query("INSERT INTO ohs_monitors (name, body, created_by, updated_by) VALUES ('elsewhere', $1, 'sql', 'sql')", [body('elsewhere')]);
    await client.query("SELECT pg_notify('ohs_monitors', 'elsewhere')");
  } finally {
    await client.end();
  }
  await waitFor(() => (hits.get('/elsewhere') ?? 0) > 0, { what: 'a monitor added elsewhere probed after the restart' });
  assert.match(monitor.output(), /change feed \(LISTEN\) lost; reconnecting \(probing goes on/);
  assert.match(monitor.output(), /change feed \(LISTEN\) re-established/);
});
