/** The per-attempt timeout of buildPolicy(): what happens to the attempt's AbortSignal. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { buildPolicy, isTimeoutError } from '../../src/policy/build';

const config = { timeout: 50, retry: { attempts: 1, jitter: false, backoff: { initial: 10, max: 10 } }, breaker: { failures: 5, halfOpenAfter: 1000 } };

describe('per-attempt timeout', () => {
  test('an attempt that overruns: its signal aborts and the run rejects with a timeout before the attempt settles', async () => {
    const { policy } = buildPolicy(config);
    let seen: AbortSignal | undefined;
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    await assert.rejects(
      policy.execute(async ({ signal }) => {
        seen = signal;
        await stuck;
        return { ok: true, message: 'late' };
      }),
      (err) => isTimeoutError(err),
    );
    assert.equal(seen?.aborted, true);
    release();
  });

  test('an attempt that returns in time: its signal is left unaborted (no abort, no DOMException, per attempt)', async () => {
    const { policy, single } = buildPolicy(config);
    for (const p of [policy, single]) {
      let seen: AbortSignal | undefined;
      const answer = await p.execute(({ signal }) => {
        seen = signal;
        return Promise.resolve({ ok: true, message: 'fine' });
      });
      assert.deepEqual(answer, { ok: true, message: 'fine' });
      assert.equal(seen?.aborted, false);
    }
  });

  test('an attempt that throws in time: the error is the attempt’s, and the signal is left unaborted', async () => {
    const { single } = buildPolicy(config);
    let seen: AbortSignal | undefined;
    await assert.rejects(
      single.execute(({ signal }) => {
        seen = signal;
        return Promise.reject(new Error('refused'));
      }),
      /refused/,
    );
    assert.equal(seen?.aborted, false);
  });

  test('the parent signal (shutdown) still aborts an attempt in progress', async () => {
    const { single } = buildPolicy({ ...config, timeout: 60_000 });
    const shutdown = new AbortController();
    let seen: AbortSignal | undefined;
    const run = single.execute(async ({ signal }) => {
      seen = signal;
      await once(signal, 'abort');
      throw new Error('cancelled');
    }, shutdown.signal);
    shutdown.abort(new Error('shutting down'));
    await assert.rejects(run);
    assert.equal(seen?.aborted, true);
  });
});
