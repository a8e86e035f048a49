/**
 * The kubelet paths under a flood of the other endpoints (issue 14.2), with
 * real processes: the compiled sidecar (13 checks, an API key) pinned to CPU
 * 0, a flood of N keyed keep-alive clients from N loopback addresses
 * (bench/lib/flood-client.mjs, its own process, pinned to CPU 1) over
 * /metrics, /health, / and /admin/diagnostics, while this process asks
 * /livez and /readyz every 10 ms.
 *
 * Proven: every kubelet answer is 200 whatever the flood; no flood request
 * hangs; everything the sidecar does not answer is 503 `overloaded` with
 * Retry-After, and the sidecar counts exactly those; the flood of 200 is shed.
 * How fast /livez answers meanwhile is speed, not behaviour: the latencies are
 * reported here (t.diagnostic), and bench/flood.bench.mjs compares them with
 * the same flood with shedding off (bench/RESULTS.md). Asserted here, that
 * comparison failed under two busy loops beside the suite: with every core
 * taken, the shed answers let the flood send 7x more, and p99 over ~20
 * samples is noise.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
before(async () => {
  app = await startHttpServer((_req, res) => res.end('ok'));
});
after(async () => {
  for (const s of sidecars) s.kill();
  await app?.close();
});

function config(overload?: string): string {
  const appPort = new URL(app.url).port;
  const tcp = Array.from({ length: 11 }, (_, i) => `  - { name: tcp${i}, kind: tcp, url: "tcp://127.0.0.1:${appPort}" }`).join('\n');
  return `
server:
  port: 0
  host: 127.0.0.1
  drainDelay: 0s
  auth: { keys: [{ name: flood, key: "${KEY}", rateLimit: "1000000/1m" }] }
${overload ? `  overload: ${overload}\n` : ''}log: { level: info }
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

/** /livez and /readyz every 10 ms until the flood is over */
async function underFlood(port: number, clients: number): Promise<{ livez: number[]; readyz: number[]; statuses: number[]; result: FloodResult }> {
  let over = false;
  const running = flood(port, clients).finally(() => (over = true));
  const livez: number[] = [];
  const readyz: number[] = [];
  const statuses: number[] = [];
  while (!over) {
    const [l, r] = await Promise.all([ask(port, '/livez'), ask(port, '/readyz')]);
    livez.push(l.ms);
    readyz.push(r.ms);
    statuses.push(l.status, r.status);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { livez, readyz, statuses, result: await running };
}

async function start(overload?: string): Promise<CliProcess> {
  const sidecar = await startCli(config(overload), {}, pinned ? { cpu: 0 } : {});
  sidecars.push(sidecar);
  // every check UP before the flood: /readyz 200 is then the only right answer
  for (;;) {
    if ((await ask(sidecar.port, '/readyz')).status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return sidecar;
}

test('a flood of the other endpoints: kubelet paths always 200, the excess shed with 503 + Retry-After and counted exactly', { timeout: 300_000 }, async (t) => {
  const sidecar = await start();
  const rows: string[] = [];
  for (const clients of [3, 50, 200]) {
    const { livez, readyz, statuses, result } = await underFlood(sidecar.port, clients);
    rows.push(`N=${clients}: livez p99 ${p99(livez).toFixed(1)} ms, readyz p99 ${p99(readyz).toFixed(1)} ms over ${livez.length} samples; ${result.requests} flood requests ${JSON.stringify(result.statuses)}, ${result.shed} shed`);
    assert.deepEqual([...new Set(statuses)], [200], `N=${clients}: every /livez and /readyz answer is 200`);
    assert.equal(result.noAnswer, 0, `N=${clients}: no flood request went unanswered`);
    assert.deepEqual(Object.keys(result.statuses).filter((s) => s !== '200' && s !== '503'), [], `N=${clients}: the flood gets 200 or 503 (${JSON.stringify(result.statuses)})`);
    const unavailable = result.statuses['503'] ?? 0;
    assert.equal(result.shed, unavailable, `N=${clients}: every 503 says overloaded`);
    assert.equal(result.retryAfter, unavailable, `N=${clients}: every 503 carries Retry-After`);
    assert.ok((result.statuses['200'] ?? 0) > 0, `N=${clients}: the flood is served too, not only shed`);
    if (clients === 200) assert.ok(result.shed > 0, 'the flood of 200 is shed');
  }
  // what the sidecar counted is exactly what the clients were told
  const clientShed = rows.reduce((sum, row) => sum + Number(/(\d+) shed$/.exec(row)![1]), 0);
  const metrics = parsePrometheus(await (await fetch(`http://127.0.0.1:${sidecar.port}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text());
  const counted = metrics.get('healthcheck_server_shed_total')?.samples.reduce((sum, s) => sum + s.value, 0) ?? 0;
  assert.equal(counted, clientShed, 'healthcheck_server_shed_total equals the 503s the clients saw');
  assert.deepEqual(new Set(metrics.get('healthcheck_server_shed_total')!.samples.map((s) => s.labels.http_route)), new Set(PATHS), 'counted under the route each was for; never a kubelet path');

  t.diagnostic(rows.join('\n'));
});
