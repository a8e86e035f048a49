/**
 * Issue 20: per-minute run history (written as aggregates, kept for
 * store.retention, read back by GET …/results) and the per-key write rate.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { ensureBuilt } from '../helpers/paths';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { api, privateDatabase, startMonitor, type MonitorProcess, type PrivateDatabase } from '../helpers/monitor-store';

const OPS = 'history-ops-key-0123456789';
const OTHER = 'history-other-key-0123456789';
let db: PrivateDatabase;
let target: TestHttpServer;
let probes = 0;
const config = (port: number) => `mode: monitor
server: { port: ${port}, host: 127.0.0.1, drainDelay: 0s, auth: { keys: [{ name: ops, key: "${OPS}" }, { name: other, key: "${OTHER}" }] } }
telemetry: { traces: { enabled: false } }
store: { postgres: \${STORE_URL}, writeRateLimit: 3/1h, retention: 2d }
defaults: { interval: 100ms, timeout: 90ms, retry: { attempts: 1, backoff: { initial: 10ms, max: 10ms }, jitter: false } }
`;
const monitors: MonitorProcess[] = [];

before(async () => {
  ensureBuilt();
  db = await privateDatabase();
  target = await startHttpServer((_req, res) => {
    probes++;
    res.end('ok');
  });
});

after(async () => {
  for (const m of monitors) await m.stop();
  await target?.close();
  await db?.drop();
});

test('writes past store.writeRateLimit get 429 and write nothing; another key has its own quota', async () => {
  const monitor = await startMonitor(config, { STORE_URL: db.url });
  monitors.push(monitor);
  const body = (name: string) => ({ name, kind: 'tcp', url: `tcp://127.0.0.1:${target.port}`, interval: '1h', timeout: '1s' });
  for (const name of ['w1', 'w2', 'w3']) assert.equal((await api(monitor.port, 'POST', '/api/v1/monitors', OPS, body(name))).status, 201);
  const limited = await api(monitor.port, 'POST', '/api/v1/monitors', OPS, body('w4'));
  assert.equal(limited.status, 429, limited.body);
  assert.equal(limited.json().error.code, 'rate_limited');
  assert.match(limited.json().error.message, /store\.writeRateLimit/);
  assert.ok(Number(limited.headers['retry-after']) >= 1);
  assert.equal((await db.query("SELECT 1 FROM ohs_monitors WHERE name = 'w4'")).length, 0);
  assert.equal((await api(monitor.port, 'GET', '/api/v1/monitors', OPS)).status, 200, 'reads are not writes');
  assert.equal((await api(monitor.port, 'POST', '/api/v1/monitors', OTHER, body('w4'))).status, 201, 'the other key writes');
});

test('run history: per-minute aggregates written (on shutdown at the latest), older than the retention dropped, read by /results', async () => {
  const first = monitors[0]!;
  assert.equal((await api(first.port, 'POST', '/api/v1/monitors', OTHER, { name: 'hist', kind: 'http', url: `http://127.0.0.1:${target.port}/hist` })).status, 201);
  await db.query("INSERT INTO ohs_runs_minute VALUES ('hist', now() - interval '3 days', 5, 1, 50, 20), ('hist', now() - interval '1 day', 7, 0, 70, 11)");
  const before = probes;
  await waitFor(() => probes >= before + 5, { what: 'five probes' });
  // SIGTERM: the shutdown writes what it has gathered
  first.proc.kill('SIGTERM');
  await once(first.proc, 'exit');
  const rows = await db.query<{ minute: Date; runs: number; failures: number }>("SELECT minute, runs, failures FROM ohs_runs_minute WHERE monitor = 'hist' ORDER BY minute");
  assert.equal(rows.length >= 2, true, JSON.stringify(rows));
  assert.deepEqual([rows[0]!.runs, rows[0]!.failures], [7, 0], 'the 1-day-old minute is kept, the 3-day-old one (retention 2d) dropped');
  const recent = rows.slice(1).reduce((n, r) => n + r.runs, 0);
  assert.ok(recent >= 5, `at least the five runs seen: ${recent}`);

  const second = await startMonitor(config, { STORE_URL: db.url });
  monitors.push(second);
  const results = await api(second.port, 'GET', '/api/v1/monitors/hist/results?minutes=2880', OPS);
  assert.equal(results.status, 200, results.body);
  const history = results.json().history as { runs: number; failures: number; latencyAvgMs: number | null }[];
  assert.equal(history[0]!.runs, 7);
  assert.equal(history[0]!.latencyAvgMs, 10);
  assert.ok(history.slice(1).reduce((n, h) => n + h.runs, 0) >= 5);
  assert.equal((await api(second.port, 'GET', '/api/v1/monitors/nope/results', OPS)).status, 404);
});
