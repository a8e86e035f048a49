import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { CheckRunner } from '../../src/health/runner';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startSynBlackhole, type SynBlackhole } from '../helpers/private-services';
import { REDIS_URL, hostPort, waitFor } from '../helpers/servers';
import { checkFromYaml, runnerFor, type CheckOptions } from './support';

/** Sockets of this machine in state SYN_SENT towards 127.0.0.1:port (from /proc/net/tcp). */
function synSentTo(port: number): number {
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[2] === remote && fields[3] === '02').length;
}

describe('tcp probe', () => {
  let proxy: FaultProxy;
  const runners: CheckRunner[] = [];
  const tcpRunner = (url: string, options: CheckOptions = {}) => {
    const { check, redactor } = checkFromYaml(`kind: tcp\n    url: ${url}`, options);
    const runner = runnerFor(check, redactor);
    runners.push(runner);
    return { check, runner };
  };

  before(async () => {
    // a real server behind the proxy: the shared Redis port
    proxy = await startFaultProxy(hostPort(REDIS_URL));
  });
  after(async () => {
    for (const r of runners) await r.close();
    await proxy.close();
  });

  test('success: the port accepts; whole result', async () => {
    proxy.setMode('pass');
    const { runner } = tcpRunner(proxy.url('tcp'));
    const result = await runner.run('manual');
    assert.deepEqual(
      { ok: result.ok, outcome: result.outcome, message: result.message, attempts: result.attempts, breaker: result.breaker },
      { ok: true, outcome: 'success', message: `connected to 127.0.0.1:${proxy.port}`, attempts: 1, breaker: 'closed' },
    );
  });

  test('refusal: failure that says connection refused; recovery when the port accepts again', async () => {
    const { runner } = tcpRunner(proxy.url('tcp'));
    proxy.setMode('refuse');
    await proxy.ready();
    try {
      const result = await runner.run('manual');
      assert.deepEqual(
        { ok: result.ok, outcome: result.outcome, message: result.message },
        { ok: false, outcome: 'failure', message: `tcp 127.0.0.1:${proxy.port}: connection refused (connect ECONNREFUSED 127.0.0.1:${proxy.port})` },
      );
    } finally {
      proxy.setMode('pass');
      await proxy.ready();
    }
    assert.equal((await runner.run('manual')).outcome, 'success');
  });

  // A connect check only asks "does the port accept?". The proxy's black hole,
  // latency and reset act on bytes after the handshake, so they are invisible
  // to it — but the probe must still close every connection it opened.
  for (const mode of ['blackhole', 'latency', 'reset'] as const) {
    test(`proxy ${mode} after the handshake: still success, and 50 runs leave no connection open`, async () => {
      proxy.setMode(mode);
      const { runner } = tcpRunner(proxy.url('tcp'));
      const openSeen: number[] = [];
      try {
        for (let i = 0; i < 50; i++) {
          const result = await runner.run('manual');
          assert.equal(result.outcome, 'success', result.message);
          openSeen.push(proxy.openConnections);
        }
      } finally {
        proxy.setMode('pass');
      }
      assert.ok(Math.max(...openSeen) <= 2, `proxy open connections grew: ${openSeen.join(',')}`);
      await waitFor(() => proxy.openConnections === 0, { what: 'every probe connection closed at the proxy', timeoutMs: 30_000 });
    });
  }

  describe('against a port that drops SYNs (a real TCP black hole)', () => {
    let hole: SynBlackhole;
    before(async () => {
      hole = await startSynBlackhole();
    });
    after(async () => {
      await hole?.stop();
    });

    test('outcome timeout within timeout x attempts + backoff', async () => {
      const { check, runner } = tcpRunner(`tcp://127.0.0.1:${hole.port}`, { timeout: '150ms', attempts: 2, backoffInitial: '50ms', backoffMax: '100ms' });
      const started = performance.now();
      const result = await runner.run('manual');
      const elapsed = performance.now() - started;
      assert.deepEqual(
        { ok: result.ok, outcome: result.outcome, message: result.message, attempts: result.attempts },
        { ok: false, outcome: 'timeout', message: `timed out after ${check.timeout}ms`, attempts: 2 },
      );
      // a lower bound only: nothing answers, so the outcome says the timeout ended both attempts
      assert.ok(elapsed >= check.timeout * check.retry.attempts * 0.95, `took ${elapsed}ms`);
    });

    test('50 timed-out connects leave no socket of ours half-open (SYN_SENT) behind', async () => {
      const baseline = synSentTo(hole.port); // the helper's own queue-filling socket
      const { runner } = tcpRunner(`tcp://127.0.0.1:${hole.port}`, { timeout: '60ms' });
      for (let i = 0; i < 50; i++) {
        const result = await runner.run('manual');
        assert.equal(result.outcome, 'timeout', `run ${i}: ${result.message}`);
      }
      assert.equal(synSentTo(hole.port), baseline);
    });
  });
});
