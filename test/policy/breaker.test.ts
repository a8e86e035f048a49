/**
 * Circuit breaker around a real HTTP probe against a real server behind the
 * fault proxy. The proxy's black hole accepts and counts connections, so
 * "a rejected run does not touch the dependency" is observable.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { CheckRunner } from '../../src/health/runner';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startHttpServer, type TestHttpServer } from '../helpers/servers';
import { checkFromYaml, RecordingObserver, runnerFor, sleep, type CheckOptions } from '../probes/support';

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

  test('opens after N failed runs; then rejects without connecting; half-open lets one trial through; closes on success', async () => {
    const { check, runner, observer } = breakerRunner({ timeout: '100ms', attempts: 1, breakerFailures: 3, halfOpenAfter: '300ms' });
    const failures = check.breaker.failures;
    proxy.setMode('blackhole');
    const acceptedAtStart = proxy.acceptedConnections;
    for (let i = 0; i < failures; i++) {
      const result = await runner.run('manual');
      assert.equal(result.outcome, 'timeout');
      assert.equal(result.breaker, i < failures - 1 ? 'closed' : 'open');
    }
    assert.equal(proxy.acceptedConnections - acceptedAtStart, failures, 'each failed run made one connection');
    assert.equal(runner.breaker, 'open');

    // open: runs are rejected and nothing reaches the proxy
    const acceptedWhileOpen = proxy.acceptedConnections;
    for (let i = 0; i < 5; i++) {
      const result = await runner.run('manual');
      assert.deepEqual(
        { ok: result.ok, outcome: result.outcome, attempts: result.attempts, breaker: result.breaker, message: result.message },
        { ok: false, outcome: 'rejected', attempts: 0, breaker: 'open', message: `circuit breaker open; last error: timed out after ${check.timeout}ms` },
      );
    }
    assert.equal(proxy.acceptedConnections, acceptedWhileOpen, 'rejected runs must not connect');

    // after halfOpenAfter: exactly one trial goes through; it fails (still black-holed) and the breaker reopens
    await sleep(check.breaker.halfOpenAfter);
    const trial = await runner.run('manual');
    assert.deepEqual({ outcome: trial.outcome, attempts: trial.attempts, breaker: trial.breaker }, { outcome: 'timeout', attempts: 1, breaker: 'open' });
    assert.equal(proxy.acceptedConnections, acceptedWhileOpen + 1, 'the half-open trial made one connection');
    assert.equal((await runner.run('manual')).outcome, 'rejected');
    assert.equal(proxy.acceptedConnections, acceptedWhileOpen + 1);

    // dependency back: the next trial succeeds and closes the breaker
    proxy.setMode('pass');
    await sleep(check.breaker.halfOpenAfter);
    const recovered = await runner.run('manual');
    assert.deepEqual({ ok: recovered.ok, outcome: recovered.outcome, breaker: recovered.breaker }, { ok: true, outcome: 'success', breaker: 'closed' });
    assert.equal(runner.breaker, 'closed');
    assert.equal((await runner.run('manual')).outcome, 'success');
    assert.deepEqual(observer.breakerStates, ['open', 'half-open', 'open', 'half-open', 'closed']);
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
    const { check, runner, observer } = breakerRunner({ timeout: '100ms', attempts: 3, backoffInitial: '2s', backoffMax: '2s', breakerFailures: 1, halfOpenAfter: '30s' });
    proxy.setMode('blackhole');
    const acceptedAtStart = proxy.acceptedConnections;
    const first = await runner.run('manual');
    // the first attempt failed and opened the breaker; a second attempt could only be rejected, so none is made
    assert.deepEqual({ outcome: first.outcome, attempts: first.attempts, breaker: first.breaker }, { outcome: 'timeout', attempts: 1, breaker: 'open' });
    assert.equal(proxy.acceptedConnections - acceptedAtStart, 1);
    assert.ok(first.finishedAt - first.startedAt < check.retry.backoff.initial, 'no backoff was waited after the breaker opened');
    observer.attempts.length = 0;

    const started = performance.now();
    const rejected = await runner.run('manual');
    const elapsed = performance.now() - started;
    assert.deepEqual({ outcome: rejected.outcome, attempts: rejected.attempts }, { outcome: 'rejected', attempts: 0 });
    assert.equal(proxy.acceptedConnections - acceptedAtStart, 1, 'the proxy saw nothing of the rejected run');
    assert.ok(elapsed < check.retry.backoff.initial, `rejected run took ${elapsed}ms: it waited for a retry backoff`);
    assert.deepEqual(observer.outcomes(), ['rejected']);
  });

  test('resetPolicy() closes an open breaker: the next run reaches the dependency', async () => {
    const { runner, observer } = breakerRunner({ timeout: '100ms', attempts: 1, breakerFailures: 1, halfOpenAfter: '30s' });
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
    assert.equal(proxy.acceptedConnections, accepted + 1, 'the run after the reset connected');
    assert.deepEqual(observer.breakerStates, ['open', 'closed']);
  });
});
