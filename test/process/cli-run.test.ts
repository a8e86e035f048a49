/**
 * The compiled CLI as production runs it (`node dist/cli.js run --config …`):
 * readiness following real Redis and PostgreSQL through fault proxies with
 * hysteresis, SIGTERM / SIGINT draining (503 at once, still answering, exit 0
 * after drainDelay), the shipped default config with no dependency
 * variables set, an invalid config (exit 2, never listens), and logs: one JSON
 * line per state change, and never the password of a URL.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { DATABASE_URL, freePort, hostPort, REDIS_URL, sleep, waitFor } from '../helpers/servers';
import { logLines } from '../deploy/support';
import { CLI, ensureBuilt, ROOT } from '../helpers/paths';
import { request } from '../helpers/http';

const CANARY = 'CANARY-PW-9d1';
const DRAIN_MS = 2000;

interface Cli {
  proc: ChildProcess;
  output: () => string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  records: () => Record<string, unknown>[];
}

const children: Cli[] = [];

function startCli(configPath: string, env: NodeJS.ProcessEnv): Cli {
  const proc = spawn(process.execPath, [CLI, 'run', '--config', configPath], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((res) => proc.once('exit', (code, signal) => res({ code, signal, at: performance.now() })));
  const cli: Cli = {
    proc,
    output: () => out + err,
    stdout: () => out,
    stderr: () => err,
    exited,
    records: () => logLines(out),
  };
  children.push(cli);
  return cli;
}

/** A clean environment: none of the variables the default config reads, no OTel export. */
function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['REDIS_URL', 'DATABASE_URL', 'APP_URL', 'PORT', 'HOST', 'LOG_LEVEL', 'DRAIN_DELAY', 'NODE_OPTIONS']) delete env[name];
  return { ...env, OTEL_TRACES_EXPORTER: 'none', ...extra };
}

/** every response body this file received (the canary must be in none) */
const bodies: string[] = [];

interface Answer {
  status: number;
  body: string;
}

async function get(port: number, path: string): Promise<Answer> {
  const reply = await request(port, path, { timeoutMs: 5000 });
  bodies.push(reply.body);
  return { status: reply.status, body: reply.body };
}

/** Poll until `path` answers `status` (connection errors count as "not yet"). */
async function until(port: number, path: string, status: number, what: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => (await get(port, path)).status === status, { timeoutMs, intervalMs: 25, what });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

let dir: string;
let redisProxy: FaultProxy;
let pgProxy: FaultProxy;

before(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'cli-run-'));
  redisProxy = await startFaultProxy(hostPort(REDIS_URL));
  pgProxy = await startFaultProxy(hostPort(DATABASE_URL));
});

after(async () => {
  for (const child of children) {
    if (child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
  }
  await Promise.all([redisProxy?.close(), pgProxy?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function dependencyConfig(port: number): string {
  // PostgreSQL uses trust auth here: any password is accepted, so the canary in the URL
  // is really sent around, and must never come out in any output.
  return `server:
  port: ${port}
  host: 127.0.0.1
  showDetails: always
  drainDelay: ${DRAIN_MS}ms
log: { level: info }
telemetry: { traces: { enabled: false } }
defaults:
  interval: 200ms
  timeout: 200ms
  retry: { attempts: 1, backoff: { initial: 10ms, max: 10ms }, jitter: false }
  breaker: { failures: 1000, halfOpenAfter: 1s }
  thresholds: { failure: 2, success: 1 }
checks:
  - name: cache
    kind: redis
    url: ${redisProxy.url('redis')}
    groups: [ready]
  - name: db
    kind: postgres
    url: postgres://postgres:${CANARY}@127.0.0.1:${pgProxy.port}/test
    groups: [ready]
`;
}

/**
 * SIGTERM/SIGINT: readiness 503 while the process still answers, still answering (readiness 503,
 * liveness 200) until it goes, exit 0 no sooner than drainDelay. Proven by what is seen in order,
 * not by how long each step takes (only the lower bound: a timer never fires early).
 */
async function assertDrains(cli: Cli, port: number, signal: NodeJS.Signals): Promise<void> {
  assert.equal((await get(port, '/readyz')).status, 200);
  let gone = false;
  void cli.exited.then(() => (gone = true));
  const sentAt = performance.now();
  cli.proc.kill(signal);
  // a 503 from the process itself: readiness fails as soon as the signal is handled, before any exit
  const first = (await waitFor(
    async () => {
      const answer = await get(port, '/readyz');
      return answer.status === 503 ? { answer, at: performance.now() } : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 5, what: `/readyz 503 after ${signal}` },
  ))!;
  const DRAINING = '[-]ready shutting down\n[+]cache ok\n[+]db ok\nreadyz check failed\n';
  assert.equal(first.answer.body, DRAINING);
  // still answering, readiness 503 and liveness 200, for as long as the process is there
  const answers: Answer[][] = [];
  while (!gone) {
    const pair = await Promise.all([get(port, '/readyz'), get(port, '/livez')]).catch(() => undefined);
    if (!pair) break; // the port closed under the request: the drain is over
    answers.push(pair);
    await sleep(50);
  }
  assert.ok(answers.length >= 1, 'answered during the drain');
  for (const [ready, live] of answers) {
    assert.deepEqual(ready, { status: 503, body: DRAINING });
    assert.deepEqual(live, { status: 200, body: 'ok' });
  }
  const exit = await cli.exited;
  const tookMs = exit.at - sentAt;
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, cli.stderr());
  assert.ok(tookMs >= DRAIN_MS - 20, `exited after ${tookMs.toFixed(0)} ms, before drainDelay ${DRAIN_MS} ms`);
  assert.ok(await refused(port), 'port closed after exit');
  const messages = cli.records().map((r) => r.msg);
  assert.ok(messages.includes(`${signal} received`), `logged ${signal}`);
  assert.ok(messages.includes('stopped'), 'the final log line was flushed before exit');
  console.log(`${signal}: first 503 after ${(first.at - sentAt).toFixed(1)} ms; ${answers.length} answer pairs while draining; exit after ${tookMs.toFixed(0)} ms (drainDelay ${DRAIN_MS} ms)`);
}

describe('health-sidecar run (compiled CLI)', () => {
  it('readiness follows Redis and PostgreSQL through hysteresis; SIGTERM drains and exits 0; logs transitions and no password', { timeout: 300_000 }, async () => {
    redisProxy.setMode('refuse');
    pgProxy.setMode('pass');
    const port = await freePort();
    const file = join(dir, 'deps.yaml');
    writeFileSync(file, dependencyConfig(port));
    const cli = startCli(file, baseEnv());
    await until(port, '/livez', 200, 'the sidecar listening');
    // Redis refused: cache DOWN (or not yet known), readiness fails
    const early = await get(port, '/readyz?verbose');
    assert.equal(early.status, 503);
    assert.match(early.body, /^\[-\]cache failed: .+\n/);
    await waitFor(() => cli.records().some((r) => r.check === 'cache' && r.to === 'DOWN'), { timeoutMs: 30_000, what: 'cache DOWN logged' });

    redisProxy.setMode('pass');
    await redisProxy.ready();
    await until(port, '/readyz', 200, 'ready after Redis came back');
    assert.equal((await get(port, '/readyz?verbose')).body, '[+]cache ok\n[+]db ok\nreadyz check passed\n');

    // black hole: two consecutive timeouts (thresholds.failure 2) before readiness fails
    for (const [proxy, name, mode] of [[redisProxy, 'cache', 'blackhole'], [pgProxy, 'db', 'blackhole'], [pgProxy, 'db', 'refuse']] as const) {
      proxy.setMode(mode);
      await until(port, '/readyz', 503, `503 with ${name} ${mode}`);
      // DOWN only after thresholds.failure (2) consecutive failed runs
      const check = JSON.parse((await get(port, `/health/${name}`)).body) as { status: string; consecutiveFailures: number; outcome: string; message: string };
      assert.equal(check.status, 'DOWN');
      assert.ok(check.consecutiveFailures >= 2, `${name} ${mode}: DOWN after ${check.consecutiveFailures} failure(s)`);
      assert.equal(check.outcome, mode === 'blackhole' ? 'timeout' : 'failure');
      const verbose = (await get(port, '/readyz?verbose')).body;
      assert.match(verbose, name === 'cache' ? /^\[-\]cache failed: .+\n\[\+\]db ok\nreadyz check failed\n$/ : /^\[\+\]cache ok\n\[-\]db failed: .+\nreadyz check failed\n$/);
      proxy.setMode('pass');
      await proxy.ready();
      await until(port, '/readyz', 200, `ready again after ${name} ${mode}`);
    }

    await assertDrains(cli, port, 'SIGTERM');

    // one JSON line per state change, with check, from and to
    const transitions = cli.records().filter((r) => 'from' in r && 'to' in r);
    const history = (name: string) => transitions.filter((t) => t.check === name).map((t) => `${t.from}>${t.to}`);
    assert.deepEqual(history('cache'), ['UNKNOWN>DOWN', 'DOWN>UP', 'UP>DOWN', 'DOWN>UP']);
    assert.deepEqual(history('db'), ['UNKNOWN>UP', 'UP>DOWN', 'DOWN>UP', 'UP>DOWN', 'DOWN>UP']);
    for (const t of transitions) {
      assert.equal(t.msg, `check ${t.check} ${t.from} → ${t.to}`);
      assert.equal(typeof t.reason, 'string');
    }
    // the password never appears anywhere the process wrote
    assert.ok(cli.output().length > 0);
    assert.equal(cli.output().includes(CANARY), false, 'the URL password leaked into the output');
    assert.ok(bodies.some((b) => b.includes('"message"')), 'detailed /health answers were read');
    assert.equal(bodies.filter((b) => b.includes(CANARY)).length, 0, 'the URL password leaked into an HTTP answer');
  });

  it('SIGINT drains the same way', { timeout: 300_000 }, async () => {
    redisProxy.setMode('pass');
    pgProxy.setMode('pass');
    const port = await freePort();
    const file = join(dir, 'sigint.yaml');
    writeFileSync(file, dependencyConfig(port));
    const cli = startCli(file, baseEnv());
    await until(port, '/readyz', 200, 'ready');
    await assertDrains(cli, port, 'SIGINT');
    assert.equal(cli.output().includes(CANARY), false);
  });

  it('the shipped config/sidecar.yaml with no dependency variables: skips them (one line each), is ready on its self check, exits 0 on SIGTERM', { timeout: 300_000 }, async () => {
    const port = await freePort();
    const cli = startCli('config/sidecar.yaml', baseEnv({ PORT: String(port), HOST: '127.0.0.1', DRAIN_DELAY: '200ms' }));
    await until(port, '/readyz', 200, 'ready on the self check');
    assert.deepEqual(await get(port, '/livez'), { status: 200, body: 'ok' });
    assert.deepEqual(await get(port, '/readyz?verbose'), { status: 200, body: '[+]self ok\nreadyz check passed\n' });
    assert.deepEqual(await get(port, '/startupz'), { status: 200, body: 'ok' });
    const skipped = cli.records().filter((r) => typeof r.msg === 'string' && / skipped: /.test(r.msg as string));
    assert.deepEqual(
      skipped.map((r) => r.msg),
      [
        'check app skipped: environment variable APP_URL is not set (url)',
        'check cache skipped: environment variable REDIS_URL is not set (url)',
        'check db skipped: environment variable DATABASE_URL is not set (url)',
      ],
    );
    assert.deepEqual(skipped.map((r) => r.check), ['app', 'cache', 'db']);
    const listening = cli.records().find((r) => typeof r.msg === 'string' && (r.msg as string).startsWith('listening'));
    assert.deepEqual(listening?.checks, ['self']);
    // the self check never saw its own port closed: its first result was UP
    assert.deepEqual(cli.records().filter((r) => r.check === 'self' && 'to' in r).map((r) => `${r.from}>${r.to}`), ['UNKNOWN>UP']);
    assert.equal(cli.stderr(), '');
    cli.proc.kill('SIGTERM');
    const exit = await cli.exited;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });
  });

  it('an invalid config exits 2 with every problem and never listens', { timeout: 300_000 }, async () => {
    const port = await freePort();
    const file = join(dir, 'invalid.yaml');
    writeFileSync(file, `server:\n  port: ${port}\n  host: 127.0.0.1\n  colour: blue\nchecks:\n  - name: Bad Name\n    kind: tcp\n    url: tcp://127.0.0.1:1\n`);
    const cli = startCli(file, baseEnv());
    let everListening = false;
    const watcher = setInterval(() => {
      void refused(port).then((r) => {
        if (!r) everListening = true;
      });
    }, 5);
    const exit = await cli.exited;
    clearInterval(watcher);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 2, signal: null });
    assert.equal(everListening, false);
    assert.ok(await refused(port));
    assert.equal(cli.stdout(), '');
    const problems = cli.stderr().trim().split('\n');
    assert.ok(problems.some((l) => l.startsWith(`${file}:4:3 server.colour: `)), cli.stderr());
    assert.ok(problems.some((l) => l.startsWith(`${file}:6:11 checks[0].name: `)), cli.stderr());
    assert.equal(problems.at(-1), `${file}: 2 problem(s); config not loaded`);
  });
});
