/**
 * AttemptObserver (what telemetry hangs off): one attemptFinished call per
 * attempt with the right outcome — success, failure, timeout and rejected —
 * all made by the time run() resolves.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CheckRunner } from '../../src/health/runner';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startHttpServer, type TestHttpServer } from '../helpers/servers';
import { checkFromYaml, RecordingObserver, runnerFor, type CheckOptions } from '../probes/support';

describe('attempt observer', () => {
  let server: TestHttpServer;
  let proxy: FaultProxy;
  const runners: CheckRunner[] = [];

  before(async () => {
    server = await startHttpServer((req, res) => {
      res.statusCode = req.url === '/down' ? 500 : 200;
      res.end();
    });
    proxy = await startFaultProxy({ host: '127.0.0.1', port: server.port });
  });
  after(async () => {
    for (const r of runners) await r.close();
    await proxy.close();
    await server.close();
  });

  function observed(path: string, options: CheckOptions) {
    const { check, redactor } = checkFromYaml(`kind: http\n    url: ${proxy.url('http', '', path)}`, options);
    const observer = new RecordingObserver();
    const runner = runnerFor(check, redactor, observer);
    runners.push(runner);
    return { check, runner, observer };
  }

  test('success: one call, outcome success, with the attempt duration', async () => {
    proxy.setMode('pass');
    const { runner, observer } = observed('/up', {});
    const result = await runner.run('manual');
    assert.equal(result.outcome, 'success');
    assert.deepEqual(observer.outcomes(), ['success']);
    assert.equal(observer.attempts[0]!.durationMs, result.latencyMs);
  });

  test('failure with retries: one call per attempt', async () => {
    proxy.setMode('pass');
    const { runner, observer } = observed('/down', { attempts: 3, backoffInitial: '10ms', backoffMax: '20ms' });
    const result = await runner.run('manual');
    assert.deepEqual({ outcome: result.outcome, attempts: result.attempts }, { outcome: 'failure', attempts: 3 });
    assert.deepEqual(observer.outcomes(), ['failure', 'failure', 'failure']);
  });

  test('timeouts: one timeout call per attempt, each lasting about the timeout, before run() resolves', async () => {
    proxy.setMode('blackhole');
    try {
      const { check, runner, observer } = observed('/up', { timeout: '120ms', attempts: 2, backoffInitial: '10ms', backoffMax: '20ms' });
      const result = await runner.run('manual');
      assert.deepEqual({ outcome: result.outcome, attempts: result.attempts }, { outcome: 'timeout', attempts: 2 });
      assert.deepEqual(observer.outcomes(), ['timeout', 'timeout']);
      for (const attempt of observer.attempts) assert.ok(attempt.durationMs >= check.timeout * 0.95, `attempt lasted ${attempt.durationMs}ms`);
      assert.ok(result.latencyMs >= check.timeout * 0.95);
    } finally {
      proxy.setMode('pass');
    }
  });

  test('rejected: the open breaker reports one rejected call per run and no attempt', async () => {
    proxy.setMode('blackhole');
    try {
      const { runner, observer } = observed('/up', { timeout: '100ms', attempts: 2, backoffInitial: '10ms', backoffMax: '20ms', breakerFailures: 1, halfOpenAfter: '30s' });
      const opening = await runner.run('manual');
      assert.deepEqual({ outcome: opening.outcome, attempts: opening.attempts, breaker: opening.breaker }, { outcome: 'timeout', attempts: 1, breaker: 'open' });
      assert.deepEqual(observer.outcomes(), ['timeout']);
      for (let i = 0; i < 3; i++) assert.equal((await runner.run('manual')).outcome, 'rejected');
      assert.deepEqual(observer.outcomes(), ['timeout', 'rejected', 'rejected', 'rejected']);
      assert.deepEqual(observer.attempts.slice(1).map((a) => a.durationMs), [0, 0, 0]);
      assert.deepEqual(observer.breakerStates, ['open']);
    } finally {
      proxy.setMode('pass');
    }
  });
});
