#!/usr/bin/env node
/**
 * Bench 5: memory and startup of the COMPILED sidecar.
 *
 * RSS: the sidecar runs four checks (HTTP app, Redis, PostgreSQL, TCP self) with
 * telemetry on — traces exported over OTLP/HTTP to a local receiver started here
 * (POST /v1/traces, answered 200), /metrics scraped every second, /readyz asked
 * every second like a kubelet. "10 minutes-equivalent" is compressed: the checks
 * run every 100 ms instead of every 1 s, so the 60 s of a round hold the 600 runs
 * per check that 10 minutes at a 1 s interval would (100 min at the default 10 s).
 * RSS is sampled every second from /proc; "minute 1" is the sample at 6 s (10 %
 * of the round), "minute 10" the one at the end; the slope is (min10 - min1) / 9
 * in MiB per minute-equivalent. Baseline: a bare node:http "ok" server, started
 * at the same time and asked the same requests (same RSS sampling).
 *
 * Startup: spawn of `node dist/cli.js run` to the first answer (any status) of
 * /readyz, polled every 2 ms on fresh connections; baseline: spawn to exit of
 * `node -e ""` (an empty process), and, as context, a bare node:http server to
 * its first answer.
 *
 * The sidecar runs with the node flags of the image's ENTRYPOINT (as shipped:
 * --max-semi-space-size=2); in the same rounds a second sidecar with node's default
 * flags runs beside it, for context. BENCH_NODE_ARGS (space-separated) overrides the
 * shipped flags.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDIS_URL, DATABASE_URL } from './lib/configs.mjs';
import { rssOf, sleep, spawnNode, stopChild, firstLine } from './lib/proc.mjs';
import { figure, round } from './lib/stats.mjs';
import { writeResult, REPO_DIR } from './lib/result.mjs';
import { freePort, httpGet, spawnSidecar } from './lib/sidecar.mjs';
import { startHttpApp } from './lib/services.mjs';
import { shippedNodeFlags } from './lib/probe-shipped.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROUND_S = Number(process.env.BENCH_MEMORY_SECONDS ?? 60);
const STARTUP_ROUNDS = Number(process.env.BENCH_STARTUP_ROUNDS ?? 10);
const NODE_ARGS = process.env.BENCH_NODE_ARGS !== undefined ? process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean) : shippedNodeFlags();
const MiB = 1024 * 1024;

/** OTLP/HTTP trace receiver: counts requests and bytes. */
async function startOtlpReceiver() {
  const stats = { requests: 0, bytes: 0 };
  const server = http.createServer((req, res) => {
    req.on('data', (c) => (stats.bytes += c.length));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') stats.requests++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' });
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, stats, stop: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

const BARE_SERVER = `
import http from 'node:http';
const server = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); });
server.listen(Number(process.argv[1] ?? 0), '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
`;

function config(appUrl) {
  return `
server: { port: \${PORT}, host: 127.0.0.1, drainDelay: 0s }
log: { level: warn }
telemetry: { serviceName: bench-memory }
defaults: { interval: 100ms, timeout: 100ms }
checks:
  - { name: self, kind: tcp, url: "tcp://127.0.0.1:\${PORT}", groups: [ready] }
  - { name: app, kind: http, url: "${appUrl}", groups: [ready] }
  - { name: cache, kind: redis, url: "${REDIS_URL}", groups: [ready] }
  - { name: db, kind: postgres, url: "${DATABASE_URL}", query: SELECT 1, groups: [ready] }
`;
}

/** sum of a counter over its label sets in Prometheus text */
function metricSum(text, name) {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name + '{') || line.startsWith(name + ' ')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function rssRound(index) {
  const app = await startHttpApp();
  const otlp = await startOtlpReceiver();
  const bare = spawnNode({ code: BARE_SERVER }, ['0']);
  const { port: barePort } = await firstLine(bare);
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, NODE_ENV: 'production' };
  const sidecar = await spawnSidecar(config(app.url), { env, nodeArgs: NODE_ARGS });
  const plain = await spawnSidecar(config(app.url), { env, nodeArgs: [] });
  const samples = [];
  const plainSamples = [];
  const bareSamples = [];
  let scrapeBytes = 0;
  let lastMetrics = '';
  try {
    const t0 = Date.now();
    for (let s = 1; s <= ROUND_S; s++) {
      await sleep(Math.max(0, t0 + s * 1000 - Date.now()));
      // what a pod sees: Prometheus scrape, kubelet readiness; the same requests to the bare server
      const [m] = await Promise.all([
        httpGet(`${sidecar.url}/metrics`, 5000),
        httpGet(`${sidecar.url}/readyz`, 5000),
        httpGet(`${plain.url}/metrics`, 5000),
        httpGet(`${plain.url}/readyz`, 5000),
        httpGet(`http://127.0.0.1:${barePort}/metrics`, 5000),
        httpGet(`http://127.0.0.1:${barePort}/readyz`, 5000),
      ]);
      lastMetrics = m.body;
      scrapeBytes += m.body.length;
      samples.push(rssOf(sidecar.pid) / MiB);
      plainSamples.push(rssOf(plain.pid) / MiB);
      bareSamples.push(rssOf(bare.pid) / MiB);
    }
  } finally {
    await sidecar.stop();
    await plain.stop();
    await stopChild(bare);
    await app.stop();
    await otlp.stop();
  }
  const at = (xs, s) => xs[Math.min(xs.length, s) - 1];
  const min1 = at(samples, Math.round(ROUND_S / 10));
  const min10 = at(samples, ROUND_S);
  const runs = metricSum(lastMetrics, 'health_check_runs_total') || metricSum(lastMetrics, 'health_check_attempts_total');
  const r = {
    min1,
    min10,
    max: Math.max(...samples),
    slope: (min10 - min1) / 9,
    bare: at(bareSamples, ROUND_S),
    plainMin10: at(plainSamples, ROUND_S),
    appRequests: app.requests,
    otlpExports: otlp.stats.requests,
    otlpBytes: otlp.stats.bytes,
    runsFromMetrics: runs,
    scrapeBytes,
  };
  console.log(`[memory] round ${index + 1}: RSS min1 ${min1.toFixed(1)} MiB, min10 ${min10.toFixed(1)} MiB, max ${r.max.toFixed(1)} MiB, slope ${r.slope.toFixed(2)} MiB/min-eq; node default flags: min10 ${r.plainMin10.toFixed(1)} MiB; bare ${r.bare.toFixed(1)} MiB; app requests ${app.requests}, OTLP exports ${otlp.stats.requests} (${(otlp.stats.bytes / 1024).toFixed(0)} KiB)`);
  return r;
}

/** ms from spawn to the first HTTP answer (any status) on `url`, polling every 2 ms. */
async function timeToFirstAnswer(cmd, args, url, env = {}) {
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, args, { cwd: REPO_DIR, stdio: 'ignore', env: { ...process.env, ...env } });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited ${child.exitCode}`);
      try {
        await httpGet(url, 1000);
        return Number(process.hrtime.bigint() - t0) / 1e6;
      } catch {
        await sleep(2);
      }
      if (Number(process.hrtime.bigint() - t0) > 20e9) throw new Error(`no answer from ${url} in 20 s`);
    }
  } finally {
    await stopChild(child, 'SIGKILL');
  }
}

async function emptyProcessMs() {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function startupRounds() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-startup-'));
  const app = await startHttpApp();
  const sidecarMs = [];
  const emptyMs = [];
  const bareMs = [];
  try {
    for (let i = 0; i < STARTUP_ROUNDS; i++) {
      const port = await freePort();
      const file = join(dir, 'sidecar.yaml');
      writeFileSync(file, config(app.url).replaceAll('${PORT}', String(port)));
      // interleaved: subject, empty process, bare server
      sidecarMs.push(await timeToFirstAnswer(process.execPath, [...NODE_ARGS, join(REPO_DIR, 'dist/cli.js'), 'run', '--config', file], `http://127.0.0.1:${port}/readyz`, { NODE_ENV: 'production', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/' }));
      emptyMs.push(await emptyProcessMs());
      const barePort = await freePort();
      bareMs.push(await timeToFirstAnswer(process.execPath, ['--input-type=module', '-e', BARE_SERVER, String(barePort)], `http://127.0.0.1:${barePort}/`));
    }
  } finally {
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`[memory] startup ms: sidecar ${sidecarMs.map((x) => x.toFixed(0)).join(' ')}; node -e "" ${emptyMs.map((x) => x.toFixed(0)).join(' ')}; bare http ${bareMs.map((x) => x.toFixed(0)).join(' ')}`);
  return { sidecarMs, emptyMs, bareMs };
}

const rounds = [];
for (let i = 0; i < ROUNDS; i++) rounds.push(await rssRound(i));
const startup = await startupRounds();

const pick = (k) => rounds.map((r) => r[k]);
const flags = NODE_ARGS.length ? ` with node ${NODE_ARGS.join(' ')}` : '';
const scenario = `4 checks (HTTP, Redis, PG, TCP) every 100 ms for ${ROUND_S} s = ${ROUND_S * 10} runs per check (10 min at a 1 s interval), traces to a local OTLP receiver, /metrics and /readyz every 1 s${flags}`;
const figures = [
  figure({
    id: 'rss-min10',
    label: 'sidecar RSS at "minute 10", telemetry on',
    unit: 'MiB',
    samples: pick('min10'),
    baselineSamples: pick('bare'),
    baselineLabel: 'bare node:http "ok" server, same requests',
    goal: '≤ 80 MiB',
    check: (v) => v <= 80,
    digits: 1,
    note: scenario,
  }),
  figure({
    id: 'rss-min10-node-defaults',
    label: 'same, node default flags (no --max-semi-space-size)',
    unit: 'MiB',
    samples: pick('plainMin10'),
    goal: '',
    digits: 1,
    note: 'a second sidecar in the same rounds, same config and requests, run as `node dist/cli.js` (context for the shipped flag)',
  }),
  figure({ id: 'rss-min1', label: 'sidecar RSS at "minute 1"', unit: 'MiB', samples: pick('min1'), goal: '', digits: 1, note: `sample at ${Math.round(ROUND_S / 10)} s of ${ROUND_S} s` }),
  figure({ id: 'rss-max', label: 'sidecar RSS max over the round', unit: 'MiB', samples: pick('max'), goal: '', digits: 1 }),
  figure({
    id: 'rss-slope',
    label: 'RSS growth minute 1 → minute 10',
    unit: 'MiB/min-eq',
    samples: pick('slope'),
    goal: '≈ 0 (no growth; ≤ 0.5 MiB per minute-equivalent)',
    check: (v) => v <= 0.5,
    digits: 2,
    note: '(RSS at minute 10 − RSS at minute 1) / 9',
  }),
  figure({
    id: 'startup',
    label: 'startup: spawn → first /readyz answer (compiled)',
    unit: 'ms',
    samples: startup.sidecarMs,
    baselineSamples: startup.emptyMs,
    baselineLabel: 'node -e "" (empty process, spawn → exit)',
    goal: '< 400 ms',
    check: (v) => v < 400,
    digits: 0,
    note: `${STARTUP_ROUNDS} rounds, interleaved; same 4-check config, traces on (OTLP endpoint set)${flags}; bare node:http server spawn → first answer: median ${round(median(startup.bareMs), 0)} ms`,
  }),
];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

writeResult('memory', 'Memory (RSS, telemetry on) and startup of the compiled sidecar', figures, {
  rounds: ROUNDS,
  extra: { params: { roundSeconds: ROUND_S, interval: '100ms', startupRounds: STARTUP_ROUNDS, nodeArgs: NODE_ARGS }, rounds_raw: rounds, startup_raw: startup },
});
