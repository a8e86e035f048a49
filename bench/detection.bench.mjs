#!/usr/bin/env node
/**
 * Bench 7: failure detection latency — from cutting a dependency to /readyz 503.
 *
 * One COMPILED sidecar (shipped node flags) per kind with one critical check in
 * the ready group — Redis (private redis-server), PostgreSQL (the real server),
 * HTTP (a node:http app) — reached through the test suite's TCP fault proxy
 * (test/helpers/fault-proxy.ts, via bench/lib/fault-proxy.mjs). Check settings
 * as a pod would have them: interval 10 s, timeout 2 s, thresholds.failure 3,
 * breaker after 5 failed attempts (half-open after 1 s, so the rounds recover
 * quickly), and two retry settings, each its own figure:
 * the shipped defaults (retry attempts 2, backoff 100 ms with jitter) and no retry
 * (attempts 1). The event episode confirms a failure with up to thresholds.failure
 * runs 10 ms apart, so with retries each confirming run also waits its backoff.
 *
 * A round: wait until /readyz is 200 and the check has been idle for a random
 * 0.5–2.5 s (so the cut lands anywhere in the interval), then switch the proxy to
 * `refuse` (existing connections are destroyed, new ones refused: a dependency
 * that went away / a connection cut) and time from that call to the first 503 of
 * /readyz, polled back-to-back on a kept connection (≈ 0.1–0.3 ms apart). Then
 * `pass` again and wait for 200 (the recovery watch) before the next round.
 *
 * Baseline: the bound without event-driven detection, thresholds × interval +
 * timeout (computed, the worst case of tick-driven detection of a refused
 * connection). A black hole (no connection event at all) is detected by timeouts
 * only and is not what this bench measures.
 */
import http from 'node:http';
import { DATABASE_URL } from './lib/configs.mjs';
import { sleep } from './lib/proc.mjs';
import { figure } from './lib/stats.mjs';
import { writeResult } from './lib/result.mjs';
import { spawnSidecar } from './lib/sidecar.mjs';
import { startHttpApp, startRedisServer } from './lib/services.mjs';
import { startFaultProxy } from './lib/fault-proxy.mjs';
import { shippedNodeFlags } from './lib/probe-shipped.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS_DETECTION ?? 5);
const INTERVAL_S = 10;
const TIMEOUT_S = 2;
const THRESHOLD = 3;
const BOUND_MS = THRESHOLD * INTERVAL_S * 1000 + TIMEOUT_S * 1000;
const NODE_FLAGS = shippedNodeFlags();

const VARIANTS = [
  { id: '', label: 'defaults: retry 2 attempts, backoff 100 ms', retry: '{ attempts: 2, backoff: { initial: 100ms, max: 1s }, jitter: true }' },
  { id: '-noretry', label: 'retry attempts 1', retry: '{ attempts: 1 }' },
];

function config(kind, url, variant) {
  const extra = kind === 'postgres' ? ', query: SELECT 1' : '';
  return `
server: { port: \${PORT}, host: 127.0.0.1, drainDelay: 0s }
log: { level: warn }
telemetry: { serviceName: bench-detection }
defaults:
  interval: ${INTERVAL_S}s
  timeout: ${TIMEOUT_S}s
  retry: ${variant.retry}
  thresholds: { failure: ${THRESHOLD}, success: 1 }
  # a short half-open so the next round starts soon after the proxy passes again (no effect on detection)
  breaker: { failures: 5, halfOpenAfter: 1s }
checks:
  - { name: dep, kind: ${kind}, url: "${url}"${extra}, groups: [ready] }
`;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function readyz(url) {
  return new Promise((resolve) => {
    const req = http.get(`${url}/readyz`, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
  });
}

async function waitStatus(url, status, timeoutMs) {
  const t0 = performance.now();
  for (;;) {
    const s = await readyz(url);
    if (s === status) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`/readyz not ${status} within ${timeoutMs} ms (last ${s})`);
    await sleep(status === 503 ? 0 : 20);
  }
}

async function measureKind(kind, upstream, url, variant) {
  const proxy = await startFaultProxy(upstream);
  const sidecar = await spawnSidecar(config(kind, url(proxy), variant), { nodeArgs: NODE_FLAGS, env: { NODE_ENV: 'production' } });
  const ms = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      await waitStatus(sidecar.url, 200, 60_000);
      await sleep(500 + Math.random() * 2000);
      const t0 = performance.now();
      proxy.setMode('refuse');
      let status;
      do status = await readyz(sidecar.url);
      while (status !== 503 && performance.now() - t0 < BOUND_MS + 10_000);
      const took = performance.now() - t0;
      ms.push(status === 503 ? took : NaN);
      console.log(`[detection] ${kind} (${variant.label}) round ${i + 1}: /readyz 503 after ${took.toFixed(1)} ms`);
      proxy.setMode('pass');
      await proxy.ready();
    }
  } finally {
    await sidecar.stop();
    await proxy.close();
  }
  return ms;
}

const redis = await startRedisServer();
const app = await startHttpApp();
const results = {};
const pg = new URL(DATABASE_URL);
try {
  for (const variant of VARIANTS) {
    results[`redis${variant.id}`] = await measureKind('redis', { host: '127.0.0.1', port: redis.port }, (p) => p.url('redis'), variant);
    results[`postgres${variant.id}`] = await measureKind('postgres', { host: pg.hostname, port: Number(pg.port || 5432) }, (p) => `postgres://${pg.username}${pg.password ? ':' + pg.password : ''}@127.0.0.1:${p.port}${pg.pathname}`, variant);
    results[`http${variant.id}`] = await measureKind('http', { host: '127.0.0.1', port: app.port }, (p) => p.url('http', '', '/healthz'), variant);
  }
} finally {
  await redis.stop();
  await app.stop();
  agent.destroy();
}

const baseline = { label: `bound without events: thresholds.failure (${THRESHOLD}) × interval (${INTERVAL_S} s) + timeout (${TIMEOUT_S} s)`, value: BOUND_MS, spread: [BOUND_MS, BOUND_MS] };
const names = { redis: 'Redis', postgres: 'PostgreSQL', http: 'HTTP' };
const figures = Object.entries(results).map(([key, ms]) => {
  const kind = key.replace(/-.*/, '');
  const variant = VARIANTS.find((v) => v.id === key.slice(kind.length));
  return figure({
    id: `${key}-detect`,
    label: `${names[kind]} cut → /readyz 503 (${variant.label})`,
    unit: 'ms',
    samples: ms,
    baseline,
    goal: '< 100 ms',
    check: (v) => Number.isFinite(v) && v < 100,
    digits: 1,
    note: `${ms.length} cuts (proxy refuses, kept connections dropped) at random points of the ${INTERVAL_S} s interval; event-driven detection (connection close/error → immediate re-probe and quick confirmation up to thresholds.failure); ${ms.filter((x) => !Number.isFinite(x)).length} cut(s) not detected within the bound + 10 s`,
  });
});
writeResult('detection', 'Failure detection latency: dependency cut → /readyz 503', figures, {
  rounds: ROUNDS,
  extra: { params: { intervalS: INTERVAL_S, timeoutS: TIMEOUT_S, thresholdFailure: THRESHOLD, variants: VARIANTS, nodeFlags: NODE_FLAGS }, rounds_raw: results },
});
