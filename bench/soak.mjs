#!/usr/bin/env node
/**
 * `npm run soak` — 60 s at a high request rate on every endpoint of the compiled
 * sidecar while its dependencies flap through fault proxies.
 *
 * Setup: real Redis (127.0.0.1:6379), real PostgreSQL (127.0.0.1:5432/test) and
 * a node:http app, each behind a TCP fault proxy; the sidecar (`node dist/cli.js
 * run`) probes all three every 250 ms. wrk (1 thread, 32 keep-alive connections)
 * cycles through /livez /readyz /startupz /health /health/<each check>
 * /health/stats /metrics / with an API key (so nothing is rate limited) for 60 s.
 * Every 2.5 s one dependency is cut (refused or black-holed, in turn) or
 * restored.
 *
 * Asserted (exit 1 if any fails; bench/results/soak.json either way):
 *  - zero 5xx other than 503 whose body says the state is DOWN ("… check
 *    failed", "status":"DOWN"), zero socket errors/timeouts at wrk;
 *  - zero crashes: the process is alive at every sample, exits 0 on SIGTERM;
 *  - RSS flat: the floor (lowest sample, i.e. after a GC) of the second half
 *    (35–60 s) ≤ 1.10× that of the first (10–35 s); peaks and slope reported;
 *  - probe cadence kept: runs per check (histogram counts in /metrics, every
 *    outcome) within 0.95–1.20× elapsed / interval (event-driven re-probes on a
 *    dropped connection may add a few);
 *  - no leaked connections: one per check on the server side (Redis CLIENT
 *    LIST, pg_stat_activity) after the soak, zero after the stop.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import pg from 'pg';
import { startFaultProxy } from './lib/fault-proxy.mjs';
import { rssOf, sleep } from './lib/proc.mjs';
import { writeResult } from './lib/result.mjs';
import { startHttpApp } from './lib/services.mjs';
import { spawnSidecar, httpGet, waitHttp } from './lib/sidecar.mjs';
import { figure, median, round } from './lib/stats.mjs';

const DURATION_S = Number(process.env.SOAK_SECONDS ?? 60);
const INTERVAL_MS = 250;
const FLAP_MS = 2500;
const CONNECTIONS = 32;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const KEY = `soak-${randomBytes(12).toString('hex')}`;
const suffix = randomBytes(3).toString('hex');
const CHECKS = { cache: `cache-${suffix}`, db: `db-${suffix}`, app: `app-${suffix}` };
const MiB = 1024 * 1024;

const hostPort = (url) => {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || (u.protocol.startsWith('redis') ? 6379 : 5432)) };
};

/** wrk Lua: rotate the paths; classify every answer; 5xx bodies must say DOWN. */
function wrkScript(paths) {
  return `
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  paths = { ${paths.map((p) => JSON.stringify(p)).join(', ')} }
  idx = 0
  s2xx = 0; s3xx = 0; s4xx = 0; down503 = 0; bad5xx = 0; badsample = ""; s4sample = ""
  wrk.headers["Authorization"] = "Bearer ${KEY}"
end
function request()
  idx = idx % #paths + 1
  return wrk.format("GET", paths[idx])
end
function response(status, headers, body)
  if status >= 500 then
    if status == 503 and body and (string.find(body, "check failed", 1, true) or string.find(body, '"status":"DOWN"', 1, true)) then
      down503 = down503 + 1
    else
      bad5xx = bad5xx + 1
      if badsample == "" then badsample = status .. " " .. string.sub(body or "", 1, 160) end
    end
  elseif status >= 400 then
    s4xx = s4xx + 1
    if s4sample == "" then s4sample = status .. " " .. string.sub(body or "", 1, 160) end
  elseif status >= 300 then s3xx = s3xx + 1
  else s2xx = s2xx + 1 end
end
function done(summary, latency, requests)
  local t = { s2xx = 0, s3xx = 0, s4xx = 0, down503 = 0, bad5xx = 0 }
  local bs, fs = "", ""
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + th:get(k) end
    if bs == "" then bs = th:get("badsample") end
    if fs == "" then fs = th:get("s4sample") end
  end
  io.write(string.format("SOAK s2xx=%d s3xx=%d s4xx=%d down503=%d bad5xx=%d\\n", t.s2xx, t.s3xx, t.s4xx, t.down503, t.bad5xx))
  io.write("SOAK-BAD5XX " .. bs:gsub("\\n", " ") .. "\\n")
  io.write("SOAK-4XX " .. fs:gsub("\\n", " ") .. "\\n")
end
`;
}

function runWrk(url, script, seconds) {
  const dir = mkdtempSync(join(tmpdir(), 'soak-wrk-'));
  const file = join(dir, 'soak.lua');
  writeFileSync(file, script);
  return new Promise((resolve, reject) => {
    execFile('wrk', ['-t', '1', '-c', String(CONNECTIONS), '-d', `${seconds}s`, '--timeout', '2s', '-s', file, url], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      if (err) return reject(new Error(`wrk failed: ${err.message}\n${stderr}`));
      const num = (re) => Number(re.exec(stdout)?.[1] ?? NaN);
      const m = /SOAK s2xx=(\d+) s3xx=(\d+) s4xx=(\d+) down503=(\d+) bad5xx=(\d+)/.exec(stdout);
      if (!m) return reject(new Error(`cannot parse wrk output:\n${stdout}\n${stderr}`));
      const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      resolve({
        requests: num(/(\d+) requests in/),
        rps: num(/Requests\/sec:\s+([\d.]+)/),
        s2xx: +m[1],
        s3xx: +m[2],
        s4xx: +m[3],
        down503: +m[4],
        bad5xx: +m[5],
        badSample: /SOAK-BAD5XX (.*)/.exec(stdout)?.[1]?.trim() ?? '',
        s4xxSample: /SOAK-4XX (.*)/.exec(stdout)?.[1]?.trim() ?? '',
        socketErrors: errs ? { connect: +errs[1], read: +errs[2], write: +errs[3], timeout: +errs[4] } : { connect: 0, read: 0, write: 0, timeout: 0 },
        raw: stdout,
      });
    });
  });
}

/** Per check since start: runs (probe-duration histogram counts, all outcomes summed), transitions to DOWN, and DOWN → UP. */
async function probeRuns(url) {
  const { status, body } = await httpGet(`${url}/metrics`, 5000);
  if (status !== 200) throw new Error(`/metrics answered ${status}`);
  const zero = () => Object.fromEntries(Object.values(CHECKS).map((n) => [n, 0]));
  const runs = zero();
  const down = zero();
  const up = zero();
  for (const line of body.split('\n')) {
    const m = /^(healthcheck_probe_duration_seconds_count|healthcheck_transitions_total)\{([^}]*)\} (\d+(?:\.\d+)?)/.exec(line);
    if (!m) continue;
    const name = /healthcheck_name="([^"]+)"/.exec(m[2])?.[1];
    if (!(name in runs)) continue;
    if (m[1] === 'healthcheck_probe_duration_seconds_count') runs[name] += Number(m[3]);
    else if (/healthcheck_to="DOWN"/.test(m[2])) down[name] += Number(m[3]);
    else if (/healthcheck_to="UP"/.test(m[2]) && !/healthcheck_from="UNKNOWN"/.test(m[2])) up[name] += Number(m[3]);
  }
  return { runs, down, up };
}

/** least-squares slope of (t seconds, y) */
function slope(points) {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function main() {
  const app = await startHttpApp();
  const proxies = {
    cache: await startFaultProxy(hostPort(REDIS_URL)),
    db: await startFaultProxy(hostPort(DATABASE_URL)),
    app: await startFaultProxy({ host: '127.0.0.1', port: app.port }),
  };
  const pgUser = new URL(DATABASE_URL).username || 'postgres';
  const pgDb = new URL(DATABASE_URL).pathname;
  const config = `server:
  port: \${PORT}
  host: 127.0.0.1
  drainDelay: 500ms
  auth:
    keys:
      - name: soak
        key: ${KEY}
        rateLimit: 1000000000/1s
    anonymousRateLimit: 1000000000/1s
log: { level: info }
defaults:
  interval: ${INTERVAL_MS}ms
  timeout: 200ms
  retry: { attempts: 1 }
  breaker: { failures: 3, halfOpenAfter: 1s }
  thresholds: { failure: 2, success: 1 }
checks:
  - name: ${CHECKS.cache}
    kind: redis
    url: redis://127.0.0.1:${proxies.cache.port}
  - name: ${CHECKS.db}
    kind: postgres
    url: postgres://${pgUser}@127.0.0.1:${proxies.db.port}${pgDb}
  - name: ${CHECKS.app}
    kind: http
    url: http://127.0.0.1:${proxies.app.port}/
`;
  const sidecar = await spawnSidecar(config, { env: { OTEL_TRACES_EXPORTER: 'none' } });
  let exit;
  const exited = new Promise((resolve) => sidecar.child.once('exit', (code, signal) => resolve((exit = { code, signal }))));
  const redisAdmin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redisAdmin.connect();
  const pgAdmin = new pg.Client({ connectionString: DATABASE_URL });
  await pgAdmin.connect();
  const connections = async () => {
    const list = String(await redisAdmin.call('CLIENT', 'LIST'));
    const redis = list.split('\n').filter((l) => l.split(' ').includes(`name=otel-health-sidecar:${CHECKS.cache}`)).length;
    const { rows } = await pgAdmin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [`otel-health-sidecar:${CHECKS.db}`]);
    return { redis, postgres: rows[0].n };
  };

  // weighted mix: kubelet paths most often, /metrics (≈ 2 ms of CPU each: a real scraper
  // comes every 15 s) least; every path is hit thousands of times either way
  const weights = [
    ['/livez', 8],
    ['/readyz', 8],
    ['/startupz', 8],
    ['/health', 4],
    ...Object.values(CHECKS).map((n) => [`/health/${n}`, 2]),
    ['/health/stats', 2],
    ['/', 2],
    ['/metrics', 1],
  ];
  // interleaved (round robin over the weights) so consecutive requests differ
  const paths = [];
  const left = weights.map(([p, w]) => [p, w]);
  while (left.some(([, w]) => w > 0)) for (const e of left) if (e[1]-- > 0) paths.push(e[0]);
  console.log(`[soak] sidecar pid ${sidecar.pid} on ${sidecar.url}; ${DURATION_S} s of wrk -c${CONNECTIONS} over ${weights.length} paths; a dependency cut or restored every ${FLAP_MS} ms`);

  // ---- flapping: cut one dependency (refuse / black hole in turn), restore, next
  const plan = [
    ['cache', 'refuse'],
    ['db', 'blackhole'],
    ['app', 'refuse'],
    ['cache', 'blackhole'],
    ['db', 'refuse'],
    ['app', 'blackhole'],
  ];
  let flapping = true;
  const cuts = [];
  const flapper = (async () => {
    for (let i = 0; flapping; i++) {
      const [dep, mode] = plan[i % plan.length];
      proxies[dep].setMode(mode);
      cuts.push(`${dep}:${mode}`);
      await sleep(FLAP_MS);
      proxies[dep].setMode('pass');
      await proxies[dep].ready();
      if (!flapping) break;
      await sleep(FLAP_MS);
    }
  })();

  // ---- RSS and liveness every 250 ms; /metrics run counters at start and end
  const t0 = performance.now();
  const runs0 = await probeRuns(sidecar.url);
  const rss = [];
  let deadAt = null;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const t = (performance.now() - t0) / 1000;
      if (sidecar.child.exitCode !== null || sidecar.child.signalCode !== null) {
        deadAt ??= t;
      } else {
        rss.push([t, rssOf(sidecar.pid)]);
      }
      await sleep(250);
    }
  })();

  const load = await runWrk(sidecar.url, wrkScript(paths), DURATION_S);
  const runs1 = await probeRuns(sidecar.url).catch(() => null);
  const elapsedS = (performance.now() - t0) / 1000;
  sampling = false;
  flapping = false;
  await sampler;
  await flapper;
  for (const p of Object.values(proxies)) {
    p.setMode('pass');
    await p.ready();
  }

  // ---- after the soak: recovers, one connection per check, then a clean stop
  const aliveAtEnd = sidecar.child.exitCode === null && sidecar.child.signalCode === null;
  let recovered = false;
  try {
    await waitHttp(`${sidecar.url}/readyz`, { status: 200, timeoutMs: 15_000 });
    recovered = true;
  } catch {}
  await sleep(1000);
  const final = await probeRuns(sidecar.url).catch(() => null);
  const running = await connections();
  const stopAt = performance.now();
  sidecar.child.kill('SIGTERM');
  const killer = setTimeout(() => sidecar.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killer);
  const stopMs = performance.now() - stopAt;
  await sleep(300);
  const stopped = await connections();
  const proxyOpen = Object.values(proxies).reduce((s, p) => s + p.openConnections, 0);
  await sidecar.stop();
  redisAdmin.disconnect();
  await pgAdmin.end();
  await Promise.all(Object.values(proxies).map((p) => p.close()));
  await app.stop();

  // ---- figures
  const MB = (b) => round(b / MiB, 1);
  const inWindow = (a, b) => rss.filter(([t]) => t >= a && t < b).map(([, v]) => v);
  // RSS is a GC sawtooth under this load (heap grows, a major GC drops it): compare the
  // floors (lowest sample = after a collection) and the peaks of 10 s–midpoint vs midpoint–end;
  // a leak raises the floor
  const mid = 10 + (DURATION_S - 10) / 2;
  const early = inWindow(10, mid);
  const late = inWindow(mid, DURATION_S + 1);
  const rssSlope = slope(rss.filter(([t]) => t >= 10).map(([t, v]) => [t, v / MiB])) * 60; // MiB per minute
  const expectedRuns = (elapsedS * 1000) / INTERVAL_MS;
  const figures = [
    figure({
      id: 'requests',
      label: `requests served (wrk -c${CONNECTIONS}, ${weights.length} paths, ${DURATION_S} s)`,
      unit: 'req/s',
      value: round(load.rps, 0),
      goal: '',
      note: `${load.requests} requests: ${load.s2xx} 2xx, ${load.s3xx} 3xx, ${load.s4xx} 4xx, ${load.down503} 503 (state DOWN), ${load.bad5xx} other 5xx; ${cuts.length} dependency cuts`,
      extra: { requests: load.requests, statuses: { s2xx: load.s2xx, s3xx: load.s3xx, s4xx: load.s4xx, down503: load.down503, bad5xx: load.bad5xx } },
    }),
    figure({
      id: 'bad-5xx',
      label: '5xx not caused by DOWN state',
      unit: 'responses',
      value: load.bad5xx,
      goal: '= 0',
      check: (v) => v === 0,
      note: load.bad5xx ? `first: ${load.badSample}` : `${load.down503} × 503 all with a DOWN body ("check failed" / "status":"DOWN")`,
    }),
    figure({
      id: 'unexpected-4xx',
      label: '4xx (none expected: valid key, known paths)',
      unit: 'responses',
      value: load.s4xx,
      goal: '= 0',
      check: (v) => v === 0,
      note: load.s4xx ? `first: ${load.s4xxSample}` : '',
    }),
    figure({
      id: 'socket-errors',
      label: 'socket errors and timeouts at the load generator',
      unit: 'errors',
      value: Object.values(load.socketErrors).reduce((a, b) => a + b, 0),
      goal: '= 0',
      check: (v) => v === 0,
      note: JSON.stringify(load.socketErrors),
    }),
    figure({
      id: 'crashes',
      label: 'crashes (process gone during the soak; exit status on SIGTERM)',
      unit: 'crashes',
      value: deadAt === null && aliveAtEnd ? 0 : 1,
      goal: '= 0 and exit 0',
      check: (v) => v === 0 && exit?.code === 0 && exit?.signal === null,
      note: `exit ${JSON.stringify(exit)} ${round(stopMs, 0)} ms after SIGTERM (drainDelay 500 ms)${deadAt !== null ? `; died at ${round(deadAt, 1)} s` : ''}`,
    }),
    figure({
      id: 'rss',
      label: `RSS floor (lowest sample) ${round(mid, 0)}–${DURATION_S} s vs 10–${round(mid, 0)} s`,
      unit: 'MiB',
      value: MB(Math.min(...late)),
      spread: [MB(Math.min(...late)), MB(Math.max(...late))],
      baseline: { label: `RSS floor 10–${round(mid, 0)} s`, value: MB(Math.min(...early)), spread: [MB(Math.min(...early)), MB(Math.max(...early))] },
      goal: '≤ 1.10× (flat)',
      check: (_v, ratio) => ratio !== null && ratio <= 1.1,
      note: `spread = [floor, peak] of each half (GC sawtooth); peaks ${MB(Math.max(...early))} → ${MB(Math.max(...late))} MiB; least-squares slope from 10 s ${round(rssSlope, 2)} MiB/min`,
      extra: { slopeMiBPerMin: round(rssSlope, 3), samplesEverySecond: rss.filter((_, i) => i % 4 === 0).map(([t, v]) => [round(t, 1), MB(v)]) },
    }),
    ...Object.entries(CHECKS).map(([kind, name]) =>
      figure({
        id: `cadence-${kind}`,
        label: `probe runs of the ${kind} check (${INTERVAL_MS} ms interval)`,
        unit: 'runs',
        value: runs1 ? runs1.runs[name] - runs0.runs[name] : NaN,
        baseline: { label: `elapsed / interval (${round(elapsedS, 1)} s)`, value: round(expectedRuns, 0), spread: [round(expectedRuns, 0), round(expectedRuns, 0)] },
        goal: '0.95–1.20× elapsed / interval',
        check: (_v, ratio) => ratio !== null && ratio >= 0.95 && ratio <= 1.2,
        note: 'all outcomes (success, failure, timeout, rejected) from healthcheck_probe_duration_seconds_count; event-driven re-probes after a dropped connection add a few',
      }),
    ),
    ...Object.entries(CHECKS).map(([kind, name]) => {
      const cutsOf = cuts.filter((c) => c.startsWith(`${kind}:`)).length;
      const downs = final ? final.down[name] - runs0.down[name] : NaN;
      const ups = final ? final.up[name] - runs0.up[name] : NaN;
      return figure({
        id: `flaps-${kind}`,
        label: `${kind} check: outages seen (→ DOWN) per cut`,
        unit: 'transitions',
        value: downs,
        baseline: { label: 'cuts of that dependency', value: cutsOf, spread: [cutsOf, cutsOf] },
        goal: '1 DOWN per cut, each recovered (DOWN → UP) by itself',
        check: (v) => v === cutsOf && ups === cutsOf,
        note: `${ups} DOWN → UP (counted once every dependency is back and /readyz is 200 again)`,
      });
    }),
    figure({
      id: 'connections-running',
      label: 'server-side connections per check after the soak (Redis CLIENT LIST, pg_stat_activity)',
      unit: 'connections',
      value: Math.max(running.redis, running.postgres),
      goal: '= 1',
      check: (v) => v === 1 && running.redis === 1 && running.postgres === 1 && recovered,
      note: `redis ${running.redis}, postgres ${running.postgres}; /readyz 200 again after the last restore: ${recovered}`,
    }),
    figure({
      id: 'connections-stopped',
      label: 'server-side connections after the stop',
      unit: 'connections',
      value: stopped.redis + stopped.postgres + proxyOpen,
      goal: '= 0',
      check: (v) => v === 0,
      note: `redis ${stopped.redis}, postgres ${stopped.postgres}, open at the proxies ${proxyOpen}`,
    }),
  ];
  writeResult('soak', `${DURATION_S} s soak: all endpoints under load while Redis, PostgreSQL and an HTTP app flap`, figures, {
    rounds: 1,
    extra: { params: { durationS: DURATION_S, intervalMs: INTERVAL_MS, flapMs: FLAP_MS, connections: CONNECTIONS, pathWeights: weights.map(([p, w]) => [p.replace(suffix, '*'), w]), cuts } },
  });
  const failed = figures.filter((f) => f.met === false);
  if (failed.length) {
    console.error(`[soak] FAILED: ${failed.map((f) => f.id).join(', ')}`);
    process.exit(1);
  }
  console.log('[soak] all assertions met');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
