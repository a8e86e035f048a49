#!/usr/bin/env node
/**
 * Bench 5: memory of the SHIPPED sidecar, the esbuild bundle of dist/
 * (scripts/bundle.mjs, built here; issue 22, goal 1). Start-up lives in
 * bench/startup.bench.mjs.
 *
 * Minute-equivalents. A real pod runs its checks every 1 s, is scraped every 5 s
 * and asked /readyz by the kubelet every 10 s. Here time runs SPEEDUP (10) times
 * faster: checks every 100 ms (timeout 100 ms: a probe timeout may not exceed its
 * interval, and 50 ms is too short for a first PostgreSQL connection on a loaded
 * 2-core machine), /metrics every 500 ms, /readyz every 1 s, so one
 * "minute-equivalent" is 6 s and a round of 60 s holds the 600 runs per check, 120
 * scrapes and 60 kubelet probes of 10 minutes. The allocation rate is 10× the real
 * one, so this is the pessimistic case for the young generation. RSS is sampled
 * every 500 ms from /proc; "minute k" is the median of the samples in the k-th
 * 6 s window.
 *
 * Each round runs side by side, with the same requests:
 *  - the sidecar with a pod's node flags (the image ENTRYPOINT's
 *    --max-semi-space-size=2 and the kustomize component's NODE_OPTIONS
 *    --max-old-space-size=64), 4 checks (HTTP app, Redis,
 *    PostgreSQL, TCP self), traces exported over OTLP/HTTP to a local receiver;
 *  - the same with 4 HTTP checks only (no database driver should load: each of
 *    these two runs with test/helpers/loaded-modules.cjs preloaded, which only
 *    writes require.cache at exit);
 *  - the 4-check sidecar with node's default flags (context for the shipped flag);
 *  - the 4-check sidecar in its compiled form (node dist/cli.js with the
 *    production node_modules, what the image ran before the bundle);
 *  - the baseline: a bare node:http "ok" server started with the SAME node flags
 *    and the image's environment (MALLOC_ARENA_MAX, as the sidecars but the
 *    compiled form, which ran without it).
 *
 * Then, per round, 1,000 checks: a sidecar with 1,000 HTTP checks and one with 4
 * (same kind, same target, interval 2 s real time, 20 s, the image's flags
 * without the pod's 64 MiB old-generation cap, which 1,000 checks outgrow), RSS at
 * the end; per check = (RSS(1000) − RSS(4)) / 996.
 *
 * BENCH_ROUNDS (3), BENCH_MEMORY_SPEEDUP (10), BENCH_MEMORY_MINUTES (10),
 * BENCH_MANY_CHECKS (1000), BENCH_MANY_SECONDS (20); BENCH_NODE_ARGS overrides
 * the shipped flags.
 */
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDIS_URL, DATABASE_URL } from './lib/configs.mjs';
import { rssOf, sleep, spawnNode, stopChild, firstLine } from './lib/proc.mjs';
import { figure, median, round } from './lib/stats.mjs';
import { writeResult, REPO_DIR } from './lib/result.mjs';
import { httpGet, spawnSidecar } from './lib/sidecar.mjs';
import { startHttpApp } from './lib/services.mjs';
import { buildShippedBundle, shippedEnv, shippedNodeFlags } from './lib/probe-shipped.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SPEEDUP = Number(process.env.BENCH_MEMORY_SPEEDUP ?? 10);
const MINUTES = Number(process.env.BENCH_MEMORY_MINUTES ?? 10);
const MINUTE_MS = 60_000 / SPEEDUP;
const ROUND_MS = MINUTES * MINUTE_MS;
const CHECK_MS = Math.max(10, Math.round(1000 / SPEEDUP));
const SCRAPE_MS = Math.round(5000 / SPEEDUP);
const KUBELET_MS = Math.round(10_000 / SPEEDUP);
const SAMPLE_MS = 500;
const MANY = Number(process.env.BENCH_MANY_CHECKS ?? 1000);
const MANY_MS = Number(process.env.BENCH_MANY_SECONDS ?? 20) * 1000;
/** the node flags of a pod: the image ENTRYPOINT's plus the NODE_OPTIONS the kustomize component (deploy/kustomize/components/<file>) sets */
function podNodeFlags(file = 'health-sidecar/sidecar.yaml') {
  const component = readFileSync(join(REPO_DIR, 'deploy', 'kustomize', 'components', file), 'utf8');
  const m = /- name: NODE_OPTIONS\s+value: ([^\n]+)/.exec(component);
  return [...shippedNodeFlags(), ...(m ? m[1].trim().split(/\s+/) : [])];
}
const NODE_ARGS = process.env.BENCH_NODE_ARGS !== undefined ? process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean) : podNodeFlags();
/**
 * the 1,000-check processes: as the deploy kit runs many checks, the standalone monitor component
 * (the image's flags and its NODE_OPTIONS, --max-old-space-size=160); the sidecar pod's 64 MiB old
 * generation is too small for 1,000 checks (docs/deploy.md: raise the cap with the checks), and without
 * any cap V8 lets the old generation grow to ~4x the live set before a full GC
 */
const MANY_ARGS = process.env.BENCH_NODE_ARGS !== undefined ? NODE_ARGS : podNodeFlags('monitor/monitor.yaml');
/** the image's ENV (NODE_ENV, MALLOC_ARENA_MAX): the shipped sidecar and the bare baseline run with it */
const SHIPPED_ENV = shippedEnv();
const PRELOAD = join(REPO_DIR, 'test', 'helpers', 'loaded-modules.cjs');
/** a driver's files: in node_modules (ioredis, pg: external to the bundle) or its file in the bundle (bundle/pkg/@grpc+grpc-js.js) */
const DRIVER = /node_modules\/(ioredis|pg|@grpc\/grpc-js|grpc-health-check)\/|\/pkg\/(@grpc\+grpc-js|grpc-health-check)\.js$/;
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

function header(interval) {
  return `
server: { port: \${PORT}, host: 127.0.0.1, drainDelay: 0s }
log: { level: warn }
telemetry: { serviceName: bench-memory }
defaults: { interval: ${interval}, timeout: ${interval} }
checks:
`;
}

/** the 4 checks of the issue: HTTP, Redis, PostgreSQL, TCP */
function fourKinds(appUrl) {
  return `${header(`${CHECK_MS}ms`)}  - { name: self, kind: tcp, url: "tcp://127.0.0.1:\${PORT}", groups: [ready] }
  - { name: app, kind: http, url: "${appUrl}", groups: [ready] }
  - { name: cache, kind: redis, url: "${REDIS_URL}", groups: [ready] }
  - { name: db, kind: postgres, url: "${DATABASE_URL}", query: SELECT 1, groups: [ready] }
`;
}

/** n HTTP checks on the app (distinct paths) */
function httpChecks(appUrl, n, interval) {
  const lines = Array.from({ length: n }, (_, i) => `  - { name: app${i}, kind: http, url: "${appUrl}c${i}", groups: [ready] }`);
  return header(interval) + lines.join('\n') + '\n';
}

/** drivers named in a loaded-modules.cjs report */
function driversIn(file) {
  try {
    const { files } = JSON.parse(readFileSync(file, 'utf8'));
    const found = new Set();
    for (const f of files) {
      const m = DRIVER.exec(f);
      if (m) found.add(m[1] ?? m[2].replace('+', '/'));
    }
    return { modules: files.length, drivers: [...found].sort() };
  } catch (err) {
    return { modules: NaN, drivers: [`(no report: ${err.message})`] };
  }
}

/** medians of the samples in each minute-equivalent window: [minute 1, …, minute MINUTES] */
function perMinute(samples) {
  const out = [];
  for (let k = 1; k <= MINUTES; k++) {
    const xs = samples.filter((s) => s.t > (k - 1) * MINUTE_MS && s.t <= k * MINUTE_MS).map((s) => s.rss);
    out.push(median(xs));
  }
  return out;
}

async function rssRound(index) {
  const app = await startHttpApp();
  const otlp = await startOtlpReceiver();
  const bare = spawnNode({ code: BARE_SERVER }, ['0'], { nodeArgs: NODE_ARGS, env: SHIPPED_ENV });
  const { port: barePort } = await firstLine(bare);
  const env = { ...SHIPPED_ENV, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url };
  const reports = { four: join(tmpdir(), `bench-memory-four-${process.pid}.json`), http: join(tmpdir(), `bench-memory-http-${process.pid}.json`) };
  const preload = ['-r', PRELOAD];
  const subjects = {};
  const stopAll = async () => {
    for (const s of Object.values(subjects)) await s.stop();
    await stopChild(bare);
    await app.stop();
    await otlp.stop();
  };
  try {
    subjects.four = await spawnSidecar(fourKinds(app.url), { env: { ...env, LOADED_MODULES_OUT: reports.four }, nodeArgs: [...NODE_ARGS, ...preload], cli: BUNDLE.cli });
    subjects.http = await spawnSidecar(httpChecks(app.url, 4, `${CHECK_MS}ms`), { env: { ...env, LOADED_MODULES_OUT: reports.http }, nodeArgs: [...NODE_ARGS, ...preload], cli: BUNDLE.cli });
    subjects.plain = await spawnSidecar(fourKinds(app.url), { env, nodeArgs: [], cli: BUNDLE.cli });
    // as the image ran it before the bundle: without MALLOC_ARENA_MAX
    subjects.compiled = await spawnSidecar(fourKinds(app.url), { env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, NODE_ENV: 'production' }, nodeArgs: NODE_ARGS });
  } catch (err) {
    await stopAll();
    throw err;
  }
  const urls = { ...Object.fromEntries(Object.entries(subjects).map(([k, s]) => [k, s.url])), bare: `http://127.0.0.1:${barePort}` };
  const pids = { ...Object.fromEntries(Object.entries(subjects).map(([k, s]) => [k, s.pid])), bare: bare.pid };
  const samples = Object.fromEntries(Object.keys(pids).map((k) => [k, []]));
  let scrapes = 0;
  let failedRequests = 0;
  const ask = (path) => Promise.all(Object.values(urls).map((u) => httpGet(u + path, 5000).catch(() => failedRequests++)));
  try {
    const t0 = performance.now();
    const timers = [
      setInterval(() => void ask('/metrics').then(() => scrapes++), SCRAPE_MS),
      setInterval(() => void ask('/readyz'), KUBELET_MS),
      setInterval(() => {
        const t = performance.now() - t0;
        for (const [k, pid] of Object.entries(pids)) samples[k].push({ t, rss: rssOf(pid) / MiB });
      }, SAMPLE_MS),
    ];
    await sleep(ROUND_MS + 50);
    for (const t of timers) clearInterval(t);
  } finally {
    await stopAll();
  }
  const minutes = Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, perMinute(xs)]));
  const loaded = { four: driversIn(reports.four), http: driversIn(reports.http) };
  for (const f of Object.values(reports)) rmSync(f, { force: true });
  const last = (k) => minutes[k][MINUTES - 1];
  const r = {
    min1: minutes.four[0],
    min10: last('four'),
    max: Math.max(...samples.four.map((s) => s.rss)),
    growth: (last('four') - minutes.four[0]) / (MINUTES - 1),
    bare: last('bare'),
    bareGrowth: (last('bare') - minutes.bare[0]) / (MINUTES - 1),
    httpOnly: last('http'),
    plainMin10: last('plain'),
    compiledMin10: last('compiled'),
    minutes,
    loaded,
    appRequests: app.requests,
    otlpExports: otlp.stats.requests,
    otlpBytes: otlp.stats.bytes,
    scrapes,
    failedRequests,
  };
  console.log(`[memory] round ${index + 1}: 4 checks RSS min1 ${r.min1.toFixed(1)} → min${MINUTES} ${r.min10.toFixed(1)} MiB (max ${r.max.toFixed(1)}), HTTP-only ${r.httpOnly.toFixed(1)} MiB (drivers: ${loaded.http.drivers.join(', ') || 'none'}; 4-kind: ${loaded.four.drivers.join(', ')}), node defaults ${r.plainMin10.toFixed(1)} MiB, compiled form ${r.compiledMin10.toFixed(1)} MiB, bare ${r.bare.toFixed(1)} MiB; app requests ${app.requests}, OTLP exports ${otlp.stats.requests} (${(otlp.stats.bytes / 1024).toFixed(0)} KiB), scrapes ${scrapes}, failed requests ${failedRequests}`);
  return r;
}

/** RSS of a sidecar with MANY HTTP checks and of one with 4, at a 2 s interval after MANY_MS (real time), the monitor component's flags. */
async function manyChecksRound(index) {
  const app = await startHttpApp();
  const env = { ...SHIPPED_ENV, OTEL_TRACES_EXPORTER: 'none' };
  let many, few;
  try {
    many = await spawnSidecar(httpChecks(app.url, MANY, '2s'), { env, nodeArgs: MANY_ARGS, timeoutMs: 60_000, cli: BUNDLE.cli });
    few = await spawnSidecar(httpChecks(app.url, 4, '2s'), { env, nodeArgs: MANY_ARGS, cli: BUNDLE.cli });
    const t0 = performance.now();
    const timer = setInterval(() => void Promise.all([httpGet(`${many.url}/metrics`, 10_000), httpGet(`${few.url}/metrics`, 10_000)]).catch(() => undefined), 5000);
    await sleep(MANY_MS);
    clearInterval(timer);
    const r = { many: rssOf(many.pid) / MiB, few: rssOf(few.pid) / MiB, seconds: (performance.now() - t0) / 1000, appRequests: app.requests };
    r.perCheck = (r.many - r.few) / (MANY - 4);
    console.log(`[memory] many-checks round ${index + 1}: ${MANY} checks ${r.many.toFixed(1)} MiB, 4 checks ${r.few.toFixed(1)} MiB → ${r.perCheck.toFixed(3)} MiB per check; app requests ${app.requests}`);
    return r;
  } finally {
    await many?.stop();
    await few?.stop();
    await app.stop();
  }
}

// the shipped form: scripts/bundle.mjs's bundle (built here from dist/, beside package.json and node_modules)
const BUNDLE = buildShippedBundle();
const rounds = [];
const manyRounds = [];
for (let i = 0; i < ROUNDS; i++) {
  rounds.push(await rssRound(i));
  manyRounds.push(await manyChecksRound(i));
}

const pick = (xs, k) => xs.map((r) => r[k]);
const flags = NODE_ARGS.length ? `node ${NODE_ARGS.join(' ')}` : 'node default flags';
const compressed = `${MINUTES} minute-equivalents at ${SPEEDUP}× speed (${ROUND_MS / 1000} s): checks every ${CHECK_MS} ms = ${MINUTES * 60} runs per check (${MINUTES} min at 1 s), /metrics every ${SCRAPE_MS} ms (5 s), /readyz every ${KUBELET_MS} ms (10 s), traces to a local OTLP receiver; ${flags}; minute k = median RSS of its ${MINUTE_MS / 1000} s window`;
const driversHttp = rounds.map((r) => r.loaded.http.drivers.filter((d) => !d.startsWith('(')).length);
const figures = [
  figure({
    id: 'rss-min10',
    label: `sidecar RSS at "minute ${MINUTES}", 4 checks (HTTP, Redis, PostgreSQL, TCP), telemetry on`,
    unit: 'MiB',
    samples: pick(rounds, 'min10'),
    baselineSamples: pick(rounds, 'bare'),
    baselineLabel: `bare node:http "ok" server, same node flags (${NODE_ARGS.join(' ') || 'none'}) and MALLOC_ARENA_MAX=${SHIPPED_ENV.MALLOC_ARENA_MAX ?? 'unset'}, same requests`,
    goal: '≤ 1.4× bare',
    check: (_v, r) => r !== null && r <= 1.4,
    digits: 1,
    note: compressed,
  }),
  figure({
    id: 'rss-growth',
    label: `RSS growth "minute 1" → "minute ${MINUTES}"`,
    unit: 'MiB/min-eq',
    samples: pick(rounds, 'growth'),
    baselineSamples: pick(rounds, 'bareGrowth'),
    baselineLabel: 'bare node:http server, same window',
    goal: "no growth: ≤ the bare server's growth in the same window + 0.2 MiB per minute-equivalent",
    check: (v) => v <= median(pick(rounds, 'bareGrowth')) + 0.2,
    digits: 2,
    note: `(minute ${MINUTES} − minute 1) / ${MINUTES - 1}; minute 1 includes the start, and a bare node:http server asked the same requests grows too in this window (node's own warm-up), hence the goal against it. Per-minute medians of each round: ${rounds.map((r) => r.minutes.four.map((x) => x.toFixed(1)).join(' ')).join(' | ')}`,
  }),
  figure({
    id: 'rss-http-only',
    label: `sidecar RSS at "minute ${MINUTES}", 4 HTTP checks only`,
    unit: 'MiB',
    samples: pick(rounds, 'httpOnly'),
    baselineSamples: pick(rounds, 'bare'),
    baselineLabel: 'bare node:http "ok" server, same node flags, same requests',
    goal: '',
    digits: 1,
    note: `same rounds, schedule and requests as the 4-kind sidecar; modules evaluated (require.cache at exit): ${rounds.map((r) => r.loaded.http.modules).join(', ')} (4 kinds: ${rounds.map((r) => r.loaded.four.modules).join(', ')})`,
  }),
  figure({
    id: 'drivers-http-only',
    label: 'database drivers loaded with HTTP checks only (ioredis, pg, @grpc/grpc-js, grpc-health-check)',
    unit: 'drivers',
    samples: driversHttp,
    goal: '= 0',
    check: (v) => v === 0,
    digits: 0,
    note: `from require.cache at exit (test/helpers/loaded-modules.cjs); HTTP-only: ${rounds.map((r) => r.loaded.http.drivers.join('+') || 'none').join(', ')}; the 4-kind sidecar loaded ${rounds[0].loaded.four.drivers.join(', ')}`,
  }),
  figure({
    id: 'rss-per-check-1000',
    label: `RSS per check at ${MANY} checks, above the 4-check figure`,
    unit: 'MiB/check',
    samples: pick(manyRounds, 'perCheck'),
    goal: '≤ 0.08 MiB per check',
    check: (v) => v <= 0.08,
    digits: 3,
    note: `(RSS with ${MANY} HTTP checks − RSS with 4) / ${MANY - 4}, both every 2 s on the same app for ${MANY_MS / 1000} s (real time), traces off, node ${MANY_ARGS.join(' ')} (as the deploy kit runs many checks: the image's flags and the standalone monitor component's NODE_OPTIONS; the sidecar pod's 64 MiB old-generation cap is too small for ${MANY} checks and is raised with them, docs/deploy.md), /metrics every 5 s; RSS ${MANY}: ${manyRounds.map((r) => r.many.toFixed(1)).join(', ')} MiB; 4: ${manyRounds.map((r) => r.few.toFixed(1)).join(', ')} MiB`,
  }),
  figure({
    id: 'rss-min10-node-defaults',
    label: 'same 4 checks, node default flags (no --max-semi-space-size, no --max-old-space-size)',
    unit: 'MiB',
    samples: pick(rounds, 'plainMin10'),
    baselineSamples: pick(rounds, 'bare'),
    baselineLabel: 'bare node:http server with the shipped flags',
    goal: '',
    digits: 1,
    note: 'a third sidecar in the same rounds, same config and requests, the bundle run as `node bundle/cli.js` (context for the shipped flag)',
  }),
  ...(BUNDLE
    ? [
        figure({
          id: 'rss-min10-vs-compiled',
          label: 'same 4 checks, the shipped bundle against the compiled form it replaced',
          unit: 'MiB',
          samples: pick(rounds, 'min10'),
          baselineSamples: pick(rounds, 'compiledMin10'),
          baselineLabel: 'the compiled sidecar (node dist/cli.js, production node_modules), same rounds, flags and requests, without MALLOC_ARENA_MAX (as it shipped)',
          goal: '≤ 1× the compiled form (the bundle must not use more)',
          check: (_v, r) => r !== null && r <= 1,
          digits: 1,
          note: `a fourth sidecar in the same rounds, same config, flags and requests, run as \`node dist/cli.js\` with the production node_modules (what the image ran before the bundle); bare node:http server: ${round(median(pick(rounds, 'bare')), 1)} MiB`,
        }),
      ]
    : []),
  figure({ id: 'rss-min1', label: 'sidecar RSS at "minute 1"', unit: 'MiB', samples: pick(rounds, 'min1'), goal: '', digits: 1 }),
  figure({ id: 'rss-max', label: 'sidecar RSS max over the round', unit: 'MiB', samples: pick(rounds, 'max'), goal: '', digits: 1 }),
];

writeResult('memory', 'Memory (RSS, telemetry on) of the shipped sidecar (the esbuild bundle) vs a bare node:http server', figures, {
  rounds: ROUNDS,
  extra: { params: { speedup: SPEEDUP, minutes: MINUTES, checkMs: CHECK_MS, scrapeMs: SCRAPE_MS, kubeletMs: KUBELET_MS, many: MANY, manySeconds: MANY_MS / 1000, nodeArgs: NODE_ARGS }, rounds_raw: rounds, many_raw: manyRounds },
});
