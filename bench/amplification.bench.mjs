#!/usr/bin/env node
/**
 * Bench 2 — dependency amplification: does /readyz traffic reach Redis?
 *
 * A private redis-server on a free port (so no other traffic counts) is the target of
 * the sidecar's `cache` check (interval 1s; the config also has the HTTP app and
 * PostgreSQL checks). While wrk drives /readyz at three load levels — idle, ~5k req/s
 * (12 connections each pausing 2 ms between requests
 * through a wrk Lua delay(); wrk has no exact rate limit, the achieved rate is reported) and saturation
 * (50 connections) — we read INFO commandstats before and after a 10 s window and
 * count every command except our own INFO. Levels are interleaved, 3 rounds each.
 * Expected: 1 PING per interval per check (fixed-rate schedule; a 10 s window can
 * straddle 11 ticks, hence the 1.1 tolerance), the same at every request rate.
 * For contrast, a terminus-style server issues one PING per request (= its req/s).
 */
import os from 'node:os';
import { threeChecksConfig } from './lib/configs.mjs';
import { sleep } from './lib/proc.mjs';
import { writeResult } from './lib/result.mjs';
import { startHttpApp, startRedisServer } from './lib/services.mjs';
import { spawnSidecar } from './lib/sidecar.mjs';
import { figure, round, median } from './lib/stats.mjs';
import { runWrk } from './lib/wrk.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const WINDOW_S = Number(process.env.BENCH_WINDOW_S || 10);
const INTERVAL_S = 1;
const multi = os.cpus().length > 1;
const SERVER_CPU = multi ? 0 : undefined;
const WRK_CPU = multi ? 1 : undefined;

const LEVELS = {
  idle: null,
  low: { connections: 12, delayMs: 2 },
  high: { connections: 50 },
};

async function commandCounts(redis) {
  const text = await redis.info('commandstats');
  let total = 0;
  let ping = 0;
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] === 'info') continue; // ours
    total += Number(m[2]);
    if (m[1] === 'ping') ping = Number(m[2]);
  }
  return { total, ping };
}

const redis = await startRedisServer();
const app = await startHttpApp();
const sidecar = await spawnSidecar(threeChecksConfig({ appUrl: app.url, redisUrl: redis.url, interval: `${INTERVAL_S}s` }), { cpu: SERVER_CPU });
const samples = Object.fromEntries(Object.keys(LEVELS).map((k) => [k, { perInterval: [], rps: [], pings: [] }]));
let commandsSeen = '';

try {
  await sleep(2000); // past the first-run spread and connection setup
  for (let r = 0; r < ROUNDS; r++) {
    const names = Object.keys(LEVELS);
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const level of order) {
      const before = await commandCounts(redis);
      const t0 = performance.now();
      let rps = 0;
      if (LEVELS[level]) {
        const w = await runWrk(`${sidecar.url}/readyz`, { threads: 1, connections: LEVELS[level].connections, delayMs: LEVELS[level].delayMs, duration: `${WINDOW_S}s`, cpu: WRK_CPU, latency: false });
        rps = w.rps;
      } else {
        await sleep(WINDOW_S * 1000);
      }
      const after = await commandCounts(redis);
      const secs = (performance.now() - t0) / 1000;
      const cmds = after.total - before.total;
      const perInterval = cmds / (secs / INTERVAL_S);
      samples[level].perInterval.push(perInterval);
      samples[level].rps.push(rps);
      samples[level].pings.push(after.ping - before.ping);
      console.log(`[amplification] round ${r + 1} ${level}: ${round(rps, 0)} req/s → ${cmds} Redis commands (${after.ping - before.ping} PING) in ${secs.toFixed(2)} s = ${perInterval.toFixed(3)} per ${INTERVAL_S}s interval`);
    }
  }
  commandsSeen = (await redis.info('commandstats')).split('\n').filter((l) => l.startsWith('cmdstat_')).map((l) => l.split(',')[0].replace('cmdstat_', '')).join(', ');
} finally {
  await sidecar.stop();
  await app.stop();
  await redis.stop();
}

const rate = (l) => round(median(samples[l].rps), 0);
const figures = [
  figure({
    id: 'redis-commands-per-interval-low',
    label: `Redis commands per check interval, /readyz at ~${rate('low')} req/s`,
    unit: 'cmd/interval',
    samples: samples.low.perInterval,
    goal: '≤ 1 per interval (≤ 1.1 with window rounding)',
    check: (v) => v <= 1.1,
    note: `12 wrk connections with a 2 ms delay() between requests (achieved rates ${samples.low.rps.map((x) => round(x, 0)).join(', ')} req/s), ${WINDOW_S} s windows, interval ${INTERVAL_S}s. A per-request health check would have sent ~${rate('low') * INTERVAL_S} commands per interval.`,
  }),
  figure({
    id: 'redis-commands-per-interval-high',
    label: `Redis commands per check interval, /readyz at ~${rate('high')} req/s`,
    unit: 'cmd/interval',
    samples: samples.high.perInterval,
    baselineSamples: samples.low.perInterval,
    baselineLabel: `same, at ~${rate('low')} req/s`,
    goal: 'independent of request rate: 0.9–1.1× the low-rate figure, and ≤ 1.1',
    check: (v, ratio) => v <= 1.1 && ratio >= 0.9 && ratio <= 1.1,
    note: `50 wrk connections (saturation; achieved ${samples.high.rps.map((x) => round(x, 0)).join(', ')} req/s).`,
  }),
  figure({
    id: 'redis-commands-per-interval-idle',
    label: 'Redis commands per check interval, no /readyz traffic',
    unit: 'cmd/interval',
    samples: samples.idle.perInterval,
    goal: '',
    note: `Context: the floor set by the schedule alone. Commands seen on the private redis-server over the whole run: ${commandsSeen}.`,
  }),
];
writeResult('amplification', 'Dependency amplification: Redis commands vs /readyz request rate', figures, { rounds: ROUNDS, extra: { windowS: WINDOW_S, intervalS: INTERVAL_S, samples } });
