/**
 * Issue 20: a config reload (SIGHUP) applies the file's checks with the
 * store's monitors added — the monitors keep probing, a new file check
 * starts, new file defaults reach the monitors that inherit them — and a
 * reload that drops `store` keeps the running store (a restart-only change).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { api, monitorYaml, privateDatabase, startMonitor, type MonitorProcess, type PrivateDatabase } from '../helpers/monitor-store';

const KEY = 'reload-key-0123456789abcd';
let db: PrivateDatabase;
let target: TestHttpServer;
let monitor: MonitorProcess;
const hits = new Map<string, number>();
const config = (port: number, interval: string, extra: string[], store = true) =>
  monitorYaml({
    port,
    keys: [{ name: 'ops', key: KEY }],
    store: store ? {} : false,
    defaults: { interval, timeout: '90ms' },
    checks: [`{ name: file-a, kind: http, url: "http://127.0.0.1:${target.port}/a" }`, ...extra],
  });

before(async () => {
  ensureBuilt();
  db = await privateDatabase();
  target = await startHttpServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    res.end('ok');
  });
  monitor = await startMonitor((port) => config(port, '100ms', []), { STORE_URL: db.url });
});

after(async () => {
  await monitor?.stop();
  await target?.close();
  await db?.drop();
});

const diagnosticsInterval = async (name: string) =>
  ((await get(monitor.port, '/admin/diagnostics', { authorization: `Bearer ${KEY}` })).json().config.checks as { name: string; interval: number }[]).find((c) => c.name === name)?.interval;

test('SIGHUP: monitors stay and take the new defaults; a new file check starts; dropping store is restart-only', async () => {
  const { port } = monitor;
  assert.equal((await api(port, 'POST', '/api/v1/monitors', KEY, { name: 'api-m', kind: 'http', url: `http://127.0.0.1:${target.port}/m` })).status, 201);
  await waitFor(() => (hits.get('/m') ?? 0) > 0, { what: 'api-m probed' });
  assert.equal(await diagnosticsInterval('api-m'), 100, 'the file defaults');

  writeFileSync(monitor.file, config(port, '150ms', [`{ name: file-b, kind: http, url: "http://127.0.0.1:${target.port}/b" }`]));
  monitor.proc.kill('SIGHUP');
  await waitFor(() => (hits.get('/b') ?? 0) > 0, { what: 'file-b probed after the reload' });
  await waitFor(async () => (await diagnosticsInterval('api-m')) === 150, { what: 'api-m took the new defaults.interval' });
  const names = Object.keys((await get(port, '/health')).json().checks).sort();
  assert.deepEqual(names, ['api-m', 'file-a', 'file-b']);
  const listed = ((await api(port, 'GET', '/api/v1/monitors', KEY)).json().items as { name: string; source: string }[]).map((m) => `${m.name}:${m.source}`);
  assert.deepEqual(listed, ['api-m:api', 'file-a:file', 'file-b:file']);

  const seen = hits.get('/m')!;
  writeFileSync(monitor.file, config(port, '150ms', [], false));
  monitor.proc.kill('SIGHUP');
  await waitFor(() => /store removed or store\.postgres changed: takes effect on restart/.test(monitor.output()), { what: 'the restart-only warning' });
  await waitFor(() => hits.get('/m')! > seen + 2, { what: 'api-m still probed' });
  assert.equal((await api(port, 'POST', '/api/v1/monitors', KEY, { name: 'after-reload', kind: 'http', url: `http://127.0.0.1:${target.port}/r` })).status, 201, 'the API still works');
});
