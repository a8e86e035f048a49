/**
 * SLO arithmetic: error budget and burn rates from the history, over 30
 * simulated days with a synthetic clock. The headline case: a 43-minute
 * outage in a 99.9 % / 30 d SLO spends (almost exactly) the whole budget of
 * 43.2 minutes, and burns it at 1000× while it lasts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DAY_MS, History, HOUR_MS, MINUTE_MS } from '../../src/health/history';
import { burnRate, errorBudget, sloReport, type Slo } from '../../src/health/slo';

const START = Date.parse('2030-03-01T00:00:00Z');
const SLO: Slo = { objective: 0.999, windowMs: 30 * DAY_MS };
const close = (actual: number | null, expected: number, tolerance: number, what: string) =>
  assert.ok(actual !== null && Math.abs(actual - expected) <= tolerance, `${what}: ${actual} ≉ ${expected} (±${tolerance})`);

describe('SLO and error budget', () => {
  test('arithmetic: budget total, consumed, remaining (ratio and minutes), overspent, no data', () => {
    assert.deepEqual(errorBudget(0.999, 30 * DAY_MS, 0.9995), { ratio: 0.001, totalMinutes: 43.2, consumedRatio: 0.5, remainingRatio: 0.5, remainingMinutes: 21.6 });
    assert.deepEqual(errorBudget(0.99, 7 * DAY_MS, 1), { ratio: 0.01, totalMinutes: 100.8, consumedRatio: 0, remainingRatio: 1, remainingMinutes: 100.8 });
    assert.deepEqual(errorBudget(0.999, 30 * DAY_MS, 0.997), { ratio: 0.001, totalMinutes: 43.2, consumedRatio: 3, remainingRatio: -2, remainingMinutes: -86.4 });
    assert.deepEqual(errorBudget(0.999, 30 * DAY_MS, null), { ratio: 0.001, totalMinutes: 43.2, consumedRatio: null, remainingRatio: null, remainingMinutes: null });
    close(burnRate(0.999, 0.9856), 14.4, 1e-9, 'a 14.4× burn');
    assert.equal(burnRate(0.999, null), null);
  });

  test('a 43-minute outage in a 99.9 % / 30 d SLO spends ~100 % of the budget; burn rates while it lasts', () => {
    let now = START;
    const history = new History(() => now);
    const report = () => sloReport(SLO, '30d', (ms) => history.window('db', ms));
    const outageStart = START + 12 * DAY_MS + 9 * HOUR_MS + 20 * MINUTE_MS; // day 13, 09:20
    const outageEnd = outageStart + 43 * MINUTE_MS;
    let during: ReturnType<typeof report> | undefined;
    let before: ReturnType<typeof report> | undefined;
    // a run every 10 s for 30 days
    for (let t = START; t < START + 30 * DAY_MS; t += 10_000) {
      now = t;
      const down = t >= outageStart && t < outageEnd;
      history.record('db', { finishedAt: t, outcome: down ? 'failure' : 'success', latencyMs: down ? 2000 : 3 });
      if (t === outageStart - 10_000) before = report();
      if (t === outageEnd - 10_000) during = report(); // the outage's last failed run
    }
    // healthy until then
    assert.ok(before);
    assert.equal(before.errorBudget.remainingRatio, 1);
    assert.deepEqual(before.burnRates, { '5m': 0, '1h': 0, '6h': 0, '3d': 0 });

    // at the end of the outage: 5 m all failed (1000×), 1 h 43 of 60 minutes, 6 h 43 of 360
    assert.ok(during);
    assert.equal(during.burnRates['5m'], 1000);
    close(during.burnRates['1h'], (43 / 60) * 1000, 1e-6, '1h burn rate');
    close(during.burnRates['6h'], (43 / 360) * 1000, 1e-6, '6h burn rate');
    // 3 d in hours: the current hour (10:00–10:02:50, 18 runs) and the 71 before it; 258 of those failed
    close(during.burnRates['3d'], (258 / (71 * 360 + 18)) * 1000, 1e-6, '3d burn rate');

    // 30 days later (the window is full): 258 of 259,200 runs failed → 0.995 of the budget spent
    now = START + 30 * DAY_MS - 1;
    const end = report();
    assert.equal(end.runs, 30 * 24 * 360);
    assert.equal(end.badRuns, 43 * 6);
    assert.equal(end.coverage, 1);
    close(end.availability, 1 - 258 / 259_200, 1e-12, 'availability');
    assert.equal(end.errorBudget.totalMinutes, 43.2);
    close(end.errorBudget.consumedRatio, 43 / 43.2, 1e-6, 'budget consumed (≈ 100 %)');
    close(end.errorBudget.remainingMinutes, 0.2, 1e-3, 'minutes of downtime left');
    assert.deepEqual(end.burnRates, { '5m': 0, '1h': 0, '6h': 0, '3d': 0 }, 'the outage is long past the short windows');

    // once the outage hour leaves the window, the budget is whole again
    now = outageStart + 30 * DAY_MS + 2 * HOUR_MS;
    history.record('db', { finishedAt: now, outcome: 'success', latencyMs: 3 });
    assert.equal(report().errorBudget.remainingRatio, 1);
  });

  test('rejected runs (open breaker) spend budget like failures', () => {
    let now = START;
    const history = new History(() => now);
    for (let t = START; t < START + HOUR_MS; t += 10_000) {
      now = t;
      // 10 minutes of an open breaker: the first run fails, the rest are rejected
      const down = t >= START + 20 * MINUTE_MS && t < START + 30 * MINUTE_MS;
      history.record('db', { finishedAt: t, outcome: !down ? 'success' : t === START + 20 * MINUTE_MS ? 'failure' : 'rejected', latencyMs: 3 });
    }
    const report = sloReport({ objective: 0.99, windowMs: HOUR_MS }, '1h', (ms) => history.window('db', ms));
    assert.equal(report.badRuns, 60);
    close(report.availability, 300 / 360, 1e-12, 'availability counts the rejected runs as unavailable');
    close(report.errorBudget.consumedRatio, (60 / 360) / 0.01, 1e-6, 'budget spent');
  });
});

describe('SLO gauges (what /metrics reports)', () => {
  test('objective, availability per window (and the SLO window), budget remaining; nothing for empty windows', async () => {
    const { sloGaugeValues } = await import('../../src/health/slo-gauges');
    const now = START + 10 * DAY_MS;
    const history = new History(() => now);
    // 10 days at one run a minute; the last 2 hours: 1 failure every 10 minutes
    for (let t = START; t <= now; t += MINUTE_MS) history.record('api', { finishedAt: t, outcome: t > now - 2 * HOUR_MS && (t - START) % (10 * MINUTE_MS) === 0 ? 'failure' : 'success', latencyMs: 5 });
    const [api, quiet] = sloGaugeValues(
      [
        { name: 'api', slo: { objective: 0.99, windowMs: 28 * DAY_MS, window: '28d' } },
        { name: 'quiet', slo: { objective: 0.999, windowMs: 30 * DAY_MS, window: '30d' } },
      ],
      (name, ms) => history.window(name, ms),
    );
    const w = (ms: number) => history.window('api', ms).availability!;
    assert.deepEqual(api, {
      name: 'api',
      sloWindow: '28d',
      objective: 0.99,
      availability: { '1h': w(HOUR_MS), '24h': w(DAY_MS), '7d': w(7 * DAY_MS), '30d': w(30 * DAY_MS), '28d': w(28 * DAY_MS) },
      budgetRemaining: errorBudget(0.99, 28 * DAY_MS, w(28 * DAY_MS)).remainingRatio,
    });
    assert.equal(w(HOUR_MS), 54 / 60);
    assert.ok(api!.budgetRemaining! > 0.9 && api!.budgetRemaining! < 1);
    assert.deepEqual(quiet, { name: 'quiet', sloWindow: '30d', objective: 0.999, availability: {}, budgetRemaining: null });
  });
});
