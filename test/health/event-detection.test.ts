/**
 * Event-driven failure detection, through a real Sidecar (the real loader,
 * loops, store and /readyz) against real Redis, PostgreSQL and an HTTP app
 * behind the fault proxy, with an interval far longer than the test: cutting
 * the dependency (the proxy stops listening and drops its established
 * connections) must turn /readyz 503 through event-triggered runs — exactly
 * thresholds.failure of them, none from the schedule, which would need
 * thresholds.failure × interval — and the recovery must be seen the same way.
 * No wall-clock figure is asserted: the proof is which runs did it (the
 * detection times are printed; bench/ measures them).
 *
 * And a connection that keeps flapping (dropped every 50 ms while the
 * dependency stays reachable) must not cause a re-probe storm: the episodes
 * are bounded by the token bucket over the time the flapping really took,
 * counted both in the loop and as connections accepted at the proxy.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CONFIRM_GAP_MS, EVENT_BURST, EVENT_REFILL_MS } from '../../src/health/scheduler';
import type { CheckStatus } from '../../src/health/state';
import type { Sidecar } from '../../src/sidecar';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { DATABASE_URL, hostPort, REDIS_URL, waitFor } from '../helpers/servers';
import { sidecarFromYaml } from '../server/helpers';
import type { RunTrigger } from '../../src/health/runner';
import { request } from '../helpers/http';

/** far longer than any test here: a scheduled run can play no part in what they see */
const INTERVAL_MS = 600_000;
/** a hang guard only (the schedule would need thresholds.failure × INTERVAL_MS), not a speed figure */
const GUARD_MS = 60_000;
const FAILURE_THRESHOLD = 3;

let app: http.Server;
const proxies: FaultProxy[] = [];
const sidecars: Sidecar[] = [];

before(async () => {
  // a long keep-alive, so the probe's connection stays open between runs (Node's 5 s default would
  // make the agent drop it after 4 s, leaving nothing to watch)
  app = http.createServer((_req, res) => res.end('ok'));
  app.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', () => resolve()));
});

after(async () => {
  await Promise.all(sidecars.map((s) => s.shutdown({ drain: false })));
  await Promise.all(proxies.map((p) => p.close()));
  app.closeAllConnections();
  await new Promise((resolve) => app.close(resolve));
});

const targets = {
  redis: () => hostPort(REDIS_URL),
  postgres: () => hostPort(DATABASE_URL),
  http: () => ({ host: '127.0.0.1', port: (app.address() as AddressInfo).port }),
};
type Kind = keyof typeof targets;

function urlVia(kind: Kind, proxy: FaultProxy): string {
  if (kind === 'redis') return proxy.url('redis');
  if (kind === 'postgres') return proxy.url('postgres', `${new URL(DATABASE_URL).username || 'postgres'}@`, new URL(DATABASE_URL).pathname);
  return proxy.url('http', '', '/healthz');
}

/** A started sidecar with one check `dep` of `kind` behind a fresh fault proxy; resolves once dep is UP. `triggers`: what started each run since. */
async function start(kind: Kind, retry = '{ attempts: 2, backoff: { initial: 20ms, max: 50ms }, jitter: false }'): Promise<{ sidecar: Sidecar; proxy: FaultProxy; port: number; triggers: RunTrigger[] }> {
  const proxy = await startFaultProxy(targets[kind]());
  proxies.push(proxy);
  const { sidecar } = sidecarFromYaml(`server: { port: 0, host: 127.0.0.1 }
log: { level: warn }
defaults:
  interval: ${INTERVAL_MS / 1000}s
  timeout: 1s
  retry: ${retry}
  breaker: { failures: 1000, halfOpenAfter: 1s }
  thresholds: { failure: ${FAILURE_THRESHOLD}, success: 1 }
checks:
  - { name: dep, kind: ${kind}, url: "${urlVia(kind, proxy)}" }
`);
  sidecars.push(sidecar);
  const port = await sidecar.start();
  await waitFor(() => sidecar.store.get('dep')?.status === 'UP', { timeoutMs: 30_000, what: `${kind} check UP (first run within the 1 s start jitter)` });
  // record the trigger of every later run (the loop's own runner, observed, not replaced)
  const triggers: RunTrigger[] = [];
  const runner = sidecar.loop('dep')!.runner;
  const run = runner.run.bind(runner);
  runner.run = (trigger, options) => {
    triggers.push(trigger);
    return run(trigger, options);
  };
  return { sidecar, proxy, port, triggers };
}

/** ms from now until dep reaches `status` (listening to transitions, not polling) */
function timeUntil(sidecar: Sidecar, status: CheckStatus, limitMs: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`dep not ${status} within ${limitMs}ms (state ${sidecar.store.get('dep')?.status}, ${sidecar.store.get('dep')?.message})`));
    }, limitMs);
    const off = sidecar.store.onTransition((t) => {
      if (t.check !== 'dep' || t.to !== status) return;
      clearTimeout(timer);
      off();
      resolve(performance.now() - started);
    });
  });
}

describe('event-driven detection: a cut dependency is DOWN through event runs, not the schedule', () => {
  for (const kind of ['redis', 'postgres', 'http'] as const) {
    test(`${kind}: cut → /readyz 503, restore → /readyz 200, each by event-triggered runs alone`, async () => {
      const { sidecar, proxy, port, triggers } = await start(kind);
      assert.equal((await request(port, '/readyz')).status, 200);
      // Cut right after the first run: the old "1 s since the last run" gap would have ignored this event.
      const down = timeUntil(sidecar, 'DOWN', GUARD_MS);
      proxy.setMode('refuse');
      const detectMs = await down;
      assert.equal((await request(port, '/readyz')).status, 503);
      const state = sidecar.store.get('dep')!;
      assert.equal(state.consecutiveFailures, FAILURE_THRESHOLD, 'hysteresis kept: DOWN after exactly thresholds.failure failed runs');
      assert.deepEqual(triggers, Array(FAILURE_THRESHOLD).fill('event'), `${kind}: the cut was seen by thresholds.failure event runs, none scheduled`);

      const up = timeUntil(sidecar, 'UP', GUARD_MS);
      proxy.setMode('pass');
      await proxy.ready();
      const recoverMs = await up;
      assert.equal((await request(port, '/readyz')).status, 200);
      assert.ok(!triggers.includes('schedule'), `${kind}: recovered by the recovery watch, not the schedule: ${triggers.join(',')}`);
      assert.ok(triggers.length > FAILURE_THRESHOLD, `${kind}: the recovery watch ran: ${triggers.join(',')}`);
      const loop = sidecar.loop('dep')!;
      assert.equal(loop.eventEpisodes, 1, 'one episode did both: detection and the recovery watch');
      console.log(`# ${kind}: cut → DOWN in ${detectMs.toFixed(1)}ms (${((detectMs / INTERVAL_MS) * 100).toFixed(2)}% of the interval), restore → UP in ${recoverMs.toFixed(0)}ms`);
    });
  }
});

describe('event-driven detection: the confirmation runs do not retry', () => {
  // the default retry (2 attempts, 100 ms backoff; jitter off so the backoff is exact)
  const ATTEMPTS = 2;
  const BACKOFF_MS = 100;
  test(`redis: default retry (${ATTEMPTS} attempts, ${BACKOFF_MS}ms backoff) → the first run retries, the confirmations are one attempt each`, async () => {
    const { sidecar, proxy, triggers } = await start('redis', `{ attempts: ${ATTEMPTS}, backoff: { initial: ${BACKOFF_MS}ms, max: 1s }, jitter: false }`);
    const loop = sidecar.loop('dep')!;
    const episodesBefore = loop.eventEpisodes;
    // 'reset': every new connection is accepted (and counted) and reset at Redis's first answer,
    // so each attempt is one connection at the proxy; dropping the kept connection is the event
    proxy.setMode('reset');
    proxy.resetCounters();
    const down = timeUntil(sidecar, 'DOWN', GUARD_MS);
    proxy.dropAll();
    const detectMs = await down;
    const attempts = proxy.acceptedConnections;
    proxy.setMode('pass');
    const state = sidecar.store.get('dep')!;
    assert.equal(loop.eventEpisodes - episodesBefore, 1, 'one episode');
    assert.equal(state.consecutiveFailures, FAILURE_THRESHOLD, 'hysteresis kept: DOWN after exactly thresholds.failure failed runs');
    // the event run keeps its retry (ATTEMPTS attempts); each confirmation run is a single attempt
    const expectedAttempts = ATTEMPTS + (FAILURE_THRESHOLD - 1);
    assert.equal(attempts, expectedAttempts, `${attempts} attempts at the proxy, expected ${ATTEMPTS} + ${FAILURE_THRESHOLD - 1}`);
    assert.deepEqual(triggers, Array(FAILURE_THRESHOLD).fill('event'), 'thresholds.failure event runs, none scheduled');
    // with a retry in every run, detection would wait thresholds × (attempts − 1) backoffs; now only the
    // first run does (the attempt count above is the proof, the time is printed for reference)
    const backoffInclusiveMs = FAILURE_THRESHOLD * (ATTEMPTS - 1) * BACKOFF_MS;
    console.log(`# redis, default retry: cut → DOWN in ${detectMs.toFixed(1)}ms, ${attempts} attempts (backoff in every run: ≥ ${backoffInclusiveMs}ms, ${FAILURE_THRESHOLD * ATTEMPTS} attempts)`);
    // a lower bound only (a timer never fires early; a busy machine only adds to it)
    assert.ok(detectMs >= (ATTEMPTS - 1) * BACKOFF_MS * 0.9, `${detectMs.toFixed(0)}ms: the event run's own retry backoff should still be in it`);
  });
});

describe('event-driven detection: a flapping connection does not cause a re-probe storm', () => {
  const FLAP_MS = 3000;
  const EVERY_MS = 50;
  const MIN_TICKS = FLAP_MS / EVERY_MS;
  for (const kind of ['redis', 'postgres'] as const) {
    test(`${kind}: connection dropped every ${EVERY_MS}ms for ≥ ${FLAP_MS}ms and ≥ ${MIN_TICKS} ticks → episodes bounded by the token bucket`, async () => {
      const { sidecar, proxy } = await start(kind);
      const loop = sidecar.loop('dep')!;
      // count the events themselves (the loop's own nudge, observed, not replaced)
      let nudges = 0;
      const nudge = loop.nudge.bind(loop);
      loop.nudge = () => {
        nudges++;
        nudge();
      };
      proxy.resetCounters();
      const episodesBefore = loop.eventEpisodes;
      let cuts = 0; // kept connections cut (there is one to cut only after a re-probe)
      let ticks = 0;
      const started = performance.now();
      // at least MIN_TICKS chances to cut, however slow the machine (a storm would re-probe on every one)
      while (ticks < MIN_TICKS || performance.now() - started < FLAP_MS) {
        ticks++;
        if (proxy.openConnections > 0) {
          cuts++;
          proxy.dropAll();
        }
        await new Promise((r) => setTimeout(r, EVERY_MS));
      }
      const flapMs = performance.now() - started; // the bucket refills on this same clock
      const episodes = loop.eventEpisodes - episodesBefore;
      const accepted = proxy.acceptedConnections;
      // every kept connection cut is an event; without the bucket each one would be a re-probe (and a new connection)
      // the burst, one per refill over the time the flapping really took, and one for a refill that lands as it ends
      const maxEpisodes = EVENT_BURST + Math.ceil(flapMs / EVENT_REFILL_MS) + 1;
      console.log(`# ${kind}: ${cuts} cuts in ${ticks} ticks over ${flapMs.toFixed(0)}ms → ${nudges} nudges, ${episodes} episodes, ${loop.eventsSuppressed} nudges suppressed by the bucket, ${accepted} connections at the proxy (bound ${maxEpisodes} episodes)`);
      assert.ok(episodes >= 1, 'the cuts were noticed at all');
      assert.ok(episodes <= maxEpisodes, `${episodes} episodes, bound ${maxEpisodes}`);
      // events were coalesced: dropped by the bucket, or absorbed by the episode in flight (a DOWN that
      // is in its recovery watch, which is how a flapping PostgreSQL connection often ends up)
      assert.ok(nudges > episodes, `${nudges} nudges became ${episodes} episodes: every event re-probed`);
      // each episode runs at most thresholds.failure runs before the recovery watch (≥ 1 s apart)
      const maxConnections = maxEpisodes * FAILURE_THRESHOLD + Math.ceil(flapMs / 1000) + 1;
      assert.ok(accepted <= maxConnections, `${accepted} connections at the proxy, bound ${maxConnections}`);
      // unbounded, every cut is re-probed at once on a new connection, which is cut on the next tick:
      // one connection per tick. The bucket allows one per refill, twenty ticks' worth of time.
      assert.ok(accepted * 2 <= ticks, `${accepted} connections in ${ticks} ticks of flapping: a re-probe storm`);
      assert.ok(CONFIRM_GAP_MS < EVENT_REFILL_MS);
    });
  }
});
