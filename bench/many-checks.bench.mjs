#!/usr/bin/env node
/**
 * Bench 6: one COMPILED sidecar (shipped node flags) with 1,000 HTTP checks, each
 * every 1 s, against one local HTTP target (its own node process; every check has
 * its own path /c/<i>), telemetry on (Prometheus registered, traces exported over
 * OTLP/HTTP to a local receiver).
 *
 * - CPU use in cores: utime+stime of the sidecar over the window / wall time.
 * - Schedule drift: measured at the target. Each check's requests should arrive
 *   every 1000 ms (fixed rate). For each check, with arrivals t_k (k = 0..n), its
 *   phase is taken as min_k (t_k − k·1000) (its least-late arrival), and the
 *   lateness of arrival k is t_k − k·1000 − phase. p99 over all checks and
 *   arrivals in the window. This is start lateness plus request transit jitter,
 *   so an upper bound of the scheduler's own lateness.
 * - Memory: RSS at the end of the window.
 * - Achieved checks/min: requests the target received in the window, per minute.
 *
 * Baseline: bench/lib/probe-rawloop.mjs — 1,000 plain node loops, each a kept
 * keep-alive connection doing one GET of its own path every 1 s (fixed rate): the
 * same requests/s; the same CPU, drift and RSS measurements.
 */
import http from 'node:http';
import { cpuTimeOf, firstLine, rssOf, sleep, spawnNode, stopChild } from './lib/proc.mjs';
import { figure, round } from './lib/stats.mjs';
import { writeResult } from './lib/result.mjs';
import { httpGet, spawnSidecar } from './lib/sidecar.mjs';
import { percentile, shippedNodeFlags, startRawLoop } from './lib/probe-shipped.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CHECKS = Number(process.env.BENCH_MANY_CHECKS ?? 1000);
const INTERVAL_MS = 1000;
const WARMUP_MS = 5000;
const WINDOW_MS = Number(process.env.BENCH_MANY_WINDOW_MS ?? 20_000);
const NODE_FLAGS = shippedNodeFlags();
const MiB = 1024 * 1024;

/** The target: answers 200 "ok"; GET /-/dump returns and clears the arrival times per path. */
const TARGET = `
import http from 'node:http';
let arrivals = new Map();
const server = http.createServer((req, res) => {
  if (req.url === '/-/dump') {
    const out = Object.fromEntries(arrivals);
    arrivals = new Map();
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(out));
  }
  const t = performance.timeOrigin + performance.now();
  let list = arrivals.get(req.url);
  if (!list) arrivals.set(req.url, (list = []));
  list.push(t);
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
  res.end('ok');
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
`;

async function startOtlpReceiver() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' });
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, stop: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

function config(base) {
  const checks = Array.from({ length: CHECKS }, (_, i) => `  - { name: c${i}, kind: http, url: "${base}/c/${i}", groups: [ready] }`).join('\n');
  return `
server: { port: \${PORT}, host: 127.0.0.1, drainDelay: 0s }
log: { level: warn }
telemetry: { serviceName: bench-many-checks }
defaults: { interval: 1s, timeout: 1s, retry: { attempts: 1 } }
checks:
${checks}
`;
}

/** lateness (ms) of every arrival after each path's first one in the window, relative to its fixed-rate schedule */
function lateness(dump) {
  const out = [];
  for (const times of Object.values(dump)) {
    if (times.length < 2) continue;
    let phase = Infinity;
    for (let k = 0; k < times.length; k++) phase = Math.min(phase, times[k] - k * INTERVAL_MS);
    for (let k = 0; k < times.length; k++) out.push(times[k] - k * INTERVAL_MS - phase);
  }
  return out;
}

async function measure(label, pid, targetUrl) {
  await sleep(WARMUP_MS);
  await httpGet(`${targetUrl}/-/dump`, 10_000); // clear
  const c0 = cpuTimeOf(pid);
  const t0 = Date.now();
  await sleep(WINDOW_MS);
  const c1 = cpuTimeOf(pid);
  const secs = (Date.now() - t0) / 1000;
  const dump = JSON.parse((await httpGet(`${targetUrl}/-/dump`, 10_000)).body);
  const requests = Object.values(dump).reduce((a, l) => a + l.length, 0);
  const late = lateness(dump);
  const r = {
    cores: (c1 - c0) / secs,
    perMin: (requests / secs) * 60,
    p50: percentile(late, 50),
    p99: percentile(late, 99),
    max: Math.max(...late),
    rss: rssOf(pid) / MiB,
    paths: Object.keys(dump).length,
  };
  console.log(`[many-checks] ${label}: ${r.cores.toFixed(3)} cores, ${Math.round(r.perMin)} req/min over ${r.paths} paths, lateness p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms max ${r.max.toFixed(0)} ms, RSS ${r.rss.toFixed(1)} MiB`);
  return r;
}

const target = spawnNode({ code: TARGET });
const { port } = await firstLine(target);
const targetUrl = `http://127.0.0.1:${port}`;
const otlp = await startOtlpReceiver();
const sub = [];
const raw = [];
try {
  for (let i = 0; i < ROUNDS; i++) {
    // BENCH_MANY_TRACES=off: the same with traces off (to see what the span pipeline costs)
    const traces = process.env.BENCH_MANY_TRACES === 'off' ? { OTEL_TRACES_EXPORTER: 'none' } : {};
    const s = await spawnSidecar(config(targetUrl), { env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, NODE_ENV: 'production', ...traces }, nodeArgs: NODE_FLAGS, readyPath: null, timeoutMs: 60_000 });
    try {
      sub.push(await measure(`round ${i + 1} sidecar`, s.pid, targetUrl));
    } finally {
      await s.stop();
    }
    const r = await startRawLoop('http', `${targetUrl}/r/{i}`, CHECKS, INTERVAL_MS);
    try {
      await r.start();
      raw.push(await measure(`round ${i + 1} raw loop`, r.pid, targetUrl));
    } finally {
      await r.stop();
    }
  }
} finally {
  await stopChild(target);
  await otlp.stop();
}

const pick = (xs, k) => xs.map((x) => x[k]);
const setup = `${CHECKS} HTTP checks × 1 s, 1 attempt, telemetry on (Prometheus + OTLP traces to a local receiver), node flags ${NODE_FLAGS.join(' ') || '(none)'}; ${WINDOW_MS / 1000} s window after ${WARMUP_MS / 1000} s warm-up`;
const figures = [
  figure({
    id: 'checks-per-min',
    label: `achieved checks/min, ${CHECKS} HTTP checks at 1 s`,
    unit: 'checks/min',
    samples: pick(sub, 'perMin'),
    baselineSamples: pick(raw, 'perMin'),
    baselineLabel: `${CHECKS} plain node keep-alive loops × 1 s`,
    goal: '≥ 60k/min',
    check: (v) => v >= 60_000 * 0.99,
    digits: 0,
    note: `${setup}; counted at the target (goal taken as met at ≥ 99 % of 60,000: a 1 s schedule gives exactly 60k/min)`,
  }),
  figure({
    id: 'cpu-cores',
    label: `CPU use with ${CHECKS} checks at 1 s`,
    unit: 'cores',
    samples: pick(sub, 'cores'),
    baselineSamples: pick(raw, 'cores'),
    baselineLabel: 'plain node loops, same requests/s',
    goal: '',
    note: setup,
  }),
  figure({
    id: 'drift-p99',
    label: 'schedule drift: p99 lateness of probe starts',
    unit: 'ms',
    samples: pick(sub, 'p99'),
    baselineSamples: pick(raw, 'p99'),
    baselineLabel: 'plain node loops (same fixed-rate pacing)',
    goal: '',
    digits: 1,
    note: `measured at the target: arrival k of a check vs its fixed-rate schedule (phase = its least-late arrival); includes request transit; p50 ${round(pick(sub, 'p50').sort((a, b) => a - b)[sub.length >> 1], 1)} ms`,
  }),
  figure({
    id: 'rss',
    label: `RSS with ${CHECKS} checks`,
    unit: 'MiB',
    samples: pick(sub, 'rss'),
    baselineSamples: pick(raw, 'rss'),
    baselineLabel: 'plain node loops',
    goal: '',
    digits: 1,
    note: 'end of the window',
  }),
];
writeResult('many-checks', `${CHECKS} HTTP checks at 1 s in one process`, figures, {
  rounds: ROUNDS,
  extra: { params: { checks: CHECKS, intervalMs: INTERVAL_MS, warmupMs: WARMUP_MS, windowMs: WINDOW_MS, nodeFlags: NODE_FLAGS }, rounds_raw: { sidecar: sub, raw } },
});
