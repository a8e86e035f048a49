#!/usr/bin/env node
/**
 * Start-up and shipped size of the SHIPPED sidecar, the esbuild bundle of dist/
 * (scripts/bundle.mjs, built here), against the compiled form it replaced
 * (dist/ + production node_modules), interleaved in the same rounds (issue 22,
 * goals 2 and 3).
 *
 * Start-up: spawn of `node <shipped flags> bundle/cli.js run` with the 4-check config
 * of the memory bench (HTTP app, Redis, PostgreSQL, TCP self; interval 10 s, traces
 * on to an OTLP endpoint), /readyz polled every 2 ms on fresh connections: the time
 * to its first answer (any status) and to its first 200. Baseline: spawn → exit of
 * `node -e ""` (an empty process), interleaved round by round; as context a bare
 * node:http server spawn → first answer. Goal: first answer ≤ 3× `node -e ""`;
 * first 200 ≤ that bound plus the slowest check's first probe (its `durationMs`
 * from /health, read right after the first 200: with a 10 s interval it is the
 * first run). Both measured idle and with two busy loops (`node -e 'for(;;);'`)
 * beside it, each condition against its own empty-process baseline.
 *
 * Shipped size: the bytes the image adds on top of the Node base image, i.e. the
 * files the Dockerfile copies into the runtime stage: the bundle directory, the
 * packages it keeps external with their production dependencies (package-lock
 * entries, measured as the files of that package directory here, nested
 * node_modules counted as their own entries), package.json and
 * config/sidecar.yaml. File bytes, not disk blocks or tar headers. The compiled
 * form is measured the same way for comparison (every production dependency
 * `npm ci --omit=dev` installs, what `npm pack` ships, config/sidecar.yaml).
 *
 * BENCH_STARTUP_ROUNDS (10 per condition).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDIS_URL, DATABASE_URL } from './lib/configs.mjs';
import { loadMeter, sleep, stopChild } from './lib/proc.mjs';
import { figure, median, round } from './lib/stats.mjs';
import { writeResult, REPO_DIR } from './lib/result.mjs';
import { freePort, httpGet } from './lib/sidecar.mjs';
import { startHttpApp } from './lib/services.mjs';
import { buildShippedBundle, shippedNodeFlags } from './lib/probe-shipped.mjs';

const ROUNDS = Number(process.env.BENCH_STARTUP_ROUNDS ?? 10);
const NODE_ARGS = shippedNodeFlags();
const MiB = 1024 * 1024;

const BARE_SERVER = `
import http from 'node:http';
const server = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); });
server.listen(Number(process.argv[1] ?? 0), '127.0.0.1');
`;

function config(appUrl, port) {
  return `
server: { port: ${port}, host: 127.0.0.1, drainDelay: 0s, showDetails: always }
log: { level: warn }
telemetry: { serviceName: bench-startup }
defaults: { interval: 10s, timeout: 2s }
checks:
  - { name: self, kind: tcp, url: "tcp://127.0.0.1:${port}", groups: [ready] }
  - { name: app, kind: http, url: "${appUrl}", groups: [ready] }
  - { name: cache, kind: redis, url: "${REDIS_URL}", groups: [ready] }
  - { name: db, kind: postgres, url: "${DATABASE_URL}", query: SELECT 1, groups: [ready] }
`;
}

/** spawn → first answer and → first 200 of `url` (ms), then the slowest check's durationMs from /health */
async function startOnce(args, baseUrl, env = {}) {
  const t0 = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
  const child = spawn(process.execPath, args, { cwd: REPO_DIR, stdio: 'ignore', env: { ...process.env, ...env } });
  let first = NaN;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited ${child.exitCode}`);
      try {
        const r = await httpGet(`${baseUrl}/readyz`, 1000);
        if (Number.isNaN(first)) first = ms();
        if (r.status === 200) {
          const ready = ms();
          const health = JSON.parse((await httpGet(`${baseUrl}/health`, 5000)).body);
          const slowest = Math.max(...Object.values(health.checks).map((c) => c.durationMs ?? NaN));
          return { first, ready, slowest };
        }
      } catch {
        // not listening yet
      }
      await sleep(2);
      if (ms() > 30_000) throw new Error(`no /readyz 200 from ${baseUrl} in 30 s`);
    }
  } finally {
    await stopChild(child, 'SIGKILL');
  }
}

/** spawn → first answer of a bare node:http server */
async function bareOnce() {
  const port = await freePort();
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [...NODE_ARGS, '--input-type=module', '-e', BARE_SERVER, String(port)], { stdio: 'ignore' });
  try {
    for (;;) {
      try {
        await httpGet(`http://127.0.0.1:${port}/`, 1000);
        return Number(process.hrtime.bigint() - t0) / 1e6;
      } catch {
        await sleep(2);
      }
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

/** `entries`: { name: cli path } run in the same interleaved rounds */
async function startupRounds(entries, label, extraPids = []) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-startup-'));
  const app = await startHttpApp();
  const out = { empty: [], bare: [] };
  for (const name of Object.keys(entries)) out[name] = [];
  const meter = loadMeter(extraPids);
  meter.start();
  try {
    for (let i = 0; i < ROUNDS; i++) {
      for (const [name, cli] of Object.entries(entries)) {
        const port = await freePort();
        const file = join(dir, 'sidecar.yaml');
        writeFileSync(file, config(app.url, port));
        out[name].push(await startOnce([...NODE_ARGS, cli, 'run', '--config', file], `http://127.0.0.1:${port}`, { NODE_ENV: 'production', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/' }));
      }
      out.empty.push(await emptyProcessMs());
      out.bare.push(await bareOnce());
    }
  } finally {
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  out.load = meter.end();
  const fmt = (xs) => xs.map((x) => x.toFixed(0)).join(' ');
  for (const name of Object.keys(entries)) console.log(`[startup] ${label} ${name}: first answer ${fmt(out[name].map((r) => r.first))} ms; first 200 ${fmt(out[name].map((r) => r.ready))} ms; slowest first probe ${fmt(out[name].map((r) => r.slowest))} ms`);
  console.log(`[startup] ${label} node -e "": ${fmt(out.empty)} ms; bare http: ${fmt(out.bare)} ms; other processes used ${out.load.foreignCpus.toFixed(2)} of 2 CPUs`);
  return out;
}

/** two busy loops beside the measurement (what a loaded 2-core node looks like) */
function busyLoops() {
  const loops = [0, 1].map(() => spawn(process.execPath, ['-e', 'for(;;);'], { stdio: 'ignore' }));
  return { pids: loops.map((c) => c.pid), stop: () => Promise.all(loops.map((c) => stopChild(c, 'SIGKILL'))) };
}

// ── shipped size ──

/** bytes of the files under dir, not descending into nested node_modules */
function dirBytes(dir) {
  let total = 0;
  let files = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === 'node_modules') continue;
      const sub = dirBytes(full);
      total += sub.bytes;
      files += sub.files;
    } else if (e.isFile()) {
      total += statSync(full).size;
      files++;
    }
  }
  return { bytes: total, files };
}

/** the production packages of the lockfile (what `npm ci --omit=dev` installs), with their bytes here */
function productionPackages(onlyFrom) {
  const lock = JSON.parse(readFileSync(join(REPO_DIR, 'package-lock.json'), 'utf8'));
  const packages = lock.packages;
  let keys = Object.keys(packages).filter((k) => k.startsWith('node_modules/') && !packages[k].dev);
  if (onlyFrom) {
    // the closure of the named packages' production dependencies (as npm resolves them: nearest node_modules up the tree)
    const want = new Set();
    const resolve = (from, name) => {
      for (let base = from; ; ) {
        const key = (base ? `${base}/` : '') + `node_modules/${name}`;
        if (packages[key]) return key;
        if (!base) return undefined;
        const i = base.lastIndexOf('/node_modules/');
        base = i < 0 ? '' : base.slice(0, i);
      }
    };
    const visit = (key) => {
      if (!key || want.has(key)) return;
      want.add(key);
      for (const dep of Object.keys({ ...packages[key].dependencies, ...packages[key].optionalDependencies })) visit(resolve(key, dep));
    };
    for (const name of onlyFrom) visit(resolve('', name));
    keys = keys.filter((k) => want.has(k));
  }
  let bytes = 0;
  let present = 0;
  for (const k of keys) {
    const dir = join(REPO_DIR, k);
    if (!existsSync(dir)) continue; // optional package of another platform
    bytes += dirBytes(dir).bytes;
    present++;
  }
  return { bytes, packages: present };
}

/** what `npm pack` ships (package.json "files"), from its dry run */
function packBytes() {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_DIR, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm pack --dry-run failed: ${r.stderr}`);
  const [info] = JSON.parse(r.stdout);
  return { bytes: info.files.reduce((s, f) => s + f.size, 0), files: info.files.length };
}

const shipped = (() => {
  const deps = productionPackages();
  const pack = packBytes();
  const configBytes = statSync(join(REPO_DIR, 'config', 'sidecar.yaml')).size;
  return { deps, pack, configBytes, total: deps.bytes + pack.bytes + configBytes };
})();
console.log(`[startup] shipped: production node_modules ${(shipped.deps.bytes / MiB).toFixed(1)} MiB (${shipped.deps.packages} packages), npm pack ${(shipped.pack.bytes / MiB).toFixed(2)} MiB (${shipped.pack.files} files), config ${shipped.configBytes} B`);

let bundle;
{
  const { cli, info } = buildShippedBundle();
  const ext = productionPackages(info.external);
  bundle = { cli, bytes: info.bytes, files: info.files.length, external: info.external, externalBytes: ext.bytes, externalPackages: ext.packages, total: info.bytes + ext.bytes + shipped.configBytes + statSync(join(REPO_DIR, 'package.json')).size };
  console.log(`[startup] bundle: ${(info.bytes / MiB).toFixed(2)} MiB + external ${info.external.join(', ')}: ${(ext.bytes / MiB).toFixed(1)} MiB (${ext.packages} packages)`);
}

const entries = { compiled: join(REPO_DIR, 'dist', 'cli.js'), ...(bundle ? { bundle: bundle.cli } : {}) };
const idle = await startupRounds(entries, 'idle');
const busy = busyLoops();
let loaded;
try {
  loaded = await startupRounds(entries, 'two busy loops', busy.pids);
} finally {
  await busy.stop();
}

const flags = NODE_ARGS.length ? `node ${NODE_ARGS.join(' ')}` : 'node default flags';
const figures = [];
for (const [cond, m, suffix] of [
  ['idle', idle, 'idle machine'],
  ['busy', loaded, 'two busy loops beside it'],
]) {
  const emptyMedian = median(m.empty);
  const slowest = median(m.bundle.map((r) => r.slowest));
  figures.push(
    figure({
      id: `startup-first-answer-${cond}`,
      label: `start-up of the shipped bundle: spawn → first /readyz answer, ${suffix}`,
      unit: 'ms',
      samples: m.bundle.map((r) => r.first),
      baselineSamples: m.empty,
      baselineLabel: 'node -e "" (empty process, spawn → exit), same rounds',
      goal: '≤ 3× node -e ""',
      check: (_v, r) => r !== null && r <= 3,
      digits: 0,
      note: `${ROUNDS} rounds interleaved; 4 checks (HTTP, Redis, PostgreSQL, TCP), traces on; ${flags}; bare node:http server spawn → first answer: median ${round(median(m.bare), 0)} ms; processes not ours (other work on the shared machine${cond === 'busy' ? ', the two busy loops not counted' : ''}) used ${m.load.foreignCpus.toFixed(2)} of 2 CPUs during these rounds`,
    }),
    figure({
      id: `startup-first-200-${cond}`,
      label: `start-up of the shipped bundle: spawn → first /readyz 200, ${suffix}`,
      unit: 'ms',
      samples: m.bundle.map((r) => r.ready),
      baselineSamples: m.empty,
      baselineLabel: 'node -e "", same rounds',
      goal: `≤ 3× node -e "" + the slowest check's first probe (median ${round(slowest, 0)} ms)`,
      check: (v) => v <= 3 * emptyMedian + slowest,
      digits: 0,
      note: `every check runs once at start, at once (src/health/scheduler.ts); slowest first probe per round (durationMs from /health): ${m.bundle.map((r) => r.slowest.toFixed(0)).join(', ')} ms; bound = ${round(3 * emptyMedian + slowest, 0)} ms`,
    }),
    figure({
      id: `startup-bundle-vs-compiled-${cond}`,
      label: `the shipped bundle against the compiled form it replaced (dist + production node_modules): spawn → first /readyz answer, ${suffix}`,
      unit: 'ms',
      samples: m.bundle.map((r) => r.first),
      baselineSamples: m.compiled.map((r) => r.first),
      baselineLabel: 'node dist/cli.js (compiled, production node_modules), same rounds',
      goal: '≤ 1× the compiled form (the bundle must not start slower)',
      check: (_v, r) => r !== null && r <= 1,
      digits: 0,
      note: `same rounds, interleaved; compiled first 200: median ${round(median(m.compiled.map((r) => r.ready)), 0)} ms`,
    }),
  );
}
figures.push(
  figure({
    id: 'shipped-bytes-bundle',
    label: 'shipped: bytes the image adds on top of the Node base (the bundle + the packages it keeps external)',
    unit: 'MiB',
    value: round(bundle.total / MiB, 2),
    goal: '≤ 8 MiB',
    check: (v) => v <= 8,
    note: `bundle ${(bundle.bytes / MiB).toFixed(2)} MiB (${bundle.files} files: minified cli.js + kubelet-worker.js, one file per package under pkg/, the gRPC .proto files, the lockfile cut for the external packages), external ${bundle.external.join(', ')} with their production dependencies ${(bundle.externalBytes / MiB).toFixed(2)} MiB (${bundle.externalPackages} packages), package.json, config/sidecar.yaml; file bytes. test/deploy/dockerfile.test.ts asserts ≤ 8 MiB on the runtime stage it builds`,
  }),
  figure({
    id: 'shipped-bytes',
    label: 'before the bundle: compiled dist + production node_modules',
    unit: 'MiB',
    value: round(shipped.total / MiB, 2),
    goal: '',
    note: `production node_modules ${(shipped.deps.bytes / MiB).toFixed(2)} MiB (${shipped.deps.packages} packages of package-lock.json not marked dev), npm pack files ${(shipped.pack.bytes / MiB).toFixed(2)} MiB (${shipped.pack.files} files), config/sidecar.yaml ${shipped.configBytes} B; file bytes`,
  }),
);

writeResult('startup', 'Start-up (idle and loaded) and shipped size of the shipped bundle, against the compiled form', figures, {
  rounds: ROUNDS,
  extra: { params: { rounds: ROUNDS, nodeArgs: NODE_ARGS }, raw: { idle, busy: loaded }, shipped, bundle: bundle && { ...bundle, dir: undefined, cli: undefined } },
});
