/**
 * Probes are served from memory: while a dependency is black-holed and its
 * check's run hangs in flight, 200 concurrent /readyz requests answer as fast
 * as a bare node:http server answering "ok" under the same load (a ratio
 * against that baseline measured in this test, never a fixed bound), and
 * every answer is the right one (503: the check already went DOWN).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Sidecar } from '../../src/sidecar';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { DATABASE_URL, hostPort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { sidecarFromYaml } from './helpers';

const CONCURRENCY = 200;
const ROUNDS = 3;

interface Burst {
  latencies: number[];
  statuses: number[];
  bodies: string[];
}

/** CONCURRENCY requests at once, each on its own connection; latency = send → whole response. */
function burst(port: number, path: string): Promise<Burst> {
  const one = () =>
    new Promise<{ ms: number; status: number; body: string }>((resolve, reject) => {
      const started = performance.now();
      const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ ms: performance.now() - started, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  return Promise.all(Array.from({ length: CONCURRENCY }, one)).then((all) => ({
    latencies: all.map((a) => a.ms),
    statuses: all.map((a) => a.status),
    bodies: all.map((a) => a.body),
  }));
}

const max = (xs: number[]) => Math.max(...xs);
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const median = (xs: number[]) => percentile(xs, 50);

let pgProxy: FaultProxy;
let bare: TestHttpServer;
let sidecar: Sidecar;
let port: number;

before(async () => {
  pgProxy = await startFaultProxy(hostPort(DATABASE_URL));
  bare = await startHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  ({ sidecar } = sidecarFromYaml(`
server: { port: 0, host: 127.0.0.1, drainDelay: 0s }
defaults:
  retry: { attempts: 1, backoff: { initial: 10ms, max: 10ms }, jitter: false }
  breaker: { failures: 1000, halfOpenAfter: 1m }
  thresholds: { failure: 1, success: 1 }
checks:
  - name: db
    kind: postgres
    url: postgres://postgres@127.0.0.1:${pgProxy.port}/test
    interval: 4s
    timeout: 4s
    groups: [ready]
`));
  port = await sidecar.start();
});

after(async () => {
  await sidecar?.shutdown({ drain: false });
  await Promise.all([pgProxy?.close(), bare?.close()]);
});

describe('/readyz under load while a dependency hangs', () => {
  it(`${CONCURRENCY} concurrent /readyz answer 503 about as fast as a bare server answers "ok"`, async () => {
    const loop = sidecar.loop('db')!;
    await waitFor(() => sidecar.store.get('db')?.status === 'UP', { timeoutMs: 15_000, what: 'db UP' });
    // warm up both servers (JIT, first-connection costs) before measuring
    await burst(bare.port, '/');
    await burst(port, '/readyz');

    pgProxy.setMode('blackhole');
    await waitFor(() => sidecar.store.get('db')?.status === 'DOWN', { timeoutMs: 20_000, what: 'db DOWN after a timed-out run' });
    // the next run is hanging on the black hole
    await waitFor(() => loop.running, { timeoutMs: 10_000, what: 'the next db run in flight' });
    const inflightSince = Date.now();

    const bareP100: number[] = [];
    const sidecarP100: number[] = [];
    const sidecarP50: number[] = [];
    const bareP50: number[] = [];
    const runningDuring: boolean[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const b = await burst(bare.port, '/');
      assert.ok(b.statuses.every((s) => s === 200) && b.bodies.every((x) => x === 'ok'));
      bareP100.push(max(b.latencies));
      bareP50.push(median(b.latencies));
      const s = await burst(port, '/readyz');
      runningDuring.push(loop.running);
      // every answer is the right one: the check is DOWN, readiness fails
      assert.deepEqual(new Set(s.statuses), new Set([503]), `round ${round}: statuses`);
      assert.deepEqual(new Set(s.bodies), new Set(['[-]db failed: reason withheld\nreadyz check failed\n']), `round ${round}: bodies`);
      sidecarP100.push(max(s.latencies));
      sidecarP50.push(median(s.latencies));
    }
    const measuredFor = Date.now() - inflightSince;
    pgProxy.setMode('pass');

    const bareMax = median(bareP100);
    const sidecarMax = median(sidecarP100);
    const bound = Math.max(3 * bareMax, bareMax + 50);
    const figures = {
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      bareP100: bareP100.map((x) => +x.toFixed(1)),
      sidecarP100: sidecarP100.map((x) => +x.toFixed(1)),
      bareP50: bareP50.map((x) => +x.toFixed(1)),
      sidecarP50: sidecarP50.map((x) => +x.toFixed(1)),
      medianBareP100: +bareMax.toFixed(1),
      medianSidecarP100: +sidecarMax.toFixed(1),
      bound: +bound.toFixed(1),
      runInFlightDuringEveryBurst: runningDuring.every(Boolean),
      measuredForMs: measuredFor,
    };
    console.log(`readyz-load figures: ${JSON.stringify(figures)}`);
    // the probe run hung in flight for the whole measurement (timeout 4s) unless the
    // machine was so slow that a round outlasted it; at least the first burst was inside it
    assert.equal(runningDuring[0], true, 'the db run was still in flight after the first burst');
    assert.ok(sidecarMax <= bound, `sidecar p100 ${sidecarMax.toFixed(1)} ms > max(3 × bare ${bareMax.toFixed(1)}, bare + 50) = ${bound.toFixed(1)} ms`);
  });
});
