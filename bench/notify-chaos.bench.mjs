#!/usr/bin/env node
/**
 * Notification chaos (issue 16): nothing lost, nothing doubled, while
 * everything around the sidecar fails at random.
 *
 * Set-up: the compiled sidecar with `state.redis` on a private redis-server
 * (appendonly, fsync always, so a Redis restart keeps what was written), four
 * HTTP checks on four real dependencies, and one webhook target whose
 * receiver counts what it accepts by event id. Time is compressed 10×:
 * checks every 200 ms (2 s as shipped would be typical), redelivery
 * 50–500 ms, breaker 3 failures / 300 ms, so DURATION_S seconds stand for ten
 * times as long of a real incident-heavy day.
 *
 * Chaos, each on its own random schedule (seeded, so a run can be repeated):
 *   - a dependency flips healthy ↔ broken          every 0.4–2 s
 *   - the receiver flaps (answers 503 / accepts)   every 1–4 s
 *   - Redis is killed (SIGKILL) and restarted       every 8–15 s
 *   - the sidecar is kill -9'd and restarted        every 6–12 s
 * Then everything heals (dependencies up, receiver accepting, Redis and one
 * sidecar running) and the bench waits until the sidecar's queue is empty.
 *
 * Figures (from the receiver's view, checked against the state changes the
 * sidecar processes logged):
 *   - recoveries missing: checks whose last accepted message is not UP,
 *     although every check ended UP. Goal 0.
 *   - duplicate news: a state accepted twice in a row for a check under
 *     different ids (a receiver could not drop it). Goal 0.
 *   - duplicate deliveries of one id (droppable by Idempotency-Key): reported.
 *   - delivered: per check, the alternations of state the receiver was told
 *     (folded timelines expanded) against those the sidecars logged (a
 *     transition logged by a process that was SIGKILLed before the outbox
 *     write can be lost: that window is what this counts). Goal 100 %.
 *
 * Env: DURATION_S (default 60), SEED (default 16).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, httpGet, waitHttp } from './lib/sidecar.mjs';
import { sleep } from './lib/proc.mjs';
import { REPO_DIR, writeResult } from './lib/result.mjs';

const DURATION_S = Number(process.env.DURATION_S ?? 60);
let seed = Number(process.env.SEED ?? 16);
const random = () => {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const between = (lo, hi) => lo + random() * (hi - lo);

const dir = mkdtempSync(join(tmpdir(), 'notify-chaos-'));
const CHECKS = ['alpha', 'beta', 'gamma', 'delta'];

// ── the receiver ────────────────────────────────────────────────────────────
let accepting = true;
const accepted = []; // { id, check, to, timeline, at }
let refusedCount = 0;
const receiver = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    if (!accepting) {
      refusedCount++;
      res.writeHead(503).end('flapping');
      return;
    }
    const m = JSON.parse(body);
    if (req.headers['idempotency-key'] !== m.id) throw new Error(`Idempotency-Key ${req.headers['idempotency-key']} ≠ body id ${m.id}`);
    accepted.push({ id: m.id, check: m.check, to: m.to, timeline: m.timeline?.map((s) => s.status), at: Date.now() });
    res.writeHead(200).end('ok');
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;

// ── dependencies ────────────────────────────────────────────────────────────
const healthy = Object.fromEntries(CHECKS.map((c) => [c, true]));
const deps = {};
for (const check of CHECKS) {
  const server = http.createServer((_req, res) => res.writeHead(healthy[check] ? 200 : 500).end());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  deps[check] = server;
}

// ── Redis, restartable, keeping its data ────────────────────────────────────
const redisPort = await freePort();
let redis;
async function startRedis() {
  redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    try {
      const out = await new Promise((resolve, reject) => {
        const c = spawn('redis-cli', ['-p', String(redisPort), 'ping']);
        let s = '';
        c.stdout.on('data', (d) => (s += d));
        c.on('exit', () => resolve(s.trim()));
        c.on('error', reject);
      });
      if (out === 'PONG') return;
    } catch {}
    await sleep(25);
  }
  throw new Error('redis-server did not start');
}
await startRedis();

// ── the sidecar ─────────────────────────────────────────────────────────────
const port = await freePort();
const config = join(dir, 'sidecar.yaml');
writeFileSync(
  config,
  `
server: { port: ${port}, host: 127.0.0.1, drainDelay: 0s }
telemetry: { serviceName: chaos, traces: { enabled: false } }
state: { redis: 'redis://127.0.0.1:${redisPort}', keyPrefix: chaos }
defaults: { interval: 200ms, timeout: 150ms, retry: { attempts: 1 }, thresholds: { failure: 1, success: 1 }, breaker: { failures: 5, halfOpenAfter: 500ms } }
checks:
${CHECKS.map((c) => `  - { name: ${c}, kind: http, url: 'http://127.0.0.1:${deps[c].address().port}/' }`).join('\n')}
notifications:
  - { name: oncall, kind: webhook, url: '${hookUrl}', cooldown: 0s, timeout: 1s, retry: { attempts: 1 }, breaker: { failures: 3, halfOpenAfter: 300ms }, redelivery: { initial: 50ms, max: 500ms }, retention: 1h }
`,
);
let sidecar;
let generation = 0;
const logs = [];
async function startSidecar() {
  const log = join(dir, `sidecar-${++generation}.log`);
  logs.push(log);
  const fd = openSync(log, 'a');
  sidecar = spawn(process.execPath, [join(REPO_DIR, 'dist', 'cli.js'), 'run', '--config', config], { cwd: REPO_DIR, stdio: ['ignore', fd, fd], env: { ...process.env, LOG_LEVEL: 'info' } });
  closeSync(fd);
  await waitHttp(`http://127.0.0.1:${port}/livez`, { status: 200, timeoutMs: 20_000, child: sidecar });
}
await startSidecar();

// ── chaos ───────────────────────────────────────────────────────────────────
const counts = { depFlips: 0, receiverFlaps: 0, redisRestarts: 0, sidecarKills: 0 };
const until = Date.now() + DURATION_S * 1000;
/** `act` at random intervals of lo–hi ms until the end of the chaos */
const every = async (lo, hi, act) => {
  while (Date.now() < until) {
    await sleep(between(lo, hi));
    if (Date.now() >= until) break;
    await act();
  }
};
/** SIGKILL a child, wait for it to go, and start it again after lo–hi ms */
const killAndRestart = async (child, lo, hi, start) => {
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  await sleep(between(lo, hi));
  await start();
};
const loops = [
  every(400, 2000, () => {
    const c = CHECKS[Math.floor(random() * CHECKS.length)];
    healthy[c] = !healthy[c];
    counts.depFlips++;
  }),
  every(1000, 4000, () => {
    accepting = !accepting;
    counts.receiverFlaps++;
  }),
  every(8000, 15000, async () => {
    await killAndRestart(redis, 200, 1500, startRedis);
    counts.redisRestarts++;
  }),
  every(6000, 12000, async () => {
    await killAndRestart(sidecar, 100, 800, startSidecar);
    counts.sidecarKills++;
  }),
];
await Promise.all(loops);

// ── heal and settle ─────────────────────────────────────────────────────────
for (const c of CHECKS) healthy[c] = true;
accepting = true;
const settleStart = Date.now();
for (;;) {
  const states = JSON.parse((await httpGet(`http://127.0.0.1:${port}/health`)).body);
  const allUp = CHECKS.every((c) => states.checks?.[c]?.status === 'UP');
  const metrics = (await httpGet(`http://127.0.0.1:${port}/metrics`)).body;
  const depth = Number(/healthcheck_notifications_queue_depth\{[^}]*\} (\d+)/.exec(metrics)?.[1] ?? NaN);
  const lastUp = CHECKS.every((c) => accepted.filter((m) => m.check === c).at(-1)?.to === 'UP');
  if (process.env.DEBUG) console.log(`[notify-chaos] settle +${Date.now() - settleStart} ms: allUp=${allUp} depth=${depth} lastUp=${lastUp}`);
  if (allUp && depth === 0 && lastUp) break;
  if (Date.now() - settleStart > 60_000) {
    console.error(`[notify-chaos] not settled after 60 s: allUp=${allUp} depth=${depth} lastUp=${lastUp}`);
    break;
  }
  await sleep(200);
}
const settleMs = Date.now() - settleStart;
sidecar.kill('SIGTERM');
await new Promise((r) => sidecar.once('exit', r));
redis.kill('SIGTERM');
receiver.close();
for (const s of Object.values(deps)) s.close();

// ── what the sidecars logged ────────────────────────────────────────────────
const logged = Object.fromEntries(CHECKS.map((c) => [c, []])); // states in time order
for (const file of logs) {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      continue;
    }
    if (r.check && r.to && r.from && typeof r.msg === 'string' && r.msg.startsWith(`check ${r.check} `)) logged[r.check]?.push({ t: Date.parse(r.time), to: r.to });
  }
}
const collapse = (states) => states.filter((s, i) => i === 0 || s !== states[i - 1]);
let producedAlternations = 0;
let deliveredAlternations = 0;
let recoveriesMissing = 0;
let duplicateNews = 0;
const perCheck = {};
for (const check of CHECKS) {
  const produced = collapse(logged[check].sort((a, b) => a.t - b.t).map((s) => s.to).filter((s) => s !== 'UNKNOWN'));
  // the very first UP at start-up is not news
  while (produced[0] === 'UP') produced.shift();
  const seenIds = new Set();
  const told = [];
  for (const m of accepted.filter((x) => x.check === check)) {
    if (seenIds.has(m.id)) continue;
    seenIds.add(m.id);
    const states = m.timeline ?? [m.to];
    if (told.length && told.at(-1) === states[0] && !m.timeline) duplicateNews++;
    told.push(...states);
  }
  const delivered = collapse(told);
  producedAlternations += produced.length;
  deliveredAlternations += Math.min(delivered.length, produced.length);
  if (delivered.at(-1) !== 'UP') recoveriesMissing++;
  perCheck[check] = { produced: produced.length, delivered: delivered.length };
}
const ids = accepted.map((m) => m.id);
const duplicateDeliveries = ids.length - new Set(ids).size;
rmSync(dir, { recursive: true, force: true });

const deliveredPct = producedAlternations === 0 ? 100 : (100 * deliveredAlternations) / producedAlternations;
const context = `${DURATION_S} s (≈ ${Math.round((DURATION_S * 10) / 60)} minutes at shipped intervals), seed ${process.env.SEED ?? 16}: ${counts.depFlips} dependency flips, ${counts.receiverFlaps} receiver flaps, ${counts.redisRestarts} Redis kill -9 + restarts, ${counts.sidecarKills} sidecar kill -9 + restarts; ${accepted.length} messages accepted, ${refusedCount} refused; settled ${settleMs} ms after healing. Per check produced/delivered state alternations: ${CHECKS.map((c) => `${c} ${perCheck[c].produced}/${perCheck[c].delivered}`).join(', ')}`;
writeResult(
  'notify-chaos',
  'Notifications under chaos: receiver flapping, Redis and the sidecar kill -9\'d at random',
  [
    { id: 'delivered', label: 'state changes delivered (alternations told vs logged by the sidecars)', unit: '%', value: Math.round(deliveredPct * 10) / 10, spread: null, baseline: null, ratio: null, goal: '100 %', met: deliveredPct >= 100, note: context },
    { id: 'recoveries-missing', label: 'recoveries missing at the end (every check ended UP)', unit: 'checks', value: recoveriesMissing, spread: null, baseline: null, ratio: null, goal: '0', met: recoveriesMissing === 0 },
    { id: 'duplicate-news', label: 'the same state told twice in a row under different ids (not droppable)', unit: 'messages', value: duplicateNews, spread: null, baseline: null, ratio: null, goal: '0', met: duplicateNews === 0 },
    { id: 'duplicate-deliveries', label: 'deliveries of an id already accepted (droppable by Idempotency-Key)', unit: 'messages', value: duplicateDeliveries, spread: null, baseline: null, ratio: null, goal: '—', met: null, note: 'at-least-once: a crash between the receiver accepting and the outbox removal sends the same id again' },
  ],
  { rounds: 1 },
);
