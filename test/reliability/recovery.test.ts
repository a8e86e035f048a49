/**
 * Reliability: the sidecar recovers by itself from a dependency outage and
 * never leaks connections.
 *
 *  - Redis and PostgreSQL (the real ones) behind fault proxies, cut for 3 s:
 *    refused (listener closed, existing connections destroyed), then a black
 *    hole on both (connections accepted, nothing ever answered). During the
 *    cut: the check is DOWN, its breaker open, /readyz 503, the other check UP.
 *    Restored: UP, breaker closed, /readyz 200 — no admin call, no restart.
 *  - A private redis-server really killed (SIGKILL) and a private PostgreSQL
 *    cluster really stopped (fast shutdown, as a service restart does), each
 *    started again on the same port 3 s later: same recovery. (The shared
 *    PostgreSQL and Redis services are never restarted.)
 *  - Connections are counted on the server side by the name each probe gives
 *    its connection (`otel-health-sidecar:<check>`: Redis CLIENT LIST, PG
 *    pg_stat_activity): exactly one per check before the cut and after
 *    recovery, never more than one while running (sampled every 50 ms), zero
 *    once the sidecar has stopped.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import Redis from 'ioredis';
import pg from 'pg';
import type { Sidecar } from '../../src/sidecar';
import { startFaultProxy, type FaultMode, type FaultProxy } from '../helpers/fault-proxy';
import { DATABASE_URL, hostPort, REDIS_URL, waitFor } from '../helpers/servers';
import { sidecarFromYaml } from '../server/helpers';
import { establishedTo, pgConnections, redisConnections, startRestartablePostgres, startRestartableRedis, type RestartablePostgres, type RestartableRedis } from './support';
import { request } from '../helpers/http';

const KEY = `reliability-key-${randomBytes(8).toString('hex')}`;
const CUT_MS = 3000;
const INTERVAL_MS = 200;
const HALF_OPEN_MS = 1000;
/** a hang guard for "recovers by itself" (no admin call, no restart), not a speed figure: bench/ measures that */
const RECOVERY_BOUND_MS = 60_000;

/**
 * Resolves once each named check has recorded `n` more runs: the event that proves the sidecar went on
 * probing (instead of "nothing changed after a fixed sleep"). Rejects after a hang guard.
 */
function moreRuns(sidecar: Sidecar, names: string[], n: number): Promise<void> {
  const seen = new Map(names.map((name) => [name, 0]));
  return new Promise<void>((resolve, reject) => {
    const guard = setTimeout(() => {
      off();
      reject(new Error(`fewer than ${n} more runs of ${names.join(', ')} in 60 s: ${JSON.stringify([...seen])}`));
    }, 60_000);
    const off = sidecar.store.onRecord((name) => {
      if (!seen.has(name)) return;
      seen.set(name, seen.get(name)! + 1);
      if ([...seen.values()].every((count) => count >= n)) {
        clearTimeout(guard);
        off();
        resolve();
      }
    });
  });
}

function config(port: number, checks: { name: string; kind: string; url: string }[]): string {
  return `server:
  port: ${port}
  host: 127.0.0.1
  drainDelay: 0ms
  auth:
    keys:
      - name: ops
        key: ${KEY}
        rateLimit: 1000000/1m
log: { level: warn }
telemetry: { traces: { enabled: false } }
defaults:
  interval: ${INTERVAL_MS}ms
  timeout: 150ms
  retry: { attempts: 1 }
  breaker: { failures: 3, halfOpenAfter: ${HALF_OPEN_MS}ms }
  thresholds: { failure: 2, success: 1 }
checks:
${checks.map((c) => `  - name: ${c.name}\n    kind: ${c.kind}\n    url: ${c.url}\n    groups: [ready]\n`).join('')}`;
}

interface CheckView {
  status: string;
  breaker: string;
  outcome: string | null;
  message: string | null;
}

async function health(port: number): Promise<Record<string, CheckView>> {
  const reply = await request(port, '/health', { headers: { authorization: `Bearer ${KEY}` } });
  assert.ok(reply.status === 200 || reply.status === 503, `/health answered ${reply.status}: ${reply.body}`);
  return (JSON.parse(reply.body) as { checks: Record<string, CheckView> }).checks;
}

const readyz = async (port: number) => (await request(port, '/readyz')).status;

/** Samples `count()` every 50 ms in the background; `max` is the largest value seen. */
function sampler(count: () => Promise<number>) {
  let max = 0;
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const n = await count();
        samples++;
        max = Math.max(max, n);
      } catch {
        // an admin query during a restart of the server it talks to: no sample
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    get max() {
      return max;
    },
    get samples() {
      return samples;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Wait until the check is DOWN with its breaker open and /readyz is 503; the others stay UP. */
async function expectOutage(port: number, name: string, healthy: string[], what: string): Promise<number> {
  const began = performance.now();
  await waitFor(
    async () => {
      const checks = await health(port);
      return checks[name]?.status === 'DOWN' && checks[name]?.breaker === 'open';
    },
    { timeoutMs: 30_000, intervalMs: 20, what: `${name} DOWN with breaker open (${what})` },
  );
  const detectedMs = performance.now() - began;
  assert.equal(await readyz(port), 503, `/readyz during ${what}`);
  const checks = await health(port);
  for (const other of healthy) assert.equal(checks[other]?.status, 'UP', `${other} unaffected by ${what}`);
  return detectedMs;
}

/** From now: time until /readyz is 200 and every check is UP with a closed breaker. */
async function expectRecovery(port: number, names: string[], what: string): Promise<number> {
  const began = performance.now();
  await waitFor(
    async () => {
      if ((await readyz(port)) !== 200) return false;
      const checks = await health(port);
      return names.every((n) => checks[n]?.status === 'UP' && checks[n]?.breaker === 'closed');
    },
    { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 20, what: `recovery after ${what}` },
  );
  return performance.now() - began;
}

describe('recovery: Redis and PostgreSQL cut at fault proxies', () => {
  const suffix = randomBytes(3).toString('hex');
  const cache = `cache-${suffix}`;
  const db = `db-${suffix}`;
  let redisProxy: FaultProxy;
  let pgProxy: FaultProxy;
  let redisAdmin: Redis;
  let pgAdmin: pg.Client;
  let sidecar: Sidecar;
  let port: number;
  let redisMax: ReturnType<typeof sampler>;
  let pgMax: ReturnType<typeof sampler>;

  before(async () => {
    redisProxy = await startFaultProxy(hostPort(REDIS_URL));
    pgProxy = await startFaultProxy(hostPort(DATABASE_URL));
    redisAdmin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redisAdmin.connect();
    pgAdmin = new pg.Client({ connectionString: DATABASE_URL });
    await pgAdmin.connect();
    const pgPath = new URL(DATABASE_URL);
    const pgUrl = `postgres://${pgPath.username || 'postgres'}@127.0.0.1:${pgProxy.port}${pgPath.pathname}`;
    ({ sidecar } = sidecarFromYaml(
      config(0, [
        { name: cache, kind: 'redis', url: redisProxy.url('redis') },
        { name: db, kind: 'postgres', url: pgUrl },
      ]),
    ));
    port = await sidecar.start();
  });

  after(async () => {
    await redisMax?.stop();
    await pgMax?.stop();
    await sidecar?.shutdown({ drain: false });
    await Promise.all([redisProxy?.close(), pgProxy?.close()]);
    redisAdmin?.disconnect();
    await pgAdmin?.end().catch(() => undefined);
  });

  it('starts UP with exactly one connection per check on the server side', async (t: TestContext) => {
    await waitFor(async () => (await readyz(port)) === 200, { timeoutMs: 30_000, what: 'ready' });
    await waitFor(async () => (await redisConnections(redisAdmin, cache)) === 1 && (await pgConnections(pgAdmin, db)) === 1, {
      timeoutMs: 30_000,
      what: 'one Redis and one PG connection',
    });
    redisMax = sampler(() => redisConnections(redisAdmin, cache));
    pgMax = sampler(() => pgConnections(pgAdmin, db));
    t.diagnostic(`before the cuts: redis ${await redisConnections(redisAdmin, cache)}, postgres ${await pgConnections(pgAdmin, db)} connection(s)`);
  });

  const cuts: [string, () => FaultProxy[], FaultMode, () => string, () => string[]][] = [
    ['Redis refused, existing connections dropped', () => [redisProxy], 'refuse', () => cache, () => [db]],
    ['PostgreSQL refused, existing connections dropped', () => [pgProxy], 'refuse', () => db, () => [cache]],
    ['Redis black hole', () => [redisProxy], 'blackhole', () => cache, () => [db]],
    ['PostgreSQL black hole', () => [pgProxy], 'blackhole', () => db, () => [cache]],
  ];
  for (const [what, proxies, mode, name, healthy] of cuts) {
    it(`${what} for ${CUT_MS / 1000} s: DOWN + breaker open, then UP + breaker closed by itself; one connection after`, async (t: TestContext) => {
      const cutAt = performance.now();
      for (const proxy of proxies()) proxy.setMode(mode);
      const detectedMs = await expectOutage(port, name(), healthy(), what);
      // keep it cut for CUT_MS in all; the breaker stays open (half-open tries fail again)
      await new Promise((r) => setTimeout(r, Math.max(0, CUT_MS - (performance.now() - cutAt))));
      const during = (await health(port))[name()]!;
      assert.equal(during.status, 'DOWN');
      assert.notEqual(during.breaker, 'closed', `breaker of ${name()} after ${CUT_MS} ms cut`);
      for (const proxy of proxies()) {
        proxy.setMode('pass');
        await proxy.ready();
      }
      const recoveryMs = await expectRecovery(port, [cache, db], what);
      // exactly one connection per check again, on the server and at the proxy, and it stays so
      await waitFor(async () => (await redisConnections(redisAdmin, cache)) === 1 && (await pgConnections(pgAdmin, db)) === 1, {
        timeoutMs: 30_000,
        what: `one connection per check after ${what}`,
      });
      await moreRuns(sidecar, [cache, db], 5);
      assert.equal(await redisConnections(redisAdmin, cache), 1, 'Redis connections five runs after recovery');
      assert.equal(await pgConnections(pgAdmin, db), 1, 'PG connections five runs after recovery');
      assert.equal(redisProxy.openConnections, 1, 'connections open at the Redis proxy');
      assert.equal(pgProxy.openConnections, 1, 'connections open at the PG proxy');
      assert.ok(redisMax.max <= 1 && pgMax.max <= 1, `at most one connection per check at any time (Redis max ${redisMax.max}, PG max ${pgMax.max})`);
      t.diagnostic(`${what}: DOWN+open after ${detectedMs.toFixed(0)} ms, recovered ${recoveryMs.toFixed(0)} ms after restore (interval ${INTERVAL_MS} ms, halfOpenAfter ${HALF_OPEN_MS} ms)`);
    });
  }

  it('after all cuts: never more than one connection per check; zero once the sidecar stops', async (t: TestContext) => {
    await redisMax.stop();
    await pgMax.stop();
    assert.ok(redisMax.samples > 20 && pgMax.samples > 20, `sampled ${redisMax.samples} / ${pgMax.samples} times`);
    assert.equal(redisMax.max, 1, 'max Redis connections of the check');
    assert.equal(pgMax.max, 1, 'max PG connections of the check');
    await sidecar.shutdown({ drain: false });
    await waitFor(async () => (await redisConnections(redisAdmin, cache)) === 0 && (await pgConnections(pgAdmin, db)) === 0, {
      timeoutMs: 30_000,
      what: 'no connection left after stop',
    });
    assert.equal(redisProxy.openConnections + pgProxy.openConnections, 0, 'nothing open at the proxies');
    t.diagnostic(`sampled ${redisMax.samples} + ${pgMax.samples} times: max ${redisMax.max} Redis / ${pgMax.max} PG connection per check while running; 0 / 0 after stop`);
  });
});

describe('recovery: a private redis-server killed and started again on the same port', () => {
  const name = `cache-${randomBytes(3).toString('hex')}`;
  let redis: RestartableRedis;
  let sidecar: Sidecar;
  let port: number;

  before(async () => {
    redis = await startRestartableRedis();
    ({ sidecar } = sidecarFromYaml(config(0, [{ name, kind: 'redis', url: redis.url }])));
    port = await sidecar.start();
  });

  after(async () => {
    await sidecar?.shutdown({ drain: false });
    await redis?.stop();
  });

  const withAdmin = async <T>(fn: (admin: Redis) => Promise<T>): Promise<T> => {
    const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await admin.connect();
      return await fn(admin);
    } finally {
      admin.disconnect();
    }
  };

  it(`SIGKILL, down ${CUT_MS / 1000} s, restarted: DOWN + breaker open, then UP + breaker closed; one connection; zero after stop`, async (t: TestContext) => {
    await waitFor(async () => (await readyz(port)) === 200, { timeoutMs: 30_000, what: 'ready' });
    await waitFor(() => withAdmin(async (a) => (await redisConnections(a, name)) === 1), { timeoutMs: 30_000, what: 'one connection before the kill' });
    await waitFor(async () => (await establishedTo(redis.port)) === 1, { timeoutMs: 30_000, what: 'one established socket to redis-server (the check) before the kill' });

    const killedAt = performance.now();
    await redis.kill('SIGKILL');
    const detectedMs = await expectOutage(port, name, [], 'redis-server killed');
    await new Promise((r) => setTimeout(r, Math.max(0, CUT_MS - (performance.now() - killedAt))));
    assert.equal((await health(port))[name]!.status, 'DOWN');
    assert.equal(await establishedTo(redis.port), 0, 'no socket to the dead server kept');

    await redis.start();
    const recoveryMs = await expectRecovery(port, [name], 'redis-server restart');
    await waitFor(() => withAdmin(async (a) => (await redisConnections(a, name)) === 1), { timeoutMs: 30_000, what: 'one connection after the restart' });
    await moreRuns(sidecar, [name], 5);
    assert.equal(await withAdmin((a) => redisConnections(a, name)), 1, 'connections five runs after recovery');
    // (the admin connection just closed may still count for a moment)
    await waitFor(async () => (await establishedTo(redis.port)) === 1, { timeoutMs: 30_000, what: 'one established socket to the restarted server' });

    await sidecar.shutdown({ drain: false });
    await waitFor(() => withAdmin(async (a) => (await redisConnections(a, name)) === 0), { timeoutMs: 30_000, what: 'no connection after stop' });
    await waitFor(async () => (await establishedTo(redis.port)) === 0, { timeoutMs: 30_000, what: 'no socket after stop' });
    t.diagnostic(`redis-server SIGKILL: DOWN+open after ${detectedMs.toFixed(0)} ms; recovered ${recoveryMs.toFixed(0)} ms after the restart; connections 1 → 1 → 0`);
  });
});

describe('recovery: a private PostgreSQL cluster stopped (fast shutdown) and started again on the same port', () => {
  const name = `db-${randomBytes(3).toString('hex')}`;
  let postgres: RestartablePostgres;
  let sidecar: Sidecar;
  let port: number;

  before(async () => {
    postgres = await startRestartablePostgres();
    ({ sidecar } = sidecarFromYaml(config(0, [{ name, kind: 'postgres', url: postgres.url }])));
    port = await sidecar.start();
  });

  after(async () => {
    await sidecar?.shutdown({ drain: false });
    await postgres?.stop();
  });

  const count = async (): Promise<number> => {
    const admin = new pg.Client({ connectionString: postgres.url, connectionTimeoutMillis: 1000 });
    await admin.connect();
    try {
      return await pgConnections(admin, name);
    } finally {
      await admin.end();
    }
  };

  it(`restart with ${CUT_MS / 1000} s down: DOWN + breaker open, then UP + breaker closed; one backend; zero after stop`, async (t: TestContext) => {
    await waitFor(async () => (await readyz(port)) === 200, { timeoutMs: 30_000, what: 'ready' });
    await waitFor(async () => (await count()) === 1, { timeoutMs: 30_000, what: 'one backend before the stop' });
    await waitFor(async () => (await establishedTo(postgres.port)) === 1, { timeoutMs: 30_000, what: 'one established socket to PostgreSQL (the check) before the stop' });

    const stoppedAt = performance.now();
    await postgres.kill('SIGINT'); // fast shutdown: sessions terminated, as a service restart does
    const detectedMs = await expectOutage(port, name, [], 'PostgreSQL stopped');
    await new Promise((r) => setTimeout(r, Math.max(0, CUT_MS - (performance.now() - stoppedAt))));
    assert.equal((await health(port))[name]!.status, 'DOWN');
    assert.equal(await establishedTo(postgres.port), 0, 'no socket to the stopped server kept');

    await postgres.start();
    const recoveryMs = await expectRecovery(port, [name], 'PostgreSQL restart');
    await waitFor(async () => (await count()) === 1, { timeoutMs: 30_000, what: 'one backend after the restart' });
    await moreRuns(sidecar, [name], 5);
    assert.equal(await count(), 1, 'backends five runs after recovery');
    await waitFor(async () => (await establishedTo(postgres.port)) === 1, { timeoutMs: 30_000, what: 'one established socket to the restarted server' });

    await sidecar.shutdown({ drain: false });
    await waitFor(async () => (await count()) === 0, { timeoutMs: 30_000, what: 'no backend after stop' });
    await waitFor(async () => (await establishedTo(postgres.port)) === 0, { timeoutMs: 30_000, what: 'no socket after stop' });
    t.diagnostic(`PostgreSQL fast shutdown: DOWN+open after ${detectedMs.toFixed(0)} ms; recovered ${recoveryMs.toFixed(0)} ms after the restart; backends 1 → 1 → 0`);
  });
});
