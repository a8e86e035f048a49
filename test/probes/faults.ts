/**
 * The fault behaviour every connection-holding probe kind (http, redis,
 * postgres) must show against its REAL server behind the TCP fault proxy:
 * success, refusal, black hole, slow replies, resets, and recovery. Each kind's
 * test file calls describeFaultBehaviour() with how to reach its server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CheckConfig } from '../../src/config/types';
import type { CheckKindName } from '../../src/probes/registry';
import type { CheckRunner } from '../../src/health/runner';
import { Redactor } from '../../src/redact';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { waitFor } from '../helpers/servers';
import { checkFromYaml, recovers, runnerFor, type CheckOptions } from './support';

export interface FaultSpec {
  kind: CheckKindName;
  /** where the real server listens (started in `setup` if need be) */
  target: () => { host: string; port: number };
  /** the check URL through the proxy, credentials included where the kind has them */
  url: (proxy: FaultProxy) => string;
  /** the whole success message of one run */
  successMessage: (proxy: FaultProxy) => string;
  /** "GET http://127.0.0.1:P/x" / "redis 127.0.0.1:P" / "postgres 127.0.0.1:P": how failure messages start */
  where: (proxy: FaultProxy) => string;
  /** strings that must never appear in a message */
  secrets: string[];
  setup?: () => Promise<void>;
  teardown?: () => Promise<void>;
}

export function describeFaultBehaviour(spec: FaultSpec): void {
  describe(`${spec.kind} probe against the real server behind the fault proxy`, () => {
    let proxy: FaultProxy;
    const open: CheckRunner[] = [];

    /** A runner for a check through the proxy; closed in after(). No secrets are given to its redactor: the probe itself must not echo them. */
    function runner(options: CheckOptions = {}): { check: CheckConfig; runner: CheckRunner } {
      const { check } = checkFromYaml(`kind: ${spec.kind}\n    url: ${spec.url(proxy)}`, options);
      const created = runnerFor(check, new Redactor());
      open.push(created);
      return { check, runner: created };
    }

    function assertNoSecrets(message: string): void {
      for (const secret of spec.secrets) assert.ok(!message.includes(secret), `message leaks a secret: ${message}`);
    }

    before(async () => {
      await spec.setup?.();
      proxy = await startFaultProxy(spec.target());
    });

    after(async () => {
      for (const r of open) await r.close();
      await proxy?.close();
      await spec.teardown?.();
    });

    test('success: one attempt, whole result', async () => {
      proxy.setMode('pass');
      const { runner: r } = runner();
      const result = await r.run('manual');
      assert.deepEqual(
        { ok: result.ok, outcome: result.outcome, message: result.message, attempts: result.attempts, breaker: result.breaker },
        { ok: true, outcome: 'success', message: spec.successMessage(proxy), attempts: 1, breaker: 'closed' },
      );
      assert.ok(result.latencyMs > 0 && result.finishedAt >= result.startedAt);
    });

    test('refusal: failure that says connection refused, on a fresh and on a kept connection', async () => {
      proxy.setMode('pass');
      const { runner: kept } = runner();
      await recovers(kept); // holds a connection now
      const { runner: fresh } = runner();
      proxy.setMode('refuse');
      await proxy.ready();
      try {
        const port = proxy.port;
        const expected = `${spec.where(proxy)}: connection refused (connect ECONNREFUSED 127.0.0.1:${port})`;
        for (const r of [fresh, kept]) {
          const result = await r.run('manual');
          assert.deepEqual({ ok: result.ok, outcome: result.outcome, message: result.message }, { ok: false, outcome: 'failure', message: expected });
        }
      } finally {
        proxy.setMode('pass');
        await proxy.ready();
      }
      assert.equal((await kept.run('manual')).outcome, 'success', 'recovers once the port accepts again');
    });

    test('black hole: outcome timeout within timeout x attempts + backoff, then recovery', async () => {
      proxy.setMode('pass');
      const { check, runner: r } = runner({ timeout: '150ms', attempts: 2, backoffInitial: '50ms', backoffMax: '100ms' });
      await recovers(r);
      proxy.setMode('blackhole');
      try {
        const started = performance.now();
        const result = await r.run('manual');
        const elapsed = performance.now() - started;
        assert.deepEqual(
          { ok: result.ok, outcome: result.outcome, message: result.message, attempts: result.attempts },
          { ok: false, outcome: 'timeout', message: `timed out after ${check.timeout}ms`, attempts: check.retry.attempts },
        );
        // every attempt really waited for its timeout (a lower bound: a busy machine only adds to it); the
        // black hole never answers, so the outcome and the attempt count above show the timeout ended each attempt
        assert.ok(elapsed >= check.timeout * check.retry.attempts * 0.95, `run took ${elapsed}ms, less than ${check.retry.attempts} timeouts of ${check.timeout}ms`);
      } finally {
        proxy.setMode('pass');
      }
      await recovers(r);
    });

    test('black hole: 50 timed-out runs free their connections (proxy open connections stay <= 2) and the probe recovers', async () => {
      proxy.setMode('blackhole');
      proxy.dropAll();
      await waitFor(() => proxy.openConnections === 0, { what: 'proxy idle' });
      const { runner: r } = runner({ timeout: '100ms' });
      const acceptedBefore = proxy.acceptedConnections;
      const openSeen: number[] = [];
      try {
        for (let i = 0; i < 50; i++) {
          const result = await r.run('manual');
          assert.equal(result.outcome, 'timeout', `run ${i}: ${result.message}`);
          openSeen.push(proxy.openConnections);
          // the timed-out connection is closed before the next run (a busy machine may show the close a little
          // later: wait for it; a leaked client never closes and the open count would climb with the runs)
          await waitFor(() => proxy.openConnections <= 2, { what: `run ${i}'s timed-out connection closed (open: ${openSeen.join(',')})` });
        }
      } finally {
        proxy.setMode('pass');
      }
      await waitFor(() => proxy.acceptedConnections - acceptedBefore === 50, { what: 'each timed-out run used one fresh connection' });
      await waitFor(() => proxy.openConnections === 0, { what: 'every black-holed connection closed', timeoutMs: 30_000 });
      // the same probe recovers (a busy machine may need more than the 100 ms timeout for one connect: retry the run)
      const outcomes: string[] = [];
      await waitFor(async () => outcomes[outcomes.push((await r.run('manual')).outcome) - 1] === 'success', { what: 'a successful run after the black hole', timeoutMs: 30_000, intervalMs: 1 });
      await waitFor(() => proxy.openConnections === 1, { what: `exactly one live connection after recovery (no leaked clients); runs ${outcomes.join(',')}`, timeoutMs: 30_000 });
    });

    test('slow reply: latency below the timeout succeeds and shows the delay; above it times out', async () => {
      proxy.setMode('pass');
      const { check, runner: r } = runner({ timeout: '2s' });
      await recovers(r); // connection established; latency applies to it too
      const added = check.timeout / 10;
      proxy.setMode('latency', { latencyMs: added });
      try {
        const result = await r.run('manual');
        assert.equal(result.outcome, 'success', result.message);
        // the request and the reply each wait `added` in the proxy (timer slack: 5%)
        assert.ok(result.latencyMs >= 2 * added * 0.95, `latency ${result.latencyMs}ms < 2 x ${added}ms`);
        const { check: short, runner: slow } = runner({ timeout: '300ms' });
        proxy.setMode('pass');
        await recovers(slow);
        proxy.setMode('latency', { latencyMs: short.timeout });
        const late = await slow.run('manual');
        assert.deepEqual({ outcome: late.outcome, message: late.message }, { outcome: 'timeout', message: `timed out after ${short.timeout}ms` });
        proxy.setMode('pass');
        await recovers(slow);
      } finally {
        proxy.setMode('pass');
      }
    });

    for (const resetAfterBytes of [0, 4]) {
      test(`reset after ${resetAfterBytes} reply bytes: failure, then recovery on pass`, async () => {
        proxy.setMode('pass');
        const { runner: r } = runner();
        await recovers(r);
        proxy.setMode('reset', { resetAfterBytes });
        try {
          const result = await r.run('manual');
          assert.equal(result.outcome, 'failure');
          assert.ok(result.message.startsWith(`${spec.where(proxy)}: `), result.message);
          assert.match(result.message, /connection reset by peer|connection closed|terminated|socket hang up|Connection is closed/);
          assertNoSecrets(result.message);
        } finally {
          proxy.setMode('pass');
        }
        await recovers(r);
      });
    }
  });
}
