#!/usr/bin/env node
/**
 * Bench — the kubelet paths under a flood of the other endpoints (issue 14.2).
 *
 * Subject: the compiled sidecar with 13 checks (HTTP app, Redis, PostgreSQL,
 * 10 TCP) and an API key, as shipped (load shedding on: server.overload
 * defaults). Baseline, measured in the same run: the same sidecar with
 * shedding effectively off (`server.overload: {perTurn: 100000, turnBudgetMs: 100000, maxInFlight: 100000}`).
 * For N = 3, 50, 200 clients (bench/lib/flood-client.mjs, its own process, each
 * client from its own loopback address, keyed, keep-alive, back to back over
 * /metrics, /health, /, /admin/diagnostics), this process asks /livez and
 * /readyz every 10 ms on fresh connections and reports their p99 beside the
 * idle p99 of the same sidecar and the kubelet's default 1 s timeout.
 * The sidecar is pinned to CPU 0 and the flood to CPU 1 (the published figures
 * were measured with this process on CPU 1 too: `taskset -c 1 node bench/flood.bench.mjs`).
 * Goal: under every flood, /livez p99 stays under 100 ms (a tenth of the
 * kubelet's timeout) with shedding on; the ratio to shedding off is reported.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { threeChecksConfig } from './lib/configs.mjs';
import { BENCH_DIR, writeResult } from './lib/result.mjs';
import { startHttpApp } from './lib/services.mjs';
import { spawnSidecar } from './lib/sidecar.mjs';
import { taskset } from './lib/proc.mjs';
import os from 'node:os';
import { round } from './lib/stats.mjs';

const FLOOD_MS = Number(process.env.BENCH_FLOOD_MS || 4000);
const CLIENTS = (process.env.BENCH_FLOOD_CLIENTS || '3,50,200').split(',').map(Number);
const KEY = 'bench-flood-key-0123456789abcdefghijklmnop';
const PATHS = ['/metrics', '/health', '/', '/admin/diagnostics'];
// the sidecar on CPU 0, the flood on CPU 1 (in a pod the flood comes from elsewhere: it must not
// starve the sidecar of CPU on this machine); this process measures from CPU 1 too
const multi = os.cpus().length > 1;
const SIDECAR_CPU = multi ? 0 : undefined;
const FLOOD_CPU = multi ? 1 : undefined;

const app = await startHttpApp();
const appPort = new URL(app.url).port;
let extra = '';
for (let i = 0; i < 10; i++) extra += `  - { name: tcp${i}, kind: tcp, url: "tcp://127.0.0.1:${appPort}" }\n`;
const config = (overload) =>
  threeChecksConfig({ appUrl: app.url, extraChecks: extra }).replace(
    'server: { port: ${PORT}, host: 127.0.0.1, drainDelay: 0s }',
    `server: { port: \${PORT}, host: 127.0.0.1, drainDelay: 0s, auth: { keys: [{ name: bench, key: "${KEY}", rateLimit: "1000000/1m" }] }${overload ? `, overload: ${overload}` : ''} }`,
  );

function ask(port, path) {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }));
    });
    req.setTimeout(10_000, () => req.destroy());
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
  });
}

const p99 = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? NaN;
};

/** /livez and /readyz every 10 ms until `done` resolves */
async function sampleProbes(port, done) {
  const livez = [];
  const readyz = [];
  const bad = [];
  let finished = false;
  done.then(() => (finished = true));
  while (!finished) {
    const [l, r] = await Promise.all([ask(port, '/livez'), ask(port, '/readyz')]);
    livez.push(l.ms);
    readyz.push(r.ms);
    if (l.status !== 200) bad.push(`livez ${l.status}`);
    if (r.status !== 200) bad.push(`readyz ${r.status}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { livez: p99(livez), readyz: p99(readyz), samples: livez.length, bad };
}

function flood(port, clients) {
  return new Promise((resolve, reject) => {
    const [cmd, args] = taskset(FLOOD_CPU, process.execPath, [join(BENCH_DIR, 'lib/flood-client.mjs'), JSON.stringify({ port, clients, ms: FLOOD_MS, key: KEY, paths: PATHS })]);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`flood client exited ${code}`))));
  });
}

async function measure(label, overload) {
  const sidecar = await spawnSidecar(config(overload), { cpu: SIDECAR_CPU });
  const port = Number(new URL(sidecar.url).port);
  try {
    const idle = await sampleProbes(port, new Promise((r) => setTimeout(r, 3000)));
    const rows = [];
    for (const clients of CLIENTS) {
      const floodDone = flood(port, clients);
      const probes = await sampleProbes(port, floodDone);
      rows.push({ clients, probes, flood: await floodDone });
      await new Promise((r) => setTimeout(r, 1000));
    }
    console.log(`[flood] ${label}: idle livez p99 ${idle.livez.toFixed(2)} ms; ${rows.map((r) => `N=${r.clients} livez p99 ${r.probes.livez.toFixed(1)} ms readyz ${r.probes.readyz.toFixed(1)} ms (${r.flood.requests} requests, ${r.flood.shed} shed, ${r.flood.noAnswer} unanswered, bad probes ${r.probes.bad.length})`).join('; ')}`);
    return { idle, rows };
  } finally {
    await sidecar.stop();
  }
}

const shedding = await measure('shedding on (shipped)');
const unshed = await measure('shedding off', '{ perTurn: 100000, turnBudgetMs: 100000, maxInFlight: 100000 }');
await app.close?.();

const figures = [];
for (const [i, row] of shedding.rows.entries()) {
  const off = unshed.rows[i];
  figures.push({
    id: `livez-p99-n${row.clients}`,
    label: `/livez p99 while ${row.clients} clients flood /metrics, /health, /, /admin/diagnostics (kubelet timeout 1000 ms; idle p99 ${round(shedding.idle.livez, 2)} ms)`,
    unit: 'ms',
    value: round(row.probes.livez, 1),
    spread: [round(row.probes.livez, 1), round(row.probes.livez, 1)],
    baseline: { label: 'same flood, shedding off', value: round(off.probes.livez, 1), spread: [round(off.probes.livez, 1), round(off.probes.livez, 1)] },
    ratio: off.probes.livez > 0 ? round(row.probes.livez / off.probes.livez, 3) : null,
    goal: '< 100 ms (a tenth of the kubelet timeout), no probe answer other than 200, no request unanswered',
    met: row.probes.livez < 100 && row.probes.bad.length === 0 && row.flood.noAnswer === 0,
    note: `readyz p99 ${round(row.probes.readyz, 1)} ms (off: ${round(off.probes.readyz, 1)} ms); ${row.flood.requests} flood requests, ${row.flood.shed} shed with 503 + Retry-After (off: ${off.flood.requests} requests, ${off.flood.shed} shed); idle livez p99 ${round(shedding.idle.livez, 2)} ms`,
  });
}
writeResult('flood', 'Kubelet paths under a flood of the other endpoints (13 checks)', figures, { rounds: 1, extra: { shedding, unshed } });
process.exit(0);
