/**
 * CheckLoop against real HTTP servers: at most one run in flight per check,
 * runNow single flight, first runs at once and later runs spread by a phase, fixed-rate cadence.
 *
 * The time rules (jitter window, fixed rate, no catch-up burst, nothing after
 * stop()) run on node:test's fake clock (setTimeout and Date): the test moves
 * time and decides, by answering the held request, when a run ends. The probe
 * still makes its real HTTP request; nothing is asserted about how long real
 * things take.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, describe, it, type TestContext } from 'node:test';
import { parseConfig } from '../../src/probes/registry';
import type { CheckConfig } from '../../src/config/types';
import { CheckRunner, type RunTrigger } from '../../src/health/runner';
import { CheckLoop, EVENT_BURST, EVENT_REFILL_MS } from '../../src/health/scheduler';
import { HealthStore, type RunResult } from '../../src/health/state';
import { createProbe } from '../../src/probes/registry';
import { Redactor } from '../../src/redact';
import { sleep, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';

/** Let real I/O callbacks and the promise chains after them run (setImmediate is not faked). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The fake clock for one test (restored when the test ends). */
function fakeClock(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2030-01-01T00:00:00Z') });
  const origin = Date.now();
  return {
    origin,
    tick: (ms: number) => t.mock.timers.tick(ms),
    /** move fake time 1 ms at a time, letting the promise chains of what fired run in between */
    async advance(ms: number): Promise<void> {
      for (let i = 0; i < ms; i++) {
        t.mock.timers.tick(1);
        await settle();
      }
    },
  };
}

/**
 * A real HTTP server that holds every request until the test answers it (no timers: under the
 * fake clock a run lasts exactly as long as the test lets fake time pass before answering).
 */
async function heldServer() {
  const held: ServerResponse[] = [];
  let waiter: (() => void) | undefined;
  const server = await startHttpServer((_req, res) => {
    held.push(res);
    waiter?.();
  });
  return {
    server,
    held,
    /** resolves once `n` requests are held */
    async arrived(n = 1): Promise<void> {
      while (held.length < n) await new Promise<void>((resolve) => (waiter = resolve));
    },
    /** answer the newest held request 200 (older ones were given up by the probe) */
    answer(): void {
      held.at(-1)!.end('ok');
      held.length = 0;
    },
  };
}

/** resolves when the store records the next run of any check (then lets the loop re-arm its timer) */
function nextRecord(store: HealthStore): Promise<void> {
  return new Promise<void>((resolve) => {
    const off = store.onRecord(() => {
      off();
      resolve();
    });
  }).then(settle);
}

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
    const attempts: number[] = [];
    subject.store.onRecord((_name, run) => attempts.push(run.attempts));
    subject.loop.start();
    // manual runs during scheduled ones join them instead of starting another,
    // until four runs have started (however long that takes on this machine)
    const manual: Promise<RunResult>[] = [];
    while (subject.starts.length < 4) {
      manual.push(subject.loop.runNow('manual'));
      await sleep(37);
    }
    await Promise.all(manual);
    await subject.close();
    const requests = slow.server.requests();
    assert.ok(manual.length > subject.starts.length, `manual calls joined runs in flight: ${manual.length} calls, ${subject.starts.length} runs`);
    assert.equal(slow.maxInFlight(), 1, 'the server never saw two requests of the check at once');
    assert.equal(subject.maxRunning(), 1, 'the loop never had two runs in flight');
    // every run made exactly 3 attempts, one after the other (an attempt that timed out before its request
    // arrived is not seen by the server, so the server's count is a ceiling)
    const runs = subject.starts.length;
    // (the last run may be the one stop() cut short: not recorded)
    assert.ok(attempts.length >= runs - 1 && attempts.every((n) => n === 3), `attempts per recorded run: ${attempts.join(',')}; ${runs} runs`);
    assert.ok(requests <= 3 * runs, `requests ${requests} vs runs ${runs}`);
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

  it('spreads the later runs of loops with equal intervals: the second run is one interval plus a phase in [0, min(interval, 1s)) after the first (fake clock)', async (t) => {
    const fast = track(await startHttpServer((_req, res) => res.end('ok'))); // answers at once: no server-side timer
    const clock = fakeClock(t);
    for (const [interval, intervalMs, windowMs] of [['300ms', 300, 300], ['1500ms', 1500, 1000]] as const) {
      const draws = [0, 0.2, 0.45, 0.7, 0.95];
      const subjects = draws.map((r, i) =>
        track(loopFor(httpCheck(`sp${intervalMs}-${i}`, `${fast.url}/sp${i}`, { interval, timeout: '300ms' }), new HealthStore(), undefined, () => r)),
      );
      const firsts = subjects.map((s) => nextRecord(s.store));
      for (const s of subjects) s.loop.start();
      clock.tick(0);
      await Promise.all(firsts);
      // the second runs: none before interval + phase, each exactly then
      const last = Math.max(...draws.map((r) => intervalMs + Math.floor(r * windowMs)));
      for (let ms = 0; ms < last; ms++) {
        const due = subjects.filter((s, i) => s.starts.length === 1 && intervalMs + Math.floor(draws[i]! * windowMs) === ms + 1);
        const records = due.map((s) => nextRecord(s.store));
        clock.tick(1);
        await Promise.all(records);
        for (const [i, s] of subjects.entries()) {
          const expected = intervalMs + Math.floor(draws[i]! * windowMs);
          assert.equal(s.starts.length, ms + 1 >= expected ? 2 : 1, `interval ${interval}, draw ${draws[i]}: ${s.starts.length} runs ${ms + 1} ms after the first, the second due at ${expected}`);
        }
      }
      for (const s of subjects) await s.close();
      subjects.forEach((s, i) => {
        const phase = Math.floor(draws[i]! * windowMs);
        assert.equal(s.starts[1]!.due - s.starts[0]!.due, intervalMs + phase);
        assert.equal(s.starts[1]!.at - s.starts[0]!.at, intervalMs + phase, 'and ran then');
      });
    }
  });

  it('keeps a fixed rate: each run starts an interval after the previous one was due, even when each run takes 60% of it (fake clock)', async (t) => {
    const held = await heldServer();
    track(held.server);
    const intervalMs = 100;
    const runMs = 60;
    const subject = track(loopFor(httpCheck('rate', `${held.server.url}/rate`, { interval: `${intervalMs}ms`, timeout: `${intervalMs}ms` }), new HealthStore(), 0));
    const clock = fakeClock(t);
    subject.loop.start();
    const N = 10;
    for (let i = 0; i < N; i++) {
      clock.tick(i === 0 ? 0 : intervalMs - runMs); // to the next due time
      await held.arrived();
      clock.tick(runMs); // the run takes runMs
      const recorded = nextRecord(subject.store);
      held.answer();
      await recorded;
    }
    await subject.close();
    // fixed rate: 0, 100, 200, … (fixed delay, an interval after each run's end, would give 0, 160, 320, …)
    assert.deepEqual(subject.starts.map((s) => s.at - clock.origin), Array.from({ length: N }, (_, i) => i * intervalMs));
    assert.ok(subject.starts.every((s) => s.trigger === 'schedule'));
    assert.equal(subject.maxRunning(), 1);
  });

  it('a run longer than the interval (its retries): no second run, no catch-up burst, the next starts when it ends (fake clock)', async (t) => {
    const held = await heldServer();
    track(held.server);
    const intervalMs = 100;
    // three attempts of up to 100 ms with 50 ms backoffs: a run may take 350 ms, three and a half intervals
    const subject = track(loopFor(httpCheck('long', `${held.server.url}/long`, { interval: `${intervalMs}ms`, timeout: `${intervalMs}ms`, attempts: 3, backoff: '50ms' }), new HealthStore(), 0));
    const clock = fakeClock(t);
    subject.loop.start();
    clock.tick(0);
    await held.arrived();
    await clock.advance(150); // attempt 1 times out at 100, the backoff ends at 150
    await held.arrived();
    await clock.advance(150); // attempt 2 times out at 250, attempt 3 starts at 300
    await held.arrived();
    await clock.advance(50);
    const joined = subject.loop.runNow('manual');
    assert.equal(subject.starts.length, 1, 'one run, however many due times passed');
    assert.equal(held.server.requests(), 3, 'the three attempts of that one run');
    let recorded = nextRecord(subject.store);
    held.answer();
    await recorded;
    const result = await joined;
    assert.deepEqual({ ok: result.ok, attempts: result.attempts }, { ok: true, attempts: 3 }, 'the manual call joined the run in flight');
    // the next run starts at once (it is overdue), and only one: then the cadence resumes from there
    clock.tick(0);
    await held.arrived();
    assert.equal(subject.starts.length, 2);
    recorded = nextRecord(subject.store);
    held.answer();
    await recorded;
    clock.tick(intervalMs - 1);
    await settle();
    assert.equal(subject.starts.length, 2, 'not before an interval has passed');
    clock.tick(1);
    await held.arrived();
    recorded = nextRecord(subject.store);
    held.answer();
    await recorded;
    await subject.close();
    assert.deepEqual(subject.starts.map((s) => s.at - clock.origin), [0, 350, 450]);
    assert.equal(subject.maxRunning(), 1);
  });

  it('stop() waits for the run in flight and no run starts afterwards (fake clock)', async (t) => {
    const held = await heldServer();
    track(held.server);
    const intervalMs = 200;
    const subject = track(loopFor(httpCheck('stop', `${held.server.url}/stop`, { interval: `${intervalMs}ms`, timeout: `${intervalMs}ms` }), new HealthStore(), 0));
    const clock = fakeClock(t);
    subject.loop.start();
    clock.tick(0);
    await held.arrived();
    assert.equal(subject.loop.running, true);
    let stopped = false;
    const stopping = subject.loop.stop().then(() => (stopped = true));
    await settle();
    assert.equal(stopped, false, 'stop() waits for the run in flight');
    held.answer();
    await stopping;
    assert.equal(subject.loop.running, false);
    const runs = subject.starts.length;
    clock.tick(intervalMs * 10);
    await settle();
    assert.equal(subject.starts.length, runs, 'no run after stop(), ten intervals later');
    assert.equal(held.server.requests(), runs);
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

  it(`nudges: ${EVENT_BURST} event episodes at once, then one per ${EVENT_REFILL_MS} ms; the rest coalesced into one deferred episode (fake clock)`, async (t) => {
    const server = track(await startHttpServer((_req, res) => res.end('ok'))); // answers at once: no server-side timer
    const subject = track(loopFor(httpCheck('nudged', `${server.url}/n`, { interval: '1h', timeout: '1s' }), new HealthStore(), 0));
    const clock = fakeClock(t);
    subject.loop.start();
    let recorded = nextRecord(subject.store);
    clock.tick(0);
    await recorded; // the first scheduled run
    // the burst: each nudge is an episode of its own (one event run, which passes)
    for (let i = 0; i < EVENT_BURST; i++) {
      recorded = nextRecord(subject.store);
      subject.loop.nudge();
      await recorded;
    }
    assert.equal(subject.loop.eventEpisodes, EVENT_BURST);
    // out of tokens: three more nudges are suppressed, coalesced into one deferred episode
    for (let i = 0; i < 3; i++) subject.loop.nudge();
    await settle();
    assert.equal(subject.loop.eventsSuppressed, 3);
    assert.equal(subject.loop.eventEpisodes, EVENT_BURST, 'no episode without a token');
    clock.tick(EVENT_REFILL_MS - 1);
    await settle();
    assert.equal(subject.loop.eventEpisodes, EVENT_BURST, 'not before a token is back');
    recorded = nextRecord(subject.store);
    clock.tick(1);
    await recorded;
    assert.equal(subject.loop.eventEpisodes, EVENT_BURST + 1, 'one deferred episode for the three suppressed nudges');
    clock.tick(EVENT_REFILL_MS * 5);
    await settle();
    await subject.close();
    assert.deepEqual(subject.starts.map((s) => s.trigger), ['schedule', ...Array(EVENT_BURST + 1).fill('event')]);
    assert.deepEqual(subject.starts.map((s) => s.at - clock.origin), [0, ...Array(EVENT_BURST).fill(0), EVENT_REFILL_MS]);
  });

  it('stop() then start() while a run is in flight leaves one schedule: nothing runs after the next stop() (fake clock)', async (t) => {
    const held = await heldServer();
    track(held.server);
    const intervalMs = 100;
    const subject = track(loopFor(httpCheck('restart', `${held.server.url}/r`, { interval: `${intervalMs}ms`, timeout: `${intervalMs}ms` }), new HealthStore(), 0));
    const clock = fakeClock(t);
    subject.loop.start();
    clock.tick(0);
    await held.arrived();
    void subject.loop.stop(); // not awaited: the old tick is still awaiting its run
    subject.loop.start();
    clock.tick(0); // the new life's first tick joins the run in flight
    let recorded = nextRecord(subject.store);
    held.answer();
    await recorded;
    // five intervals: one run per due time (an orphaned second timer chain would add runs)
    for (let i = 0; i < 5; i++) {
      clock.tick(intervalMs);
      await held.arrived();
      recorded = nextRecord(subject.store);
      held.answer();
      await recorded;
    }
    await subject.loop.stop();
    const runs = subject.starts.length;
    assert.deepEqual(subject.starts.map((s) => s.at - clock.origin), [0, 100, 200, 300, 400, 500]);
    clock.tick(intervalMs * 10);
    await settle();
    assert.equal(subject.starts.length, runs, 'a second (orphaned) timer chain kept running after stop()');
    assert.equal(subject.maxRunning(), 1);
  });
});
