/**
 * Circuit breaker around a real HTTP probe against a real server behind the
 * fault proxy. The proxy's black hole accepts and counts connections, so
 * "a rejected run does not touch the dependency" is observable. The half-open
 * window runs on node:test's fake Date (the breaker reads Date.now()): the test
 * moves time to 1 ms before and to the end of the window instead of sleeping it;
 * the per-attempt timeouts stay real timers.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { CheckRunner } from '../../src/health/runner';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { checkFromYaml, RecordingObserver, runnerFor, type CheckOptions } from '../probes/support';

describe('circuit breaker (retry → breaker → timeout → probe)', () => {
  let server: TestHttpServer;
  let proxy: FaultProxy;
  const runners: CheckRunner[] = [];

  function breakerRunner(options: CheckOptions) {
    const { check, redactor } = checkFromYaml(`kind: http\n    url: ${proxy.url('http', '', '/healthz')}`, options);
    const observer = new RecordingObserver();
    const runner = runnerFor(check, redactor, observer);
    runners.push(runner);
    return { check, runner, observer };
  }

  before(async () => {
    server = await startHttpServer((_req, res) => res.end('ok'));
    proxy = await startFaultProxy({ host: '127.0.0.1', port: server.port });
  });
  beforeEach(() => {
    proxy.setMode('pass');
  });
  after(async () => {
    for (const r of runners) await r.close();
    await proxy.close();
    await server.close();
  });

  test('opens after N failed runs; then rejects without connecting; half-open (fake clock) lets one trial through; closes on success', async (t) => {
    // a timeout a busy machine does not reach for the runs that must succeed (the black-holed ones wait it out)
    const { check, runner, observer } = breakerRunner({ timeout: '1s', attempts: 1, breakerFailures: 3, halfOpenAfter: '30s' });
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const failures = check.breaker.failures;
    const halfOpenAfter = check.breaker.halfOpenAfter;
    proxy.setMode('blackhole');
    const acceptedAtStart = proxy.acceptedConnections;
    for (let i = 0; i < failures; i++) {
      const result = await runner.run('manual');
      assert.equal(result.outcome, 'timeout');
      assert.equal(result.breaker, i < failures - 1 ? 'closed' : 'open');
    }
    // (the proxy counts a connection when it handles the accept, which a busy machine may do after the timeout)
    await waitFor(() => proxy.acceptedConnections - acceptedAtStart === failures, { what: 'each failed run made one connection' });
    assert.equal(runner.breaker, 'open');

    // open: runs are rejected and nothing reaches the proxy, up to the last ms of the window
    const acceptedWhileOpen = proxy.acceptedConnections;
    for (let i = 0; i < 5; i++) {
      if (i === 4) t.mock.timers.tick(halfOpenAfter - 1);
      const result = await runner.run('manual');
      assert.deepEqual(
        { ok: result.ok, outcome: result.outcome, attempts: result.attempts, breaker: result.breaker, message: result.message },
        { ok: false, outcome: 'rejected', attempts: 0, breaker: 'open', message: `circuit breaker open; last error: timed out after ${check.timeout}ms` },
      );
    }
    assert.equal(proxy.acceptedConnections, acceptedWhileOpen, 'rejected runs must not connect');

    // at halfOpenAfter: exactly one trial goes through; it fails (still black-holed) and the breaker reopens
    t.mock.timers.tick(1);
    const trial = await runner.run('manual');
    assert.deepEqual({ outcome: trial.outcome, attempts: trial.attempts, breaker: trial.breaker }, { outcome: 'timeout', attempts: 1, breaker: 'open' });
    await waitFor(() => proxy.acceptedConnections === acceptedWhileOpen + 1, { what: 'the half-open trial made one connection' });
    assert.equal((await runner.run('manual')).outcome, 'rejected');
    t.mock.timers.tick(halfOpenAfter - 1);
    assert.equal((await runner.run('manual')).outcome, 'rejected', 'the window starts again from the failed trial');
    assert.equal(proxy.acceptedConnections, acceptedWhileOpen + 1);

    // dependency back: a trial succeeds and closes the breaker (a busy machine may make a trial miss its timeout:
    // then the breaker reopens and the next window gives another trial, which is the rule too)
    proxy.setMode('pass');
    t.mock.timers.tick(1);
    let recovered = await runner.run('manual');
    let missed = 0;
    while (recovered.outcome === 'timeout' && missed < 5) {
      assert.equal(recovered.breaker, 'open', 'a failed trial reopens the breaker');
      missed++;
      t.mock.timers.tick(halfOpenAfter);
      recovered = await runner.run('manual');
    }
    assert.deepEqual({ ok: recovered.ok, outcome: recovered.outcome, breaker: recovered.breaker }, { ok: true, outcome: 'success', breaker: 'closed' });
    assert.equal(runner.breaker, 'closed');
    assert.deepEqual(observer.breakerStates, ['open', 'half-open', 'open', ...Array(missed).fill(['half-open', 'open']).flat(), 'half-open', 'closed']);
  });

  test('refusals open the breaker as well', async () => {
    const { check, runner } = breakerRunner({ timeout: '1s', attempts: 1, breakerFailures: 2, halfOpenAfter: '30s' });
    proxy.setMode('refuse');
    await proxy.ready();
    try {
      for (let i = 0; i < check.breaker.failures; i++) assert.equal((await runner.run('manual')).outcome, 'failure');
      const rejected = await runner.run('manual');
      assert.equal(rejected.outcome, 'rejected');
      assert.match(rejected.message, /^circuit breaker open; last error: GET http:\/\/127\.0\.0\.1:\d+\/healthz: connection refused/);
    } finally {
      proxy.setMode('pass');
      await proxy.ready();
    }
  });

  test('a rejection is not retried: no attempt, no connection, no backoff wait', async () => {
    // three attempts with a long backoff, a breaker that opens on the first failure
    const { check, runner, observer } = breakerRunner({ timeout: '100ms', attempts: 3, backoffInitial: '10s', backoffMax: '10s', breakerFailures: 1, halfOpenAfter: '30s' });
    proxy.setMode('blackhole');
    const acceptedAtStart = proxy.acceptedConnections;
    const first = await runner.run('manual');
    // the first attempt failed and opened the breaker; a second attempt could only be rejected, so none is made
    assert.deepEqual({ outcome: first.outcome, attempts: first.attempts, breaker: first.breaker }, { outcome: 'timeout', attempts: 1, breaker: 'open' });
    await waitFor(() => proxy.acceptedConnections - acceptedAtStart === 1, { what: 'the one attempt connected' });
    // no backoff waited after the breaker opened: compared with the backoff itself (10 s), not a figure for this machine
    assert.ok(first.finishedAt - first.startedAt < check.retry.backoff.initial, 'no backoff was waited after the breaker opened');
    observer.attempts.length = 0;

    const started = performance.now();
    const rejected = await runner.run('manual');
    const elapsed = performance.now() - started;
    assert.deepEqual({ outcome: rejected.outcome, attempts: rejected.attempts }, { outcome: 'rejected', attempts: 0 });
    assert.equal(proxy.acceptedConnections - acceptedAtStart, 1, 'the proxy saw nothing of the rejected run');
    assert.ok(elapsed < check.retry.backoff.initial, `rejected run took ${elapsed}ms: it waited for the ${check.retry.backoff.initial}ms retry backoff`);
    assert.deepEqual(observer.outcomes(), ['rejected']);
  });

  test('resetPolicy() closes an open breaker: the next run reaches the dependency', async () => {
    // the run after the reset must succeed: a timeout no busy machine reaches
    const { runner, observer } = breakerRunner({ timeout: '5s', attempts: 1, breakerFailures: 1, halfOpenAfter: '30s' });
    proxy.setMode('blackhole');
    assert.equal((await runner.run('manual')).outcome, 'timeout');
    assert.equal(runner.breaker, 'open');
    assert.equal((await runner.run('manual')).outcome, 'rejected');
    proxy.setMode('pass');
    assert.equal((await runner.run('manual')).outcome, 'rejected', 'still open: halfOpenAfter is 30s');

    runner.resetPolicy();
    assert.equal(runner.breaker, 'closed');
    const accepted = proxy.acceptedConnections;
    const result = await runner.run('manual');
    assert.deepEqual({ ok: result.ok, outcome: result.outcome, breaker: result.breaker }, { ok: true, outcome: 'success', breaker: 'closed' });
    await waitFor(() => proxy.acceptedConnections === accepted + 1, { what: 'the run after the reset connected' });
    assert.deepEqual(observer.breakerStates, ['open', 'closed']);
  });
});
