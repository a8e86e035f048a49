/**
 * Uptime history in real Redis (the shared server, a key prefix of our own):
 * two simulated days written through the recorder and read back by a fresh
 * history give the same numbers for every window; every write is an
 * increment (watched with MONITOR: HINCRBY and EXPIREAT only, never a
 * rewrite), so two writers add up; keys are the documented names with the
 * documented expiries and stay bounded; a store that cannot be reached at
 * start (the fault proxy refusing) costs nothing and nothing is counted twice
 * once it answers.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import Redis from 'ioredis';
import { DAY_MS, HISTORY_WINDOWS, History, HOUR_MS, MINUTE_MS, type HistoryWindow } from '../../src/health/history';
import { MINUTE_KEY_TTL_MS, RedisUptimeStore } from '../../src/persist/uptime-redis';
import { UptimeRecorder } from '../../src/persist/uptime-recorder';
import { startFaultProxy } from '../helpers/fault-proxy';
import { REDIS_URL, hostPort, waitFor } from '../helpers/servers';

const prefix = `test-uptime-${randomUUID()}`;
const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
const windows = Object.keys(HISTORY_WINDOWS) as HistoryWindow[];

async function keys(pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...batch);
  } while (cursor !== '0');
  return out.sort();
}

/** everything that holds a connection, closed after the tests even when one fails */
const open: { close(): Promise<unknown> }[] = [];
function closing<T extends { close(): Promise<unknown> }>(thing: T): T {
  open.push(thing);
  return thing;
}

before(() => redis.connect());
after(async () => {
  for (const thing of open.reverse()) await thing.close().catch(() => undefined);
  const all = await keys(`${prefix}:*`);
  if (all.length) await redis.del(...all);
  redis.disconnect();
});

describe('uptime history in Redis', () => {
  test('two simulated days written incrementally read back as the same numbers in a fresh process', async () => {
    // simulated time ends at the real now: the keys' absolute expiries must be real
    const end = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
    const start = end - 2 * DAY_MS;
    let now = start;
    const historyA = new History(() => now);
    const storeA = closing(new RedisUptimeStore({ url: REDIS_URL, keyPrefix: `${prefix}:a` }));
    const recorderA = closing(new UptimeRecorder({ store: storeA, history: historyA, now: () => now }));
    recorderA.setChecks(['db']);

    const monitor = await redis.monitor();
    const commands: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((a) => a.startsWith(`${prefix}:a:`))) commands.push(args[0]!.toLowerCase());
    });
    try {
      let i = 0;
      for (now = start; now < end; now += 10_000, i++) {
        // a failure every 7th run, a rejection every 50th, an outage of 20 minutes 30 h in
        const outage = now - start >= 30 * HOUR_MS && now - start < 30 * HOUR_MS + 20 * MINUTE_MS;
        const outcome = outage ? 'timeout' : i % 50 === 0 ? 'rejected' : i % 7 === 0 ? 'failure' : 'success';
        recorderA.record('db', { finishedAt: now, outcome, latencyMs: 1 + (i % 13) * 0.731 });
        if (i % 30 === 0) await recorderA.flush(); // every 5 simulated minutes
      }
      now = end - 1;
      await recorderA.flush();
    } finally {
      await monitor.disconnect();
    }
    assert.equal(recorderA.pendingCount, 0);
    const used = new Set(commands);
    for (const c of used) assert.ok(['hincrby', 'expireat', 'hgetall'].includes(c), `only increments, expiries and reads: saw ${c}`);
    assert.ok(used.has('hincrby') && used.has('expireat'));

    // a new process: empty history, same prefix
    const historyB = new History(() => now);
    const recorderB = closing(new UptimeRecorder({ store: closing(new RedisUptimeStore({ url: REDIS_URL, keyPrefix: `${prefix}:a` })), history: historyB, now: () => now }));
    recorderB.setChecks(['db']);
    await recorderB.flush();
    for (const w of windows) assert.deepEqual(historyB.window('db', HISTORY_WINDOWS[w]), historyA.window('db', HISTORY_WINDOWS[w]), w);
    assert.deepEqual(historyB.series('db', 'minute', 15, 96), historyA.series('db', 'minute', 15, 96));
    assert.deepEqual(historyB.series('db', 'hour', 1, 168), historyA.series('db', 'hour', 1, 168));
    const thirty = historyB.window('db', HISTORY_WINDOWS['30d']);
    assert.ok(thirty.runs > 17_000 && thirty.failed > 2_000 && thirty.rejected > 300, JSON.stringify(thirty));

    // the documented keys: half-hour minute keys still within 25 h, one day key per day, absolute expiries
    const minuteKeys = await keys(`${prefix}:a:uptime:db:m:*`);
    const dayKeys = await keys(`${prefix}:a:uptime:db:h:*`);
    // half hours that began within the last 25.5 h: the older ones expired as soon as they were written
    assert.ok(minuteKeys.length >= 50 && minuteKeys.length <= 52, `${minuteKeys.length} minute keys`);
    assert.ok(dayKeys.length >= 2 && dayKeys.length <= 3, `${dayKeys.length} day keys`);
    for (const key of minuteKeys) assert.match(key, /:m:\d{4}-\d\d-\d\dT\d\d:(00|30)$/);
    for (const key of dayKeys) assert.match(key, /:h:\d{4}-\d\d-\d\d$/);
    const newest = minuteKeys.at(-1)!;
    const expiresAt = await redis.pexpiretime(newest);
    const blockEnd = Date.parse(`${newest.slice(-16)}:00Z`) + 30 * MINUTE_MS;
    assert.equal(expiresAt, blockEnd + MINUTE_KEY_TTL_MS, 'minute keys expire 25 h after their half hour');
    const dayExpiry = await redis.pexpiretime(dayKeys.at(-1)!);
    assert.equal(dayExpiry, Date.parse(`${dayKeys.at(-1)!.slice(-10)}T00:00:00Z`) + DAY_MS + 31 * DAY_MS, 'day keys expire 31 days after their day');
    assert.ok((await redis.hlen(newest)) <= 120, 'a half-hour key stays under 128 fields');
    await recorderA.close();
    await recorderB.close();
  });

  test('two writers (an old and a new pod) add up, field by field', async () => {
    const now = Date.now();
    const a = closing(new UptimeRecorder({ store: closing(new RedisUptimeStore({ url: REDIS_URL, keyPrefix: `${prefix}:b` })), history: new History(() => now), now: () => now }));
    const b = closing(new UptimeRecorder({ store: closing(new RedisUptimeStore({ url: REDIS_URL, keyPrefix: `${prefix}:b` })), history: new History(() => now), now: () => now }));
    a.setChecks(['api']);
    b.setChecks(['api']);
    await a.flush();
    await b.flush();
    for (let i = 0; i < 3; i++) a.record('api', { finishedAt: now, outcome: 'success', latencyMs: 2 });
    for (let i = 0; i < 2; i++) b.record('api', { finishedAt: now, outcome: 'success', latencyMs: 3 });
    b.record('api', { finishedAt: now, outcome: 'rejected', latencyMs: 0 });
    await Promise.all([a.flush(), b.flush()]);
    const store = closing(new RedisUptimeStore({ url: REDIS_URL, keyPrefix: `${prefix}:b` }));
    const minute = Math.floor(now / MINUTE_MS);
    const key = store.minuteKey('api', minute);
    const mm = minute % 60;
    assert.deepEqual(await redis.hgetall(key), { [`${mm}:ok`]: '5', [`${mm}:lat`]: String(3 * 2000 + 2 * 3000), [`${mm}:rej`]: '1' });
    const fresh = new History(() => now);
    fresh.restore('api', await store.load('api', now));
    const w = fresh.window('api', HISTORY_WINDOWS['5m']);
    assert.deepEqual([w.ok, w.rejected, w.meanLatencyMs], [5, 1, 2.4]);
    await Promise.all([a.close(), b.close(), store.close()]);
  });

  test('Redis refusing at start: runs are kept, written once it answers, and counted once', async () => {
    const proxy = closing(await startFaultProxy(hostPort(REDIS_URL)));
    proxy.setMode('refuse');
    let now = Date.now();
    const history = new History(() => now);
    const errors: string[] = [];
    let recovered = 0;
    const url = `redis://127.0.0.1:${proxy.port}`;
    // what an earlier process left
    const earlier = closing(new RedisUptimeStore({ url: REDIS_URL, keyPrefix: `${prefix}:c` }));
    await earlier.add([{ check: 'db', minute: Math.floor(now / MINUTE_MS) - 2, counts: { ok: 10, failed: 1, rejected: 0, latencyUs: 11_000 } }]);
    await earlier.close();
    const recorder = closing(new UptimeRecorder({ store: closing(new RedisUptimeStore({ url, keyPrefix: `${prefix}:c`, connectTimeoutMs: 300 })), history, now: () => now, onError: (m) => errors.push(m), onRecovered: () => recovered++ }));
    try {
      recorder.setChecks(['db']);
      for (let i = 0; i < 4; i++) recorder.record('db', { finishedAt: now, outcome: 'success', latencyMs: 1 });
      await recorder.flush();
      await recorder.flush();
      assert.equal(errors.length, 1, `one report for an outage: ${errors.join(' | ')}`);
      assert.equal(recorder.pendingCount, 1, 'the minute waits in the buffer');
      assert.equal(history.window('db', HISTORY_WINDOWS['5m']).ok, 4, 'the history in memory goes on');

      proxy.setMode('pass');
      await proxy.ready();
      now += 1000;
      // the client reconnects on its own schedule: flush until a write goes through
      await waitFor(async () => {
        await recorder.flush();
        return recovered > 0;
      }, { what: 'a write after Redis answers again', timeoutMs: 30_000 });
      assert.equal(recovered, 1);
      assert.equal(recorder.pendingCount, 0);
      const w = history.window('db', HISTORY_WINDOWS['5m']);
      assert.deepEqual([w.ok, w.failed], [14, 1], 'stored runs merged with the ones recorded meanwhile');
      // and the store now holds both, once
      const again = new History(() => now);
      const store = closing(new RedisUptimeStore({ url: REDIS_URL, keyPrefix: `${prefix}:c` }));
      again.restore('db', await store.load('db', now));
      await store.close();
      assert.deepEqual(again.window('db', HISTORY_WINDOWS['5m']), w);
    } finally {
      await recorder.close();
      await proxy.close();
    }
  });
});
