/**
 * The SLO instruments in process: a real MeterProvider and PrometheusExporter
 * (the /metrics serialisation), a real HealthStore and History on an injected
 * clock. The run counter exists at 0 for every outcome before the first run
 * (and for a check added later), and counts runs by outcome; the gauges say
 * what the history and slo.ts say; and they are computed at most once a
 * minute — many scrapes in a minute compute once — except when the SLOs
 * change or a check gets its first run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { CheckConfig } from '../../src/config/types';
import { DAY_MS, History, HISTORY_WINDOWS, MINUTE_MS } from '../../src/health/history';
import { errorBudget } from '../../src/health/slo';
import type { SloGaugeCheck } from '../../src/health/slo-gauges';
import { HealthStore, type Outcome, type RunResult } from '../../src/health/state';
import { renderPrometheus } from '../../src/telemetry/metrics';
import { SCOPE } from '../../src/telemetry/semconv';
import { SloMetrics } from '../../src/telemetry/slo-metrics';
import { parsePrometheus, type Family } from './support';

const START = Date.UTC(2030, 4, 1, 10, 0, 10);
let now = START;
const clock = () => now;

const checkConfig = (name: string) => ({ name, kind: 'http', critical: true, groups: ['ready'], thresholds: { failure: 1, success: 1 } }) as unknown as CheckConfig;
const run = (outcome: Outcome): RunResult => ({ ok: outcome === 'success', outcome, message: outcome, latencyMs: 5, attempts: 1, startedAt: now - 5, finishedAt: now, breaker: 'closed' });

describe('SLO metrics (healthcheck.runs, healthcheck.slo.*)', () => {
  let provider: MeterProvider;
  let exporter: PrometheusExporter;
  let slo: SloMetrics;
  let stop: () => void;
  const store = new HealthStore();
  const history = new History(clock);
  let sloChecks: SloGaugeCheck[] = [
    { name: 'api', slo: { objective: 0.999, windowMs: 30 * DAY_MS, window: '30d' } },
    { name: 'db', slo: { objective: 0.99, windowMs: 7 * DAY_MS, window: '7d' } },
  ];
  // what the sidecar wires: every recorded run also goes to the history
  store.onRecord((name, r) => history.record(name, r));

  const scrape = async (): Promise<Map<string, Family>> => parsePrometheus(await renderPrometheus(exporter));
  type Row = { value: number; healthcheck_name?: string; healthcheck_outcome?: string; healthcheck_window?: string; healthcheck_slo_window?: string };
  const samples = (families: Map<string, Family>, name: string): Row[] => (families.get(name)?.samples ?? []).map((s) => ({ ...s.labels, value: s.value }));

  before(() => {
    exporter = new PrometheusExporter({ preventServerStart: true });
    provider = new MeterProvider({ readers: [exporter] });
    for (const name of ['api', 'db', 'cache']) store.upsert(checkConfig(name));
    slo = new SloMetrics(provider.getMeter(SCOPE), { now: clock });
    stop = slo.observe({ store, history, sloChecks: () => sloChecks });
  });
  after(async () => {
    stop();
    await provider.shutdown();
  });

  test('the run counter is 0 for every outcome of every check before any run, then counts runs by outcome', async () => {
    let families = await scrape();
    const runs = () => samples(families, 'healthcheck_runs_total').map((s) => `${s.healthcheck_name}/${s.healthcheck_outcome}=${s.value}`).sort();
    assert.deepEqual(runs(), ['api', 'cache', 'db'].flatMap((n) => ['failure', 'rejected', 'success', 'timeout'].map((o) => `${n}/${o}=0`)));
    // no runs yet: the objective is reported, availability and budget are not (no made-up numbers)
    assert.deepEqual(samples(families, 'healthcheck_slo_objective_ratio').map((s) => [s.healthcheck_name, s.healthcheck_slo_window, s.value]), [['api', '30d', 0.999], ['db', '7d', 0.99]]);
    assert.equal(samples(families, 'healthcheck_slo_availability_ratio').length, 0);
    assert.equal(samples(families, 'healthcheck_slo_error_budget_remaining_ratio').length, 0);

    for (let i = 0; i < 98; i++) store.record('api', run('success'));
    store.record('api', run('failure'));
    store.record('api', run('rejected'));
    store.record('db', run('timeout'));
    families = await scrape();
    assert.deepEqual(
      runs().filter((r) => !r.endsWith('=0')),
      ['api/failure=1', 'api/rejected=1', 'api/success=98', 'db/timeout=1'],
    );
    // a check added later (reload) is pre-set too
    store.upsert(checkConfig('queue'));
    families = await scrape();
    assert.deepEqual(runs().filter((r) => r.startsWith('queue/')), ['queue/failure=0', 'queue/rejected=0', 'queue/success=0', 'queue/timeout=0']);
  });

  test('the gauges report the history: availability per window, objective, remaining budget', async () => {
    const families = await scrape();
    const availability = samples(families, 'healthcheck_slo_availability_ratio');
    // api: 98 of 100 runs succeeded (the rejected run counts as failed)
    assert.deepEqual(
      availability.filter((s) => s.healthcheck_name === 'api').map((s) => [s.healthcheck_window, s.value]),
      [['1h', 0.98], ['24h', 0.98], ['7d', 0.98], ['30d', 0.98]],
    );
    // db: one timeout; its SLO window (7d) is one of the reported windows
    assert.deepEqual(
      availability.filter((s) => s.healthcheck_name === 'db').map((s) => [s.healthcheck_window, s.value]),
      [['1h', 0], ['24h', 0], ['7d', 0], ['30d', 0]],
    );
    const remaining = samples(families, 'healthcheck_slo_error_budget_remaining_ratio');
    assert.deepEqual(remaining.map((s) => [s.healthcheck_name, s.value]), [
      ['api', errorBudget(0.999, 30 * DAY_MS, 0.98).remainingRatio],
      ['db', errorBudget(0.99, 7 * DAY_MS, 0).remainingRatio],
    ]);
    assert.equal(remaining[0]!.value, -19); // 2 % failed against a 0.1 % budget: 20 budgets spent
    assert.equal(history.window('api', HISTORY_WINDOWS['30d']).availability, 0.98);
  });

  test('computed at most once a minute: scrapes in between read the same values; the SLOs changing or a first run refresh them', async () => {
    const before = slo.computations;
    const availabilityOf = async (name: string) => samples(await scrape(), 'healthcheck_slo_availability_ratio').find((s) => s.healthcheck_name === name && s.healthcheck_window === '1h')?.value;
    assert.equal(await availabilityOf('api'), 0.98);
    // more runs of a check that already has history, 59 s later: ten scrapes, no computation, the same (stale) value
    now += 59_000;
    for (let i = 0; i < 100; i++) store.record('api', run('success'));
    for (let i = 0; i < 10; i++) assert.equal(await availabilityOf('api'), 0.98);
    assert.equal(slo.computations, before);
    // a minute after the last computation: computed again, once
    now += 1_000;
    assert.equal(await availabilityOf('api'), 198 / 200);
    assert.equal(await availabilityOf('api'), 198 / 200);
    assert.equal(slo.computations, before + 1);
    // a check's first run refreshes early (a young sidecar does not report "no data" for a minute)
    store.record('cache', run('success'));
    sloChecks = [...sloChecks, { name: 'cache', slo: { objective: 0.9, windowMs: DAY_MS, window: '24h' } }];
    assert.equal(await availabilityOf('cache'), 1);
    assert.equal(slo.computations, before + 2);
    // a changed objective (reload) refreshes too
    sloChecks = sloChecks.map((c) => (c.name === 'api' ? { ...c, slo: { ...c.slo, objective: 0.95 } } : c));
    const objective = samples(await scrape(), 'healthcheck_slo_objective_ratio').find((s) => s.healthcheck_name === 'api')?.value;
    assert.equal(objective, 0.95);
    assert.equal(slo.computations, before + 3);
    // and nothing more while nothing changes and the minute has not passed
    now += MINUTE_MS - 1;
    await scrape();
    assert.equal(slo.computations, before + 3);
  });

  test('1,000 checks with 30 days of history: ten scrapes compute the report once', async () => {
    const big = new History(clock);
    const bigStore = new HealthStore();
    const checks: SloGaugeCheck[] = [];
    const counts = { ok: 60, failed: 0, rejected: 0, latencyUs: 180_000 };
    const hourNow = Math.floor(now / 3_600_000);
    const minuteNow = Math.floor(now / MINUTE_MS);
    const stored = {
      hours: Array.from({ length: 720 }, (_, i) => ({ hour: hourNow - 720 + i, counts })),
      minutes: Array.from({ length: 120 }, (_, i) => ({ minute: minuteNow - 119 + i, counts: { ok: 1, failed: 0, rejected: 0, latencyUs: 3000 } })),
    };
    for (let i = 0; i < 1000; i++) {
      const name = `check-${i}`;
      bigStore.upsert(checkConfig(name));
      checks.push({ name, slo: { objective: 0.999, windowMs: 30 * DAY_MS, window: '30d' } });
      // 30 days of hours and the last 2 hours of minutes, as a store would hand them back: every ring in use
      big.restore(name, stored);
    }
    const bigExporter = new PrometheusExporter({ preventServerStart: true });
    const bigProvider = new MeterProvider({ readers: [bigExporter] });
    const bigSlo = new SloMetrics(bigProvider.getMeter(SCOPE), { now: clock });
    const stopBig = bigSlo.observe({ store: bigStore, history: big, sloChecks: () => checks });
    try {
      for (let i = 0; i < 10; i++) {
        const families = parsePrometheus(await renderPrometheus(bigExporter));
        assert.equal(families.get('healthcheck_slo_error_budget_remaining_ratio')?.samples.length, 1000);
      }
      assert.equal(bigSlo.computations, 1);
    } finally {
      stopBig();
      await bigProvider.shutdown();
    }
  });
});
