/**
 * CheckLoop against real HTTP servers: at most one run in flight per check,
 * runNow single flight, first runs at once and later runs spread by a phase, fixed-rate cadence.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../../src/probes/registry';
import type { CheckConfig } from '../../src/config/types';
import { CheckRunner, type RunTrigger } from '../../src/health/runner';
import { CheckLoop } from '../../src/health/scheduler';
import { HealthStore, type RunResult } from '../../src/health/state';
import { createProbe } from '../../src/probes/registry';
import { Redactor } from '../../src/redact';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A real HTTP server that answers `status` after `delayMs`, counting requests in progress. */
async function slowServer(delayMs: number, status = 200) {
  let inFlight = 0;
  let maxInFlight = 0;
  const arrivals: { path: string; at: number }[] = [];
  const server = await startHttpServer((req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    arrivals.push({ path: req.url ?? '', at: Date.now() });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inFlight--;
    };
    res.once('close', finish);
    const timer = setTimeout(() => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end('ok');
    }, delayMs);
    res.once('close', () => clearTimeout(timer));
  });
  return { server, inFlight: () => inFlight, maxInFlight: () => maxInFlight, arrivals };
}

function httpCheck(name: string, url: string, policy: { interval: string; timeout: string; attempts?: number; backoff?: string }): CheckConfig {
  const text = [
    'checks:',
    `  - name: ${name}`,
    '    kind: http',
    `    url: ${url}`,
    `    interval: ${policy.interval}`,
    `    timeout: ${policy.timeout}`,
    `    retry: { attempts: ${policy.attempts ?? 1}, backoff: { initial: ${policy.backoff ?? '1ms'}, max: ${policy.backoff ?? '1ms'} }, jitter: false }`,
    '    breaker: { failures: 1000, halfOpenAfter: 1m }',
    '',
  ].join('\n');
  return parseConfig(text, 'scheduler-test.yaml', { env: {} }).checks[0]!;
}

/** A CheckLoop around a real runner and probe, with the runner's run() instrumented (start times, overlap). */
function loopFor(check: CheckConfig, store = new HealthStore(), maxJitterMs?: number, random?: () => number) {
  store.upsert(check);
  const redactor = new Redactor();
  const runner = new CheckRunner(check, createProbe(check, { redactor }), redactor);
  // due: when the scheduler meant the run to start
  const starts: { at: number; trigger: RunTrigger; due: number }[] = [];
  let running = 0;
  let maxRunning = 0;
  const original = runner.run.bind(runner);
  runner.run = async (trigger: RunTrigger) => {
    const at = Date.now();
    starts.push({ at, trigger, due: loop.lastDueAt });
    running++;
    maxRunning = Math.max(maxRunning, running);
    try {
      return await original(trigger);
    } finally {
      running--;
    }
  };
  const loop = new CheckLoop(runner, store, maxJitterMs, random);
  return {
    loop,
    runner,
    store,
    starts,
    maxRunning: () => maxRunning,
    async close() {
      await loop.stop();
      await runner.close();
    },
  };
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});
function track<T extends { close(): Promise<void> }>(thing: T): T {
  cleanups.push(() => thing.close());
  return thing;
}

describe('CheckLoop', () => {
  it('never has more than one run in flight per check, even when runs outlast the interval', async () => {
    // Each attempt takes ~60 ms and fails (503), so a run of 3 attempts takes ≥ 180 ms
    // while the interval is 100 ms: a scheduler that started on every tick would overlap.
    const slow = await slowServer(60, 503);
    track(slow.server);
    const check = httpCheck('slow', `${slow.server.url}/slow`, { interval: '100ms', timeout: '100ms', attempts: 3 });
    const subject = track(loopFor(check));
    subject.loop.start();
    // manual runs during scheduled ones join them instead of starting another
    const manual: Promise<RunResult>[] = [];
    const stopManual = Date.now() + 1200;
    while (Date.now() < stopManual) {
      manual.push(subject.loop.runNow('manual'));
      await sleep(37);
    }
    await Promise.all(manual);
    await subject.close();
    const requests = slow.server.requests();
    assert.ok(requests >= 6, `expected several runs, got ${requests} requests`);
    assert.equal(slow.maxInFlight(), 1, 'the server never saw two requests of the check at once');
    assert.equal(subject.maxRunning(), 1, 'the loop never had two runs in flight');
    // every run made exactly 3 attempts in sequence: requests = 3 × runs (+ one run possibly cut by stop)
    const runs = subject.starts.length;
    assert.ok(requests >= 3 * (runs - 1) && requests <= 3 * runs, `requests ${requests} vs runs ${runs}`);
    assert.equal(subject.store.get('slow')!.status, 'DOWN');
  });

  it('runNow is single flight: 50 concurrent callers during a run share one request and one result object', async () => {
    const slow = await slowServer(300);
    track(slow.server);
    const check = httpCheck('single', `${slow.server.url}/single`, { interval: '1h', timeout: '5s' });
    const subject = track(loopFor(check));
    const first = subject.loop.runNow('manual');
    await waitFor(() => slow.server.requests() === 1, { what: 'the first request at the server' });
    assert.equal(subject.loop.running, true);
    const callers = Array.from({ length: 50 }, () => subject.loop.runNow('manual'));
    const results = await Promise.all(callers);
    const firstResult = await first;
    assert.equal(slow.server.requests(), 1, 'exactly one request reached the server');
    assert.equal(subject.starts.length, 1, 'exactly one run');
    for (const result of results) assert.equal(result, firstResult, 'every caller got the very same result object');
    assert.equal(firstResult.ok, true);
    assert.equal(subject.loop.running, false);
    // after the shared run finished, the next call starts a new run
    const next = await subject.loop.runNow('manual');
    assert.notEqual(next, firstResult);
    assert.equal(slow.server.requests(), 2);
    assert.equal(subject.store.get('single')!.lastCheckedAt, next.finishedAt);
  });

  it('runs every check once at start, at once, whatever its interval and phase', async () => {
    const fast = await slowServer(0);
    track(fast.server);
    // phase drawn at its maximum and an interval of 1 h: a scheduler that delayed the first run by
    // the phase would not run these for most of an hour
    const subjects = Array.from({ length: 8 }, (_, i) =>
      track(loopFor(httpCheck(`now${i}`, `${fast.server.url}/now${i}`, { interval: '1h', timeout: '400ms' }), new HealthStore(), 3_600_000, () => 0.999)),
    );
    const startedAt = Date.now();
    for (const s of subjects) s.loop.start();
    const allStarted = Date.now();
    await waitFor(() => subjects.every((s) => s.starts.length >= 1), { what: 'every loop to run once' });
    for (const s of subjects) await s.close();
    for (const s of subjects) {
      assert.equal(s.starts[0]!.trigger, 'schedule');
      // due at the moment start() was called: no phase, no jitter before the first run
      assert.ok(s.starts[0]!.due >= startedAt && s.starts[0]!.due <= allStarted, `first run due ${s.starts[0]!.due - startedAt} ms after start()`);
    }
  });

  it('spreads the later runs of loops with equal intervals: the second run is one interval plus a phase in [0, min(interval, 1s)) after the first', async () => {
    const fast = await slowServer(0);
    track(fast.server);
    for (const [interval, intervalMs, windowMs] of [['300ms', 300, 300], ['1500ms', 1500, 1000]] as const) {
      const draws = [0, 0.2, 0.45, 0.7, 0.95];
      const subjects = draws.map((r, i) =>
        track(loopFor(httpCheck(`sp${intervalMs}-${i}`, `${fast.server.url}/sp${i}`, { interval, timeout: '300ms' }), new HealthStore(), undefined, () => r)),
      );
      for (const s of subjects) s.loop.start();
      await waitFor(() => subjects.every((s) => s.starts.length >= 2), { timeoutMs: 30_000, what: 'every loop to run twice' });
      for (const s of subjects) await s.close();
      subjects.forEach((s, i) => {
        const phase = Math.floor(draws[i]! * windowMs);
        const gap = s.starts[1]!.due - s.starts[0]!.due;
        assert.equal(gap, intervalMs + phase, `interval ${interval}, draw ${draws[i]}: second run due ${gap} ms after the first, expected ${intervalMs + phase}`);
      });
    }
  });

  it('keeps a fixed rate: N runs take about N × interval even when each run takes 60% of it', async () => {
    const server = await slowServer(60);
    track(server.server);
    const intervalMs = 100;
    const check = httpCheck('rate', `${server.server.url}/rate`, { interval: `${intervalMs}ms`, timeout: '100ms' });
    const subject = track(loopFor(check, new HealthStore(), 0));
    const N = 20;
    subject.loop.start();
    await waitFor(() => subject.starts.length >= N + 1, { timeoutMs: N * intervalMs * 10, what: `${N + 1} runs` });
    await subject.close();
    const elapsed = subject.starts[N]!.at - subject.starts[0]!.at;
    const ratio = elapsed / (N * intervalMs);
    // fixed delay (interval after each run's end) would give ≥ 1.6; fixed rate gives ~1.0
    assert.ok(ratio >= 0.9 && ratio <= 1.35, `N=${N} runs took ${elapsed} ms (ratio ${ratio.toFixed(2)} of N×interval)`);
    assert.ok(subject.starts.every((s) => s.trigger === 'schedule'));
    assert.equal(subject.maxRunning(), 1);
  });

  it('stop() waits for the run in flight and no run starts afterwards', async () => {
    const slow = await slowServer(150);
    track(slow.server);
    const subject = track(loopFor(httpCheck('stop', `${slow.server.url}/stop`, { interval: '200ms', timeout: '200ms' }), new HealthStore(), 0));
    subject.loop.start();
    await waitFor(() => subject.loop.running, { what: 'a run in flight' });
    await subject.loop.stop();
    assert.equal(subject.loop.running, false);
    const runs = subject.starts.length;
    await sleep(300);
    assert.equal(subject.starts.length, runs, 'no run after stop()');
  });

  it('a run cut short by stop() (shutdown) is not recorded: no false DOWN, no transition', async () => {
    let hang = false;
    const server = track(
      await startHttpServer((_req, res) => {
        if (hang) return; // never answers; the socket is reset by the probe's abort
        res.writeHead(200);
        res.end('ok');
      }),
    );
    const check = httpCheck('cut', `${server.url}/cut`, { interval: '1h', timeout: '30s' });
    const subject = track(loopFor({ ...check, thresholds: { failure: 1, success: 1 } }));
    const transitions: string[] = [];
    subject.store.onTransition((t) => transitions.push(`${t.from}>${t.to}`));
    assert.equal((await subject.loop.runNow()).ok, true);
    hang = true;
    const cut = subject.loop.runNow();
    await waitFor(() => server.requests() === 2, { what: 'the hanging request' });
    const stopped = subject.loop.stop();
    await subject.runner.close(); // what Sidecar.stopLoop does: abort the run in flight
    await stopped;
    const result = await cut;
    assert.equal(result.ok, false, 'the cut run failed');
    assert.equal(subject.store.get('cut')!.status, 'UP');
    assert.equal(subject.store.get('cut')!.consecutiveFailures, 0);
    assert.deepEqual(transitions, ['UNKNOWN>UP']);
  });

  it('stop() then start() while a run is in flight leaves one schedule: nothing runs after the next stop()', async () => {
    const server = await slowServer(60);
    track(server.server);
    const subject = track(loopFor(httpCheck('restart', `${server.server.url}/r`, { interval: '100ms', timeout: '100ms' }), new HealthStore(), 0));
    subject.loop.start();
    await waitFor(() => subject.loop.running, { what: 'a run in flight' });
    void subject.loop.stop(); // not awaited: the old tick is still awaiting its run
    subject.loop.start();
    await sleep(500);
    await subject.loop.stop();
    const runs = subject.starts.length;
    await sleep(400);
    assert.equal(subject.starts.length, runs, 'a second (orphaned) timer chain kept running after stop()');
    assert.equal(subject.maxRunning(), 1);
  });
});
