/**
 * The uptime history survives a restart (issue 18): the compiled sidecar
 * (`node dist/cli.js run`) with `state.redis` (the real Redis, a key prefix
 * of its own) records runs of a healthy check and of a failing one whose
 * breaker opens (failed and rejected runs), is stopped (SIGTERM: its last
 * runs are written), and a second process on the same config continues the
 * same numbers: its 24h/7d/30d windows and its SLO block are exactly what the
 * first one wrote to Redis plus the runs it made itself — read in one
 * response, where `windows.1h` (the in-memory latency ring, never persisted)
 * counts its own runs. After its own writes the sum still holds (nothing is
 * counted twice), and every key it wrote has an expiry.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import Redis from 'ioredis';
import { freePort, REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { startCli, type CliProcess } from '../telemetry/support';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';

const PREFIX = `uptime-restart-${process.pid}-${Date.now()}`;

interface WindowJson {
  runs: number;
  successRatio: number | null;
  failed: number;
  rejected: number;
}
interface CheckStatsJson {
  windows: Record<'1m' | '5m' | '1h', { runs: number; successRatio: number | null }>;
  history: Record<'24h' | '7d' | '30d', WindowJson>;
  slo: { objective: number; availability: number | null; runs: number; badRuns: number; errorBudget: { remainingRatio: number | null } } | null;
}
type Counts = { ok: number; failed: number; rejected: number };

describe('uptime history across a restart (state.redis, real processes)', () => {
  let app: TestHttpServer;
  let redis: Redis;
  let yaml: string;
  const running: CliProcess[] = [];

  before(async () => {
    ensureBuilt();
    app = await startHttpServer((_req, res) => res.end('ok'));
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    const closedPort = await freePort(); // nothing listens there: every attempt is refused
    yaml = `
server: { port: 0, host: 127.0.0.1, drainDelay: 0s, showDetails: always }
telemetry: { serviceName: uptime-restart, traces: { enabled: false } }
state: { redis: '${REDIS_URL}', keyPrefix: '${PREFIX}' }
defaults: { interval: 200ms, timeout: 200ms, retry: { attempts: 1 }, slo: { objective: 99.9%, window: 30d } }
checks:
  - { name: web, kind: http, url: '${app.url}/healthz' }
  - { name: gone, kind: tcp, url: 'tcp://127.0.0.1:${closedPort}', critical: false, breaker: { failures: 2, halfOpenAfter: 300ms } }
`;
  });

  after(async () => {
    for (const cli of running) cli.kill();
    const keys = await redis.keys(`${PREFIX}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await app?.close();
  });

  const stats = async (cli: CliProcess): Promise<Record<string, CheckStatsJson>> => {
    const res = await get(cli.port, '/health/stats');
    assert.equal(res.status, 200, res.body);
    return (JSON.parse(res.body) as { checks: Record<string, CheckStatsJson> }).checks;
  };
  const counts = (w: WindowJson): Counts => ({ ok: w.runs - w.failed - w.rejected, failed: w.failed, rejected: w.rejected });

  /** what Redis holds of a check: the sum of its day keys (every run is in an hour bucket) */
  async function stored(check: string): Promise<Counts> {
    const total = { ok: 0, failed: 0, rejected: 0 };
    for (const key of await redis.keys(`${PREFIX}:uptime:${check}:h:*`)) {
      for (const [field, value] of Object.entries(await redis.hgetall(key))) {
        const kind = field.split(':')[1];
        if (kind === 'ok') total.ok += Number(value);
        if (kind === 'fail') total.failed += Number(value);
        if (kind === 'rej') total.rejected += Number(value);
      }
    }
    return total;
  }

  test('the second process continues the numbers of the first (windows and SLO), counting nothing twice', { timeout: 120_000 }, async () => {
    // first process: runs of both checks, including rejections by the open breaker of `gone`
    const first = await startCli(yaml, { LOG_LEVEL: 'info' });
    running.push(first);
    await waitFor(
      async () => {
        const s = await stats(first);
        return s.web!.history['24h'].runs >= 20 && s.gone!.history['24h'].failed >= 2 && s.gone!.history['24h'].rejected >= 2;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'runs of web, failed and rejected runs of gone' },
    );
    const lastSeen = await stats(first);
    const stop = await first.stop();
    assert.equal(stop.code, 0, first.lines.join('\n'));
    const before = { web: await stored('web'), gone: await stored('gone') };
    // everything the first process saw was written at its stop (and perhaps a run or two more)
    for (const name of ['web', 'gone'] as const) {
      const seen = counts(lastSeen[name]!.history['24h']);
      assert.ok(before[name].ok >= seen.ok && before[name].failed >= seen.failed && before[name].rejected >= seen.rejected, `${name}: stored ${JSON.stringify(before[name])} ⊇ seen ${JSON.stringify(seen)}`);
    }
    assert.ok(before.web.ok > 0, 'web succeeded (a run timing out on a busy machine is allowed: the sums below count outcomes)');
    assert.equal(before.gone.ok, 0);
    assert.ok(before.gone.rejected > 0 && before.gone.failed > 0);

    // second process, same config: once it has loaded Redis, history = stored + its own runs
    const second = await startCli(yaml, { LOG_LEVEL: 'info' });
    running.push(second);
    const continued = async () => {
      const s = await stats(second);
      for (const name of ['web', 'gone'] as const) {
        const own = s[name]!.windows['1h'].runs; // this process's runs (the latency ring is not persisted)
        const b = before[name];
        for (const w of ['24h', '7d', '30d'] as const) {
          const c = counts(s[name]!.history[w]);
          if (c.ok + c.failed + c.rejected !== b.ok + b.failed + b.rejected + own) return undefined;
        }
      }
      return s;
    };
    const s = (await waitFor(continued, { timeoutMs: 30_000, intervalMs: 50, what: 'the second process to merge what the first wrote' }))!;
    // per outcome: ok runs add up, and so do the others (the latency ring gives this process's success ratio)
    const windows = ['24h', '7d', '30d'] as const;
    for (const name of ['web', 'gone'] as const) {
      const own = s[name]!.windows['1h'];
      assert.ok(own.runs > 0, `the second process ran ${name} itself`);
      const ownOk = Math.round((own.successRatio ?? 0) * own.runs);
      const b = before[name];
      const ok = b.ok + ownOk;
      const bad = b.failed + b.rejected + own.runs - ownOk;
      for (const w of windows) {
        const c = counts(s[name]!.history[w]);
        assert.deepEqual({ ok: c.ok, bad: c.failed + c.rejected }, { ok, bad }, `${name} ${w}`);
        assert.ok(c.failed >= b.failed && c.rejected >= b.rejected, `${name} ${w}: the stored failed and rejected runs are all there`);
      }
      // the SLO block over the same numbers
      const slo = s[name]!.slo!;
      assert.deepEqual({ runs: slo.runs, bad: slo.badRuns, availability: slo.availability }, { runs: ok + bad, bad, availability: ok / (ok + bad) }, `${name} SLO`);
    }
    assert.equal(counts(s.gone!.history['30d']).ok, 0);
    assert.ok(s.web!.slo!.availability! > 0.5 && s.gone!.slo!.availability === 0);

    // the running sidecar serves the badges from the same history: valid SVG, an ETag that answers 304
    const badge = await get(second.port, '/badges/gone/uptime/24h.svg');
    assert.equal(badge.status, 200);
    assert.equal(badge.headers['content-type'], 'image/svg+xml; charset=utf-8');
    assert.match(badge.body, /^<svg [^>]*aria-label="uptime 24h: 0%"/);
    const etag = (await get(second.port, '/badges/web/health.svg')).headers.etag;
    assert.match(String(etag), /^"[\w-]+"$/);
    const again = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: second.port, path: '/badges/web/health.svg', headers: { 'if-none-match': String(etag) }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    assert.equal(again, 304);
    assert.equal((await get(second.port, '/badges/nope/health.svg')).status, 404);

    // the second process writes its own runs as deltas: after some of them are in Redis, memory still = stored-before + own
    await waitFor(async () => (await stored('web')).ok > before.web.ok, { timeoutMs: 30_000, intervalMs: 100, what: 'a write of the second process' });
    assert.ok(await continued(), 'after its own writes, the second process still counts each run once');

    // and after it stops, Redis holds each run once: what it had + what the second process added
    const lastOfSecond = await stats(second);
    assert.equal((await second.stop()).code, 0);
    const afterBoth = await stored('web');
    assert.ok(afterBoth.ok >= before.web.ok + lastOfSecond.web!.windows['1h'].runs, 'every run of the second process written');
    // bounded keys: every key written has an expiry
    const keys = await redis.keys(`${PREFIX}:uptime:*`);
    assert.ok(keys.length >= 4, keys.join(', '));
    for (const key of keys) assert.ok((await redis.ttl(key)) > 0, `${key} expires`);
  });
});
