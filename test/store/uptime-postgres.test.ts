/**
 * Issue 20: in monitor modes the uptime history (docs/uptime.md) is kept in
 * the store's PostgreSQL: deltas add up (two writers never overwrite each
 * other), old buckets go, and a monitor process restarted on the same store
 * continues the numbers of the first.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { PostgresUptimeStore } from '../../src/store/uptime-postgres';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { privateDatabase, startMonitor, type MonitorProcess, type PrivateDatabase } from '../helpers/monitor-store';

let db: PrivateDatabase;
let target: TestHttpServer;
const monitors: MonitorProcess[] = [];

before(async () => {
  ensureBuilt();
  db = await privateDatabase();
  target = await startHttpServer((_req, res) => res.end('ok'));
});

after(async () => {
  for (const m of monitors) await m.stop();
  await target?.close();
  await db?.drop();
});

test('PostgresUptimeStore: two writers add up; minutes past 25 h and hours past 31 days go', async () => {
  const a = new PostgresUptimeStore(db.url);
  const b = new PostgresUptimeStore(db.url);
  const now = Date.now();
  const minute = Math.floor(now / 60_000);
  try {
    await Promise.all([
      a.add([{ check: 'c', minute, counts: { ok: 3, failed: 1, rejected: 0, latencyUs: 4000 } }]),
      b.add([{ check: 'c', minute, counts: { ok: 2, failed: 0, rejected: 1, latencyUs: 1000 } }, { check: 'c', minute: minute - 1, counts: { ok: 1, failed: 0, rejected: 0, latencyUs: 10 } }]),
    ]);
    await db.query('INSERT INTO ohs_uptime_minute (monitor, minute, ok) VALUES ($1, $2, 9)', ['c', minute - 26 * 60]);
    await db.query('INSERT INTO ohs_uptime_hour (monitor, hour, ok) VALUES ($1, $2, 9)', ['c', Math.floor(minute / 60) - 32 * 24]);
    await a.add([{ check: 'other', minute, counts: { ok: 1, failed: 0, rejected: 0, latencyUs: 1 } }]); // a write prunes
    const stored = await b.load('c', now);
    const at = stored.minutes.find((m) => m.minute === minute)!;
    assert.deepEqual(at.counts, { ok: 5, failed: 1, rejected: 1, latencyUs: 5000 });
    assert.equal(stored.minutes.length, 2);
    const hour = stored.hours.find((h) => h.hour === Math.floor(minute / 60))!;
    assert.ok(hour.counts.ok >= 5);
    assert.equal((await db.query('SELECT 1 FROM ohs_uptime_minute WHERE ok = 9')).length, 0, 'the 26-hour-old minute is gone');
    assert.equal((await db.query('SELECT 1 FROM ohs_uptime_hour WHERE ok = 9')).length, 0, 'the 32-day-old hour is gone');
  } finally {
    await a.close();
    await b.close();
  }
});

test('a monitor restarted on the same store continues the uptime numbers of the first', async () => {
  const config = (port: number) => `mode: monitor
server: { port: ${port}, host: 127.0.0.1, showDetails: always, drainDelay: 0s, auth: { keys: [{ name: ops, key: "uptime-key-0123456789abc" }] } }
telemetry: { traces: { enabled: false } }
store: { postgres: \${STORE_URL} }
defaults: { interval: 100ms, timeout: 90ms, retry: { attempts: 1, backoff: { initial: 10ms, max: 10ms }, jitter: false } }
checks:
  - { name: web, kind: http, url: "http://127.0.0.1:${target.port}/" }
`;
  const runs = async (m: MonitorProcess) => (await get(m.port, '/health/web')).json().history['24h'].runs as number;
  const first = await startMonitor(config, { STORE_URL: db.url });
  monitors.push(first);
  await waitFor(async () => (await runs(first)) >= 5, { what: 'five runs' });
  const seen = await runs(first);
  first.proc.kill('SIGTERM');
  await once(first.proc, 'exit');
  const stored = Number((await db.query<{ n: string }>("SELECT coalesce(sum(ok + failed + rejected), 0) AS n FROM ohs_uptime_minute WHERE monitor = 'web'"))[0]!.n);
  assert.ok(stored >= seen, `every run seen (${seen}) was written by the shutdown at the latest: ${stored}`);
  const second = await startMonitor(config, { STORE_URL: db.url });
  monitors.push(second);
  await waitFor(async () => (await runs(second)) > stored, { what: 'the second process counts on from what the first stored' });
});
