/**
 * Latency statistics from a driven sequence of results: windows, success
 * ratio and nearest-rank percentiles checked against an independent exact
 * computation; the ring buffer stays bounded. Plus the latency budget
 * (warnAbove → DEGRADED, failAbove → failure).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { rollup } from '../../src/health/aggregate';
import { applyLatencyBudget } from '../../src/health/latency';
import { initialState, applyRun, type Outcome, type RunResult } from '../../src/health/state';
import { LatencyStats, MAX_SAMPLES, SampleRing, capacityFor, type Sample } from '../../src/health/stats';

const NOW = Date.parse('2030-01-01T12:00:00Z');

interface Driven {
  ageMs: number;
  latencyMs: number;
  outcome: Outcome;
}

/** exact reference: sort everything in the window, pick index ceil(p·n)−1 */
function expected(samples: Driven[], windowMs: number) {
  const inWindow = samples.filter((s) => NOW - s.ageMs >= NOW - windowMs);
  const latencies = inWindow.filter((s) => s.outcome !== 'rejected').map((s) => s.latencyMs).sort((a, b) => a - b);
  const pick = (p: number) => (latencies.length ? Math.round(latencies[Math.ceil((p / 100) * latencies.length) - 1]! * 1000) / 1000 : null);
  return {
    runs: inWindow.length,
    successRatio: inWindow.length ? inWindow.filter((s) => s.outcome === 'success').length / inWindow.length : null,
    p50: pick(50),
    p95: pick(95),
    p99: pick(99),
  };
}

function drive(samples: Driven[], intervalMs = 1000): LatencyStats {
  const stats = new LatencyStats(() => intervalMs, () => NOW);
  // oldest first, as runs happen
  for (const s of [...samples].sort((a, b) => b.ageMs - a.ageMs)) {
    stats.record('db', { finishedAt: NOW - s.ageMs, latencyMs: s.latencyMs, ok: s.outcome === 'success', outcome: s.outcome });
  }
  return stats;
}

describe('latency stats', () => {
  test('a hand-made sequence: 1m, 5m, 1h windows with nearest-rank percentiles', () => {
    // 10 runs in the last minute: 1..10 ms, one failure (latency counts), one rejection (no latency)
    const samples: Driven[] = [];
    for (let i = 1; i <= 10; i++) samples.push({ ageMs: i * 5000, latencyMs: i, outcome: i === 7 ? 'failure' : 'success' });
    samples.push({ ageMs: 55_000, latencyMs: 0, outcome: 'rejected' });
    // 4 runs between 1 and 5 minutes ago at 100 ms, 1 run 30 minutes ago at 1000 ms, 1 run 2 hours ago (outside everything)
    for (let i = 0; i < 4; i++) samples.push({ ageMs: 120_000 + i * 1000, latencyMs: 100, outcome: 'success' });
    samples.push({ ageMs: 1_800_000, latencyMs: 1000, outcome: 'timeout' });
    samples.push({ ageMs: 7_200_000, latencyMs: 99_999, outcome: 'success' });
    const stats = drive(samples).of('db');
    assert.deepEqual(stats.windows, {
      '1m': { runs: 11, successRatio: 9 / 11, p50: 5, p95: 10, p99: 10 },
      '5m': { runs: 15, successRatio: 13 / 15, p50: 7, p95: 100, p99: 100 },
      '1h': { runs: 16, successRatio: 13 / 16, p50: 8, p95: 1000, p99: 1000 },
    });
    assert.equal(stats.samples, 17);
  });

  test('random sequences agree with the exact computation in every window (property)', () => {
    const sample = fc.record({
      ageMs: fc.integer({ min: 0, max: 3_700_000 }),
      latencyMs: fc.double({ min: 0, max: 5000, noNaN: true }),
      outcome: fc.constantFrom<Outcome>('success', 'success', 'success', 'failure', 'timeout', 'rejected'),
    });
    fc.assert(
      fc.property(fc.array(sample, { maxLength: 400 }), (samples) => {
        const stats = drive(samples).of('db');
        assert.deepEqual(stats.windows['1m'], expected(samples, 60_000));
        assert.deepEqual(stats.windows['5m'], expected(samples, 300_000));
        assert.deepEqual(stats.windows['1h'], expected(samples, 3_600_000));
      }),
      { numRuns: 150 },
    );
  });

  test('bounded: one slot per run for an hour at the interval, never more than MAX_SAMPLES', () => {
    assert.equal(capacityFor(10_000), 450); // 360 runs an hour + 25 % for on-demand runs
    assert.equal(capacityFor(1000), MAX_SAMPLES);
    assert.equal(capacityFor(100), MAX_SAMPLES);
    const stats = new LatencyStats(() => 100, () => NOW);
    for (let i = 0; i < 10_000; i++) stats.record('db', { finishedAt: NOW - (10_000 - i) * 100, latencyMs: i, ok: true, outcome: 'success' });
    const s = stats.of('db');
    assert.equal(s.samples, MAX_SAMPLES);
    assert.equal(s.capacity, MAX_SAMPLES);
    // the newest 3600 are kept: latencies 6400..9999, all within the hour
    assert.deepEqual(s.windows['1h'], { runs: 3600, successRatio: 1, p50: 6400 + 1799, p95: 6400 + 3419, p99: 6400 + 3563 });
    assert.deepEqual(stats.recent('db', 3).map((x) => x.latencyMs), [9997, 9998, 9999]);
  });

  test('memory follows what was recorded: the ring grows on demand up to its capacity', () => {
    const ring = new SampleRing(MAX_SAMPLES);
    assert.ok(ring.allocated <= 64, `${ring.allocated} slots allocated before any sample`);
    const pushed: Sample[] = [];
    const push = (i: number) => {
      const sample: Sample = { at: NOW + i * 1000, latencyMs: (i % 97) + i / 1000 + 0.0004, ok: i % 5 !== 0, outcome: i % 5 === 0 ? 'timeout' : 'success' };
      ring.push(sample);
      // kept to the microsecond (what /health/stats prints: 3 decimals of a ms)
      pushed.push({ ...sample, latencyMs: Math.round(sample.latencyMs * 1000) / 1000 });
    };
    for (let i = 0; i < 200; i++) push(i); // a few minutes at 1 s
    assert.equal(ring.length, 200);
    assert.ok(ring.allocated >= 200 && ring.allocated <= 400, `${ring.allocated} slots for 200 samples`);
    assert.deepEqual([...ring.newest()], pushed.slice().reverse(), 'every sample back, exact, across the growth steps');
    for (let i = 200; i < MAX_SAMPLES + 500; i++) push(i);
    assert.equal(ring.allocated, MAX_SAMPLES, 'never more than the capacity');
    assert.equal(ring.length, MAX_SAMPLES);
    assert.deepEqual([...ring.newest()], pushed.slice(-MAX_SAMPLES).reverse(), 'the newest capacity samples, oldest overwritten');
  });

  test('times that do not fit the compact form (fractional, clock steps of weeks) are kept exactly', () => {
    const ring = new SampleRing(40);
    const pushed: Sample[] = [];
    const ats = [NOW, NOW + 1000, NOW - 5, NOW + 1000.25, NOW + 40 * 86_400_000, NOW - 40 * 86_400_000];
    for (let i = 0; i < 50; i++) {
      const sample: Sample = { at: ats[i % ats.length]! + i, latencyMs: i, ok: true, outcome: 'success' };
      pushed.push(sample);
      ring.push(sample);
    }
    assert.deepEqual([...ring.newest()], pushed.slice(-40).reverse());
  });

  test('an empty check reports nulls, not zeros', () => {
    const stats = new LatencyStats(() => 1000, () => NOW);
    assert.deepEqual(stats.of('none').windows['1m'], { runs: 0, successRatio: null, p50: null, p95: null, p99: null });
  });
});

describe('latency budget', () => {
  const ok = (latencyMs: number): RunResult => ({ ok: true, outcome: 'success', message: 'HTTP 200', latencyMs, attempts: 1, startedAt: NOW, finishedAt: NOW, breaker: 'closed' });
  const check = { latency: { warnAbove: 200, failAbove: 500 } };

  test('under warnAbove: unchanged; above warnAbove: UP but slow, group DEGRADED; above failAbove: a failure', () => {
    assert.deepEqual(applyLatencyBudget(check, ok(150)), ok(150));
    assert.deepEqual(applyLatencyBudget(check, ok(612.4)), { ...ok(612.4), ok: false, outcome: 'failure', slow: true, message: 'slow: 612ms > failAbove 500ms' });
    const slow = applyLatencyBudget(check, ok(250));
    assert.deepEqual(slow, { ...ok(250), slow: true, message: 'slow: 250ms > warnAbove 200ms' });
    const base = initialState({ name: 'api', kind: 'http', critical: true, groups: ['ready'] });
    const state = applyRun(base, slow, { failure: 1, success: 1 });
    assert.equal(state.status, 'UP');
    assert.equal(state.slow, true);
    assert.equal(rollup([state]), 'DEGRADED');
    assert.equal(rollup([applyRun(state, ok(10), { failure: 1, success: 1 })]), 'UP');
    const failed = applyRun(state, applyLatencyBudget(check, ok(900)), { failure: 1, success: 1 });
    assert.equal(failed.status, 'DOWN');
    assert.equal(rollup([failed]), 'DOWN');
  });

  test('failed runs and checks without a budget are left alone', () => {
    const failed: RunResult = { ...ok(900), ok: false, outcome: 'timeout', message: 'timed out' };
    assert.deepEqual(applyLatencyBudget(check, failed), failed);
    assert.deepEqual(applyLatencyBudget({}, ok(90_000)), ok(90_000));
  });
});
