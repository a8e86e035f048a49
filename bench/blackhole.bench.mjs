#!/usr/bin/env node
/**
 * Bench 3 — /readyz latency while dependencies are black-holed.
 *
 * The sidecar's Redis and PostgreSQL checks go through the test suite's TCP fault
 * proxy (test/helpers/fault-proxy.ts, loaded via tsx); once the sidecar is ready
 * both proxies switch to 'blackhole' (connections accepted, nothing ever answered,
 * the kept connections hang too). Checks run every 1s with a 500ms timeout, 2
 * attempts, and a breaker that never opens (failures: 1000) so every run really
 * waits on the black hole — the worst case for the event loop answering /readyz.
 * /readyz is then 503 (cache and db DOWN); its latency is what we measure.
 *
 * Load: wrk -t1 -c12 with a 2 ms delay() per connection (~5k req/s, achieved rate
 * reported), 5 s per round, rounds interleaved with a bare node:http "ok" server
 * under the same load (the baseline). Servers pinned to CPU 0, wrk to CPU 1.
 * Before each measurement we wait (up to 20 s) for other processes to go quiet and record
 * the CPU they used during it (the machine is shared).
 * Context figure: the same at saturation (50 connections, no delay).
 */
import os from 'node:os';
import { threeChecksConfig, DATABASE_URL, REDIS_URL } from './lib/configs.mjs';
import { startFaultProxy } from './lib/fault-proxy.mjs';
import { loadMeter, sleep, waitQuiet } from './lib/proc.mjs';
import { writeResult } from './lib/result.mjs';
import { startBareServer } from './lib/servers.mjs';
import { startHttpApp } from './lib/services.mjs';
import { httpGet, spawnSidecar } from './lib/sidecar.mjs';
import { figure, round, median } from './lib/stats.mjs';
import { runWrk } from './lib/wrk.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS || 7);
const DURATION = process.env.BENCH_DURATION || '5s';
const multi = os.cpus().length > 1;
const SERVER_CPU = multi ? 0 : undefined;
const WRK_CPU = multi ? 1 : undefined;
const LOAD = { connections: 12, delayMs: 2 };
const SAT = { connections: 50 };
const QUIET_TIMEOUT_MS = Number(process.env.BENCH_QUIET_TIMEOUT_MS || 20_000);
const foreign = [];

const redisTarget = new URL(REDIS_URL);
const pgTarget = new URL(DATABASE_URL);
const redisProxy = await startFaultProxy({ host: redisTarget.hostname, port: Number(redisTarget.port || 6379) });
const pgProxy = await startFaultProxy({ host: pgTarget.hostname, port: Number(pgTarget.port || 5432) });
const viaProxy = (u, proxy) => {
  const x = new URL(u);
  x.host = `127.0.0.1:${proxy.port}`;
  return x.toString();
};
const app = await startHttpApp();
const config = threeChecksConfig({ appUrl: app.url, redisUrl: viaProxy(REDIS_URL, redisProxy), databaseUrl: viaProxy(DATABASE_URL, pgProxy), interval: '1s', timeout: '500ms' }).replace(
  'defaults: { interval: 1s, timeout: 500ms }',
  'defaults: { interval: 1s, timeout: 500ms, retry: { attempts: 2, backoff: { initial: 50ms, max: 100ms } }, breaker: { failures: 1000, halfOpenAfter: 1s }, thresholds: { failure: 1, success: 1 } }',
);
const bare = await startBareServer({ cpu: SERVER_CPU });
const sidecar = await spawnSidecar(config, { cpu: SERVER_CPU });
// same config, dependencies reached directly (healthy): tells the black hole's effect from the sidecar's own
const healthy = await spawnSidecar(config.replace(viaProxy(REDIS_URL, redisProxy), REDIS_URL).replace(viaProxy(DATABASE_URL, pgProxy), DATABASE_URL), { cpu: SERVER_CPU });
const samples = { sidecar: { p99: [], p50: [], rps: [], max: [] }, bare: { p99: [], p50: [], rps: [], max: [] }, healthy: { p99: [], p50: [], rps: [], max: [] }, sidecarSat: { p99: [], rps: [] }, bareSat: { p99: [], rps: [] } };
let verbose = '';
let statusCounts = { sidecar: 0, sidecarNon2xx: 0 };
let accepted = 0;

try {
  redisProxy.setMode('blackhole');
  pgProxy.setMode('blackhole');
  redisProxy.resetCounters();
  pgProxy.resetCounters();
  // wait until both checks have timed out and /readyz says so
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await httpGet(`${sidecar.url}/readyz?verbose`);
    verbose = r.body;
    if (r.status === 503 && /\[-\]cache/.test(r.body) && /\[-\]db/.test(r.body)) break;
    if (Date.now() > deadline) throw new Error(`/readyz did not turn 503 with cache and db failed:\n${r.body}`);
    await sleep(200);
  }
  console.log(`[blackhole] dependencies black-holed; /readyz?verbose:\n${verbose}`);
  await runWrk(`${sidecar.url}/readyz`, { threads: 1, ...LOAD, duration: '2s', cpu: WRK_CPU }); // warm-up
  await runWrk(`${bare.url}/readyz`, { threads: 1, ...LOAD, duration: '2s', cpu: WRK_CPU });
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? ['bare', 'sidecar'] : ['sidecar', 'bare'];
    const servers = { sidecar, bare, healthy };
    const pids = [sidecar.pid, bare.pid, healthy.pid];
    for (const name of [...order, 'healthy']) {
      const url = `${servers[name].url}/readyz`;
      await waitQuiet({ pids, timeoutMs: QUIET_TIMEOUT_MS });
      const meter = loadMeter(pids);
      meter.start();
      const w = await runWrk(url, { threads: 1, ...LOAD, duration: DURATION, cpu: WRK_CPU });
      const load = meter.end();
      foreign.push(load.foreignCpus);
      samples[name].p99.push(w.latency.p99);
      samples[name].p50.push(w.latency.p50);
      samples[name].max.push(w.latency.max);
      samples[name].rps.push(w.rps);
      if (name === 'healthy' && w.errors.non2xx) throw new Error(`healthy sidecar answered ${w.errors.non2xx} non-2xx`);
      if (name === 'sidecar') {
        statusCounts.sidecar += w.requests;
        statusCounts.sidecarNon2xx += w.errors.non2xx;
      }
      console.log(`[blackhole] round ${r + 1} ${name}: ${round(w.rps, 0)} req/s, p50 ${w.latency.p50} ms, p99 ${w.latency.p99} ms, max ${w.latency.max} ms, non-2xx ${w.errors.non2xx}, other processes ${load.foreignCpus.toFixed(2)} CPUs`);
    }
    for (const name of order) {
      const url = `${name === 'sidecar' ? sidecar.url : bare.url}/readyz`;
      const w = await runWrk(url, { threads: 1, ...SAT, duration: '3s', cpu: WRK_CPU });
      samples[`${name}Sat`].p99.push(w.latency.p99);
      samples[`${name}Sat`].rps.push(w.rps);
      console.log(`[blackhole] round ${r + 1} ${name} saturated: ${round(w.rps, 0)} req/s, p99 ${w.latency.p99} ms`);
    }
  }
  accepted = redisProxy.acceptedConnections + pgProxy.acceptedConnections;
  verbose = (await httpGet(`${sidecar.url}/readyz?verbose`)).body;
} finally {
  await sidecar.stop();
  await healthy.stop();
  await bare.stop();
  await app.stop();
  await redisProxy.close();
  await pgProxy.close();
}

const rates = (n) => samples[n].rps.map((x) => round(x, 0)).join(', ');
const figures = [
  figure({
    id: 'readyz-p99-blackholed',
    label: `/readyz p99 latency, Redis + PostgreSQL black-holed, ~${round(median(samples.sidecar.rps), 0)} req/s`,
    unit: 'ms',
    samples: samples.sidecar.p99,
    baselineSamples: samples.bare.p99,
    baselineLabel: `bare node:http 'ok', same load (~${round(median(samples.bare.rps), 0)} req/s)`,
    goal: 'p99 < 2 ms',
    check: (v) => v < 2,
    note: `wrk -t1 -c${LOAD.connections} with a ${LOAD.delayMs} ms delay() per connection, ${DURATION} × ${ROUNDS} rounds interleaved with the bare server; achieved sidecar rates ${rates('sidecar')} req/s. Checks every 1s, timeout 500ms, 2 attempts, breaker never opens: each check keeps waiting on the black hole. ${statusCounts.sidecarNon2xx} of ${statusCounts.sidecar} answers were 503 (expected: cache and db DOWN). New connections into the black holes during the measurement: ${accepted}. Other processes used ${round(median(foreign), 2)} CPUs (median; max ${round(Math.max(...foreign), 2)}) of ${os.cpus().length} during these measurements (each first waits up to ${QUIET_TIMEOUT_MS / 1000} s for quiet). /readyz?verbose at the end: ${verbose.trim().split('\n').join(' | ')}`,
  }),
  figure({
    id: 'readyz-p50-blackholed',
    label: '/readyz p50 latency, same load',
    unit: 'ms',
    samples: samples.sidecar.p50,
    baselineSamples: samples.bare.p50,
    baselineLabel: "bare node:http 'ok', same load",
    goal: '',
    note: 'Context.',
  }),
  figure({
    id: 'readyz-max-blackholed',
    label: '/readyz max latency, same load',
    unit: 'ms',
    samples: samples.sidecar.max,
    baselineSamples: samples.bare.max,
    baselineLabel: "bare node:http 'ok', same load",
    goal: '',
    note: 'Context: worst single request per round (GC pauses, scheduler noise of a shared 2-core machine).',
  }),
  figure({
    id: 'readyz-p99-healthy',
    label: '/readyz p99 latency, same load, dependencies healthy (no fault proxy)',
    unit: 'ms',
    samples: samples.healthy.p99,
    baselineSamples: samples.bare.p99,
    baselineLabel: "bare node:http 'ok', same load",
    goal: '',
    note: `Context: the same sidecar config reaching Redis and PostgreSQL directly, measured after each black-hole/bare pair; tells what the black hole adds. Max latency per round: ${samples.healthy.max.join(', ')} ms (black-holed: ${samples.sidecar.max.join(', ')} ms).`,
  }),
  figure({
    id: 'readyz-p99-blackholed-saturated',
    label: '/readyz p99 latency, black-holed, at saturation (50 connections)',
    unit: 'ms',
    samples: samples.sidecarSat.p99,
    baselineSamples: samples.bareSat.p99,
    baselineLabel: "bare node:http 'ok', 50 connections",
    goal: '',
    note: `Context: closed-loop saturation, 3 s per round, so latency is mostly queueing; achieved sidecar rates ${rates('sidecarSat')} req/s, bare ${rates('bareSat')} req/s.`,
  }),
];
writeResult('blackhole', '/readyz latency with black-holed dependencies (fault proxy)', figures, { rounds: ROUNDS, extra: { foreignCpus: foreign, samples } });
