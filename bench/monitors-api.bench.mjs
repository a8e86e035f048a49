#!/usr/bin/env node
/**
 * Bench: the monitors API (issue 20, docs/api.md). One COMPILED monitor with a
 * store (a private database created on the machine's PostgreSQL for the run,
 * dropped after):
 *
 * - create latency: 1,000 monitors created with POST /api/v1/monitors, one
 *   after another over a keep-alive connection, each answered once it is
 *   committed, audited and applied (probing); p50 and p99 of the round trip.
 * - CPU per check: then the 1,000 monitors (HTTP, each once a minute: 1,000
 *   checks/min against one local target) are probed for a window; utime+stime
 *   of the monitor over the window / checks the target received.
 *
 * Baseline, measured in the same run with rounds interleaved: the same 1,000
 * checks written in the config file (no store), the same window and count.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { cpuTimeOf, sleep } from './lib/proc.mjs';
import { figure, round } from './lib/stats.mjs';
import { writeResult } from './lib/result.mjs';
import { spawnSidecar } from './lib/sidecar.mjs';

const require = createRequire(import.meta.url);
const pg = require('pg');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const MONITORS = Number(process.env.BENCH_MONITORS ?? 1000);
const WINDOW_MS = Number(process.env.BENCH_MONITORS_WINDOW_MS ?? 60_000); // one interval: every check runs once in it
const WARMUP_MS = 5000;
const KEY = 'bench-monitors-key-0123456789';
const BASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function withAdmin(fn) {
  const client = new pg.Client({ connectionString: BASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function privateDatabase() {
  const name = `ohs_bench_${randomBytes(5).toString('hex')}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(BASE_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)) };
}

async function startTarget() {
  let count = 0;
  const server = http.createServer((req, res) => {
    count++;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  server.keepAliveTimeout = 65_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${server.address().port}`, count: () => count, stop: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

const header = (store) => `
mode: monitor
server: { port: \${PORT}, host: 127.0.0.1, drainDelay: 0s, auth: { keys: [{ name: bench, key: "${KEY}", rateLimit: 1000000/1m }] } }
log: { level: warn }
telemetry: { serviceName: bench-monitors-api, traces: { enabled: false } }
defaults: { interval: 1m, timeout: 2s, retry: { attempts: 1 } }
${store ? `store: { postgres: "${store}", maxMonitors: ${MONITORS + 10}, writeRateLimit: 100000/1m }` : ''}
`;

function post(agent, port, body) {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const started = performance.now();
    const req = http.request({ host: '127.0.0.1', port, path: '/api/v1/monitors', method: 'POST', agent, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 201 ? resolve(performance.now() - started) : reject(new Error(`POST answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(text);
  });
}

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** CPU seconds per check over the window, the target counting the checks */
async function measureWindow(pid, target) {
  const cpu0 = cpuTimeOf(pid);
  const n0 = target.count();
  await sleep(WINDOW_MS);
  const checks = target.count() - n0;
  return { cpuPerCheckUs: ((cpuTimeOf(pid) - cpu0) / Math.max(1, checks)) * 1e6, checksPerMin: (checks * 60_000) / WINDOW_MS };
}

async function storeRound(target) {
  const db = await privateDatabase();
  const sidecar = await spawnSidecar(header(db.url), { readyPath: null, timeoutMs: 30_000 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const latencies = [];
    for (let i = 0; i < MONITORS; i++) latencies.push(await post(agent, sidecar.port, { name: `m${i}`, kind: 'http', url: `${target.base}/m/${i}` }));
    await sleep(WARMUP_MS);
    const window = await measureWindow(sidecar.pid, target);
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), ...window };
  } finally {
    agent.destroy();
    await sidecar.stop();
    await db.drop();
  }
}

async function fileRound(target) {
  const checks = Array.from({ length: MONITORS }, (_, i) => `  - { name: m${i}, kind: http, url: "${target.base}/f/${i}" }`).join('\n');
  const sidecar = await spawnSidecar(`${header()}checks:\n${checks}\n`, { readyPath: null, timeoutMs: 30_000 });
  try {
    await sleep(WARMUP_MS);
    return await measureWindow(sidecar.pid, target);
  } finally {
    await sidecar.stop();
  }
}

const target = await startTarget();
const store = [];
const file = [];
try {
  for (let r = 0; r < ROUNDS; r++) {
    store.push(await storeRound(target));
    file.push(await fileRound(target));
    console.error(`round ${r + 1}/${ROUNDS}: create p50 ${round(store[r].p50)} ms p99 ${round(store[r].p99)} ms; CPU/check ${round(store[r].cpuPerCheckUs)} µs (file-only ${round(file[r].cpuPerCheckUs)} µs); ${round(store[r].checksPerMin)} vs ${round(file[r].checksPerMin)} checks/min`);
  }
} finally {
  await target.stop();
}

writeResult(
  'monitors-api',
  `monitors API: ${MONITORS} creates, then ${MONITORS} checks/min from the store vs the same checks in the file`,
  [
    figure({ id: 'create-p50', label: `POST /api/v1/monitors p50 (${MONITORS} creates, sequential)`, unit: 'ms', samples: store.map((s) => s.p50), goal: '', note: 'committed, audited, NOTIFYed and applied (probing) before the answer' }),
    figure({ id: 'create-p99', label: `POST /api/v1/monitors p99 (${MONITORS} creates, sequential)`, unit: 'ms', samples: store.map((s) => s.p99), goal: '< 250 ms', check: (v) => v < 250 }),
    figure({
      id: 'cpu-per-check',
      label: `CPU per check, ${MONITORS} monitors from the store`,
      unit: 'µs',
      samples: store.map((s) => s.cpuPerCheckUs),
      baselineSamples: file.map((f) => f.cpuPerCheckUs),
      baselineLabel: `the same ${MONITORS} checks in the config file`,
      goal: '≤ 1.2× file-only',
      check: (_v, ratio) => ratio !== null && ratio <= 1.2,
      note: `window ${WINDOW_MS / 1000} s after ${WARMUP_MS / 1000} s warm-up; utime+stime of the monitor / requests the target received`,
    }),
    figure({ id: 'checks-per-min', label: 'checks/min achieved (store)', unit: '/min', samples: store.map((s) => s.checksPerMin), baselineSamples: file.map((f) => f.checksPerMin), baselineLabel: 'file-only', goal: '' }),
  ],
  { rounds: ROUNDS },
);
