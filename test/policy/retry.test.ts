/** Retry with exponential backoff around a real HTTP probe and a real server. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CheckRunner } from '../../src/health/runner';
import { startHttpServer, type TestHttpServer } from '../helpers/servers';
import { checkFromYaml, RecordingObserver, runnerFor, type CheckOptions } from '../probes/support';

describe('retry policy', () => {
  let server: TestHttpServer;
  /** per path: arrival times (ms, monotonic) of every request */
  const arrivals = new Map<string, number[]>();
  const runners: CheckRunner[] = [];

  before(async () => {
    server = await startHttpServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const times = arrivals.get(url.pathname) ?? [];
      times.push(performance.now());
      arrivals.set(url.pathname, times);
      // /flaky/N: fail the first N requests, then succeed
      const failFirst = Number(url.pathname.split('/')[2] ?? 0);
      if (times.length <= failFirst) {
        res.statusCode = 503;
        res.end(`failing (${times.length})`);
      } else res.end('ok');
    });
  });
  after(async () => {
    for (const r of runners) await r.close();
    await server.close();
  });

  function retryRunner(path: string, options: CheckOptions) {
    const { check, redactor } = checkFromYaml(`kind: http\n    url: ${server.url}${path}`, options);
    const observer = new RecordingObserver();
    const runner = runnerFor(check, redactor, observer);
    runners.push(runner);
    return { check, runner, observer };
  }

  test('fails twice then succeeds: success on attempt 3, and the backoff gaps grow exponentially', async () => {
    const { check, runner, observer } = retryRunner('/flaky/2/a', { attempts: 3, backoffInitial: '150ms', backoffMax: '5s', jitter: false });
    const result = await runner.run('manual');
    assert.deepEqual(
      { ok: result.ok, outcome: result.outcome, attempts: result.attempts, message: result.message },
      { ok: true, outcome: 'success', attempts: 3, message: `GET ${server.url}/flaky/2/a: status 200` },
    );
    assert.deepEqual(observer.outcomes(), ['failure', 'failure', 'success']);
    const times = arrivals.get('/flaky/2/a')!;
    assert.equal(times.length, 3);
    const [first, second] = [times[1]! - times[0]!, times[2]! - times[1]!];
    const initial = check.retry.backoff.initial;
    // no jitter: delays are initial, then 2 x initial (lower bounds: timers never fire early, 5% for clock
    // granularity; a busy machine only lengthens a gap, so the gaps are not compared with each other)
    assert.ok(first >= initial * 0.95, `first gap ${first}ms < ${initial}ms`);
    assert.ok(second >= 2 * initial * 0.95, `second gap ${second}ms < ${2 * initial}ms: the backoff did not double`);
  });

  test('the backoff is capped by backoff.max', async () => {
    const { check, runner } = retryRunner('/flaky/99/b', { attempts: 6, backoffInitial: '50ms', backoffMax: '50ms', jitter: false });
    const result = await runner.run('manual');
    assert.equal(result.attempts, check.retry.attempts);
    const times = arrivals.get('/flaky/99/b')!;
    assert.equal(times.length, check.retry.attempts);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    assert.ok(gaps.every((g) => g >= check.retry.backoff.max * 0.95), `gaps ${gaps.join(', ')}`);
    // uncapped, the last delay alone would be initial x 2^(attempts-2); capped, all of them together stay below it
    const uncappedLast = check.retry.backoff.initial * 2 ** (check.retry.attempts - 2);
    const total = times[times.length - 1]! - times[0]!;
    assert.ok(total < uncappedLast, `all retries took ${total}ms; uncapped last delay alone would be ${uncappedLast}ms`);
  });

  test('every attempt fails: failure with the last message and attempts = retry.attempts', async () => {
    const { check, runner, observer } = retryRunner('/flaky/99/c', { attempts: 3, backoffInitial: '20ms', backoffMax: '50ms' });
    const result = await runner.run('manual');
    assert.deepEqual(
      { ok: result.ok, outcome: result.outcome, attempts: result.attempts, message: result.message },
      { ok: false, outcome: 'failure', attempts: check.retry.attempts, message: `GET ${server.url}/flaky/99/c: status 503, expected 200-299` },
    );
    assert.deepEqual(observer.outcomes(), ['failure', 'failure', 'failure']);
    assert.equal(arrivals.get('/flaky/99/c')!.length, 3);
  });

  test('attempts: 1 means no retry', async () => {
    const { runner } = retryRunner('/flaky/1/d', { attempts: 1 });
    const result = await runner.run('manual');
    assert.deepEqual({ outcome: result.outcome, attempts: result.attempts }, { outcome: 'failure', attempts: 1 });
    assert.equal(arrivals.get('/flaky/1/d')!.length, 1);
  });
});
