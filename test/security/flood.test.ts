/**
 * The kubelet paths under a flood of the other endpoints (issue 14.2), with
 * real processes: the compiled sidecar (13 checks, an API key, the kubelet
 * paths also on `server.probeListener`, answered from its own thread) pinned
 * to CPU 0, a flood of N keyed keep-alive clients from N loopback addresses
 * (bench/lib/flood-client.mjs, its own process, pinned to CPU 1) over
 * /metrics, /health, / and /admin/diagnostics of the main port, while this
 * process asks /livez and /readyz every 10 ms on both ports at once.
 *
 * Proven: every kubelet answer is 200 on both ports whatever the flood; no
 * flood request hangs; everything the sidecar does not answer is 503
 * `overloaded` with Retry-After, and the sidecar counts exactly those; the
 * flood of 200 is shed. And the kubelet listener is independent of the
 * flood: its p99 under each flood stays within a small multiple (10x) of its
 * own idle p99 measured just before it — or, if the machine got busier
 * meanwhile, of the p99 of a bare node:http server on the same core asked in
 * the same rounds — and under the flood of 200 it is below the main port's
 * p99 measured in the same rounds. Both comparisons are within
 * this test, under whatever else the machine runs (they hold with two busy
 * loops beside the suite: the thread waits for a core, not for the flood).
 * The main port's latency with and without shedding is compared in
 * bench/flood.bench.mjs, with the cores to itself (under two busy loops that
 * comparison came out either way, so it is not asserted here).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT } from '../helpers/paths';
import { startHttpServer, type TestHttpServer } from '../helpers/servers';
import { parsePrometheus, startCli, type CliProcess } from '../telemetry/support';

const KEY = 'flood-test-key-0123456789abcdefghijkl';
const PATHS = ['/metrics', '/health', '/', '/admin/diagnostics'];
const FLOOD_MS = 3000;
const pinned = cpus().length > 1;

interface FloodResult {
  requests: number;
  statuses: Record<string, number>;
  shed: number;
  retryAfter: number;
  noAnswer: number;
  maxMs: number;
}

let app: TestHttpServer;
const sidecars: CliProcess[] = [];
/** a bare node:http server in its own process on the sidecar's core: what any thread there gets at that moment */
let bare: { child: ChildProcess; port: number } | undefined;
before(async () => {
  app = await startHttpServer((_req, res) => res.end('ok'));
  const code = "const s = require('node:http').createServer((q, r) => r.end('ok')).listen(0, '127.0.0.1', () => console.log(s.address().port));";
  const [command, args] = pinned ? ['taskset', ['-c', '0', process.execPath, '-e', code]] : [process.execPath, ['-e', code]];
  const child = spawn(command, args as string[], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString('utf8').trim())));
    child.once('exit', (exitCode) => reject(new Error(`bare server exited with ${exitCode}`)));
  });
  bare = { child, port };
});
after(async () => {
  for (const s of sidecars) s.kill();
  bare?.child.kill();
  await app?.close();
});

function config(probeListener?: string): string {
  const appPort = new URL(app.url).port;
  const tcp = Array.from({ length: 11 }, (_, i) => `  - { name: tcp${i}, kind: tcp, url: "tcp://127.0.0.1:${appPort}" }`).join('\n');
  return `
server:
  port: 0
  host: 127.0.0.1
  drainDelay: 0s
  auth: { keys: [{ name: flood, key: "${KEY}", rateLimit: "1000000/1m" }] }
${probeListener ? `  probeListener: ${probeListener}\n` : ''}log: { level: info }
defaults: { interval: 2s, timeout: 1s }
checks:
  - { name: app, kind: http, url: "${app.url}/", groups: [live, ready] }
  - { name: cache, kind: redis, url: "${process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'}" }
${tcp}
`;
}

function ask(port: number, path: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
    });
    // a hang guard, not a speed assertion: a probe with no answer is status 0
    req.setTimeout(30_000, () => req.destroy());
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
  });
}

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

function flood(port: number, clients: number): Promise<FloodResult> {
  const argv = [join(ROOT, 'bench/lib/flood-client.mjs'), JSON.stringify({ port, clients, ms: FLOOD_MS, key: KEY, paths: PATHS })];
  const [command, args] = pinned ? ['taskset', ['-c', '1', process.execPath, ...argv]] : [process.execPath, argv];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args as string[], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as FloodResult) : reject(new Error(`flood client exited with ${code}`))));
  });
}

interface Sampled {
  /** the kubelet listener (its own thread) */
  dedicated: { livez: number[]; readyz: number[] };
  /** the main port, asked at the same moments */
  shared: { livez: number[]; readyz: number[] };
  /** the bare server on the same core, asked at the same moments */
  bare: number[];
  statuses: number[];
}

/** /livez and /readyz on both ports at once, every 10 ms, until `done` */
async function sample(sidecar: Ports, done: Promise<unknown>): Promise<Sampled> {
  let over = false;
  void done.finally(() => (over = true));
  const out: Sampled = { dedicated: { livez: [], readyz: [] }, shared: { livez: [], readyz: [] }, bare: [], statuses: [] };
  while (!over) {
    const [dl, dr, sl, sr, b] = await Promise.all([ask(sidecar.probePort, '/livez'), ask(sidecar.probePort, '/readyz'), ask(sidecar.port, '/livez'), ask(sidecar.port, '/readyz'), ask(bare!.port, '/')]);
    out.bare.push(b.ms);
    out.dedicated.livez.push(dl.ms);
    out.dedicated.readyz.push(dr.ms);
    out.shared.livez.push(sl.ms);
    out.shared.readyz.push(sr.ms);
    out.statuses.push(dl.status, dr.status, sl.status, sr.status);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return out;
}

interface Ports {
  port: number;
  probePort: number;
}

async function start(): Promise<Ports> {
  const sidecar = await startCli(config('{ port: 0 }'), {}, pinned ? { cpu: 0 } : {});
  sidecars.push(sidecar);
  const announced = sidecar.records().find((r) => typeof r.probePort === 'number');
  assert.ok(announced, 'the kubelet listener is announced with its port');
  const ports = { port: sidecar.port, probePort: announced.probePort as number };
  // every check UP before the flood, on both ports: /readyz 200 is then the only right answer
  // (bounded: a sidecar that never gets there fails with what it said, instead of timing the test out)
  const deadline = performance.now() + 120_000;
  for (;;) {
    const [main, kubelet] = [await ask(ports.port, '/readyz?verbose'), await ask(ports.probePort, '/readyz')];
    if (main.status === 200 && kubelet.status === 200) break;
    if (performance.now() > deadline) {
      throw new Error(`not ready on both ports after 120 s: main ${main.status}, kubelet listener ${kubelet.status}\n${sidecar.lines.slice(-20).join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return ports;
}

/** how many times its idle p99 the kubelet listener's p99 may be under a flood: "a small multiple" */
const IDLE_MULTIPLE = 10;

test('a flood of the other endpoints: kubelet paths always 200, the excess shed with 503 + Retry-After and counted exactly, the kubelet listener as fast as idle', { timeout: 300_000 }, async (t) => {
  const sidecar = await start();
  const rows: string[] = [];
  let shedTotal = 0;
  for (const clients of [3, 50, 200]) {
    // the idle baseline right before each flood, so what else the machine runs is the same in both
    const idle = await sample(sidecar, new Promise((resolve) => setTimeout(resolve, 1500)));
    const idleP99 = { livez: p99(idle.dedicated.livez), readyz: p99(idle.dedicated.readyz) };
    rows.push(`idle: kubelet listener livez p99 ${idleP99.livez.toFixed(1)} ms, readyz ${idleP99.readyz.toFixed(1)} ms; main port livez ${p99(idle.shared.livez).toFixed(1)} ms (${idle.dedicated.livez.length} samples)`);
    const running = flood(sidecar.port, clients);
    const sampled = await sample(sidecar, running);
    const result = await running;
    shedTotal += result.shed;
    const d = { livez: p99(sampled.dedicated.livez), readyz: p99(sampled.dedicated.readyz) };
    // what the machine gives any thread on that core meanwhile (the busy loops beside the suite, other tests): a
    // bare server's p99 in the same rounds; the idle baseline is the larger of the two
    const machine = p99(sampled.bare);
    const sh = { livez: p99(sampled.shared.livez), readyz: p99(sampled.shared.readyz) };
    rows.push(`N=${clients}: kubelet listener livez p99 ${d.livez.toFixed(1)} ms, readyz ${d.readyz.toFixed(1)} ms; main port livez ${sh.livez.toFixed(1)} ms, readyz ${sh.readyz.toFixed(1)} ms; bare server on that core ${machine.toFixed(1)} ms over ${sampled.dedicated.livez.length} samples; ${result.requests} flood requests ${JSON.stringify(result.statuses)}, ${result.shed} shed`);
    assert.deepEqual([...new Set(sampled.statuses)], [200], `N=${clients}: every /livez and /readyz answer is 200, on both ports`);
    assert.equal(result.noAnswer, 0, `N=${clients}: no flood request went unanswered`);
    assert.deepEqual(Object.keys(result.statuses).filter((s) => s !== '200' && s !== '503'), [], `N=${clients}: the flood gets 200 or 503 (${JSON.stringify(result.statuses)})`);
    const unavailable = result.statuses['503'] ?? 0;
    assert.equal(result.shed, unavailable, `N=${clients}: every 503 says overloaded`);
    assert.equal(result.retryAfter, unavailable, `N=${clients}: every 503 carries Retry-After`);
    assert.ok((result.statuses['200'] ?? 0) > 0, `N=${clients}: the flood is served too, not only shed`);
    if (clients === 200) assert.ok(result.shed > 0, 'the flood of 200 is shed');
    // the kubelet listener does not wait for the flood: a small multiple of its own idle p99 (same test, same machine)
    for (const path of ['livez', 'readyz'] as const) {
      const baseline = Math.max(idleP99[path], machine);
      assert.ok(d[path] <= IDLE_MULTIPLE * baseline, `N=${clients}: /${path} p99 on the kubelet listener ${d[path].toFixed(1)} ms is within ${IDLE_MULTIPLE}x its idle p99 ${idleP99[path].toFixed(1)} ms (or the bare server's ${machine.toFixed(1)} ms meanwhile)\n${rows.join('\n')}`);
    }
    if (clients === 200) assert.ok(d.livez < sh.livez, `N=200: the kubelet listener (${d.livez.toFixed(1)} ms) answers faster than the flooded main port (${sh.livez.toFixed(1)} ms), asked at the same moments\n${rows.join('\n')}`);
  }
  // what the sidecar counted is exactly what the clients were told
  const metrics = parsePrometheus(await (await fetch(`http://127.0.0.1:${sidecar.port}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text());
  const counted = metrics.get('healthcheck_server_shed_total')?.samples.reduce((sum, s) => sum + s.value, 0) ?? 0;
  assert.equal(counted, shedTotal, 'healthcheck_server_shed_total equals the 503s the clients saw');
  assert.deepEqual(new Set(metrics.get('healthcheck_server_shed_total')!.samples.map((s) => s.labels.http_route)), new Set(PATHS), 'counted under the route each was for; never a kubelet path');

  t.diagnostic(rows.join('\n'));
});
