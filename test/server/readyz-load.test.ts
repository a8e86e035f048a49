/**
 * Probes are served from memory: while a dependency is black-holed and its
 * check's run hangs in flight, 200 concurrent /readyz requests are all
 * answered before that run ends — the proof is the order of events (the run
 * is still in flight and nothing was recorded when every answer is back), not
 * a time — and every answer is the right one (503: the check already went
 * DOWN). The latency against a bare node:http server answering "ok" under the
 * same load is printed for reference; bench/blackhole.bench.mjs measures it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Sidecar } from '../../src/sidecar';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { DATABASE_URL, hostPort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { sidecarFromYaml } from './helpers';
import { request } from '../helpers/http';

const CONCURRENCY = 200;
const ROUNDS = 3;

interface Burst {
  latencies: number[];
  statuses: number[];
  bodies: string[];
}

/** CONCURRENCY requests at once, each on its own connection; latency = send → whole response. */
async function burst(port: number, path: string): Promise<Burst> {
  const all = await Promise.all(Array.from({ length: CONCURRENCY }, () => request(port, path)));
  return { latencies: all.map((a) => a.ms), statuses: all.map((a) => a.status), bodies: all.map((a) => a.body) };
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
  # a run into the black hole hangs for the whole timeout: far longer than the bursts, however slow the machine
  - name: db
    kind: postgres
    url: postgres://postgres@127.0.0.1:${pgProxy.port}/test
    interval: 60s
    timeout: 60s
    groups: [ready]
`));
  port = await sidecar.start();
});

after(async () => {
  await sidecar?.shutdown({ drain: false });
  await Promise.all([pgProxy?.close(), bare?.close()]);
});

describe('/readyz under load while a dependency hangs', () => {
  it(`${CONCURRENCY} concurrent /readyz, three times, all answer 503 while the check's run hangs in flight`, async () => {
    const loop = sidecar.loop('db')!;
    await waitFor(() => sidecar.store.get('db')?.status === 'UP', { timeoutMs: 30_000, what: 'db UP' });
    // warm up both servers (JIT, first-connection costs) before measuring
    await burst(bare.port, '/');
    await burst(port, '/readyz');

    // refused (the kept connection dropped: an event run) → DOWN; then a run that hangs on the black hole
    pgProxy.setMode('refuse');
    await waitFor(() => sidecar.store.get('db')?.status === 'DOWN', { timeoutMs: 30_000, what: 'db DOWN after a refused run' });
    await waitFor(() => !loop.running, { timeoutMs: 30_000, what: 'the refused run over' });
    pgProxy.setMode('blackhole');
    let recorded = 0;
    const off = sidecar.store.onRecord(() => recorded++);
    const hanging = loop.runNow('manual');
    assert.equal(loop.running, true, 'a db run in flight, hanging on the black hole');
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
      // every answer of the burst is back, and the run is still the same one in flight: nothing waited for it
      runningDuring.push(loop.running && recorded === 0);
      // every answer is the right one: the check is DOWN, readiness fails
      assert.deepEqual(new Set(s.statuses), new Set([503]), `round ${round}: statuses`);
      assert.deepEqual(new Set(s.bodies), new Set(['[-]db failed: reason withheld\nreadyz check failed\n']), `round ${round}: bodies`);
      sidecarP100.push(max(s.latencies));
      sidecarP50.push(median(s.latencies));
    }
    const measuredFor = Date.now() - inflightSince;
    off();
    pgProxy.setMode('pass');
    pgProxy.dropAll();
    void hanging;

    const bareMax = median(bareP100);
    const sidecarMax = median(sidecarP100);
    const figures = {
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      bareP100: bareP100.map((x) => +x.toFixed(1)),
      sidecarP100: sidecarP100.map((x) => +x.toFixed(1)),
      bareP50: bareP50.map((x) => +x.toFixed(1)),
      sidecarP50: sidecarP50.map((x) => +x.toFixed(1)),
      medianBareP100: +bareMax.toFixed(1),
      medianSidecarP100: +sidecarMax.toFixed(1),
      runInFlightDuringEveryBurst: runningDuring.every(Boolean),
      measuredForMs: measuredFor,
    };
    console.log(`readyz-load figures: ${JSON.stringify(figures)}`);
    assert.deepEqual(runningDuring, Array(ROUNDS).fill(true), 'every burst was answered in full while the db run hung in flight, nothing recorded');
  });
});
