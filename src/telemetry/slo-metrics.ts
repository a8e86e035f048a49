/**
 * The SLO instruments (docs/uptime.md, "Metrics"):
 *
 *   healthcheck.runs                        counter {name, outcome}             every finished run (all its attempts) by
 *                                                                               outcome; the burn-rate rules divide it
 *   healthcheck.slo.objective               gauge   {name, slo.window}         the objective (0.999)
 *   healthcheck.slo.availability            gauge   {name, slo.window, window} availability over 1h, 24h, 7d, 30d and the SLO window
 *   healthcheck.slo.error_budget_remaining  gauge   {name, slo.window}         remaining share of the budget (negative once overspent)
 *
 * The counter is pre-set to 0 for every outcome of every check as soon as the
 * check is known (start, reload), so `rate()` has a series from the first
 * scrape and a first failure is an increase, not a new series.
 *
 * The gauges read the uptime history, which sums up to 2,160 buckets per
 * check and window: with 1,000 checks that is hundreds of milliseconds of
 * CPU. So they are computed at most once per `refreshMs` (default 1 minute;
 * the history's resolution is a minute anyway) and every scrape in between
 * reads the same values. Two things refresh them early, both bounded: a
 * changed SLO configuration (reload), and a check getting its first run
 * (so a young sidecar's first scrape does not pin "no data" for a minute).
 */
import type { BatchObservableCallback, Meter } from '@opentelemetry/api';
import type { History } from '../health/history';
import { sloGaugeValues, type SloGaugeCheck, type SloGaugeValues } from '../health/slo-gauges';
import type { HealthStore, Outcome } from '../health/state';
import { deferredCounter, sloInstruments, type CounterAdd, type SloInstruments } from './instruments';
import { ATTR } from './semconv';

const OUTCOMES: readonly Outcome[] = ['success', 'failure', 'timeout', 'rejected'];
export const SLO_REFRESH_MS = 60_000;

export interface SloMetricsSource {
  readonly store: Pick<HealthStore, 'names' | 'onRecord' | 'onChange'>;
  /** the checks with an SLO, from the current config */
  sloChecks(): SloGaugeCheck[];
  readonly history: Pick<History, 'window' | 'names'>;
}

export interface SloMetricsOptions {
  refreshMs?: number;
  now?: () => number;
}

export class SloMetrics {
  private readonly instruments: SloInstruments;
  private readonly refreshMs: number;
  private readonly now: () => number;
  /** frozen attribute sets of the run counter per check and outcome */
  private readonly runAttributes = new Map<string, Readonly<Record<Outcome, Readonly<Record<string, string>>>>>();
  private cache: { at: number; key: string; withHistory: number; values: SloGaugeValues[] } | undefined;
  /** healthcheck.runs per run, summed here and handed to the SDK at collection (instruments.ts deferredCounter) */
  private readonly runCounts: CounterAdd;
  /** how many times the gauge values were computed (tests, diagnostics) */
  computations = 0;

  constructor(
    private readonly meter: Meter,
    options: SloMetricsOptions = {},
  ) {
    this.refreshMs = options.refreshMs ?? SLO_REFRESH_MS;
    this.now = options.now ?? Date.now;
    this.instruments = sloInstruments(meter);
    this.runCounts = deferredCounter(meter, this.instruments.runs, this.instruments.objective);
  }

  /** Start counting runs and reporting the gauges of `source`; returns a function that stops both. */
  observe(source: SloMetricsSource): () => void {
    const { runs, objective, availability, budgetRemaining } = this.instruments;
    const preset = () => {
      for (const name of source.store.names()) if (!this.runAttributes.has(name)) for (const outcome of OUTCOMES) runs.add(0, this.attributesOf(name)[outcome]);
    };
    preset();
    const stopChange = source.store.onChange(preset);
    const stopRecord = source.store.onRecord((name, run) => this.runCounts.add(1, this.attributesOf(name)[run.outcome]));
    const callback: BatchObservableCallback = (result) => {
      for (const v of this.values(source)) {
        const base = { [ATTR.name]: v.name, [ATTR.sloWindow]: v.sloWindow };
        result.observe(objective, v.objective, base);
        for (const [window, value] of Object.entries(v.availability)) result.observe(availability, value, { ...base, [ATTR.window]: window });
        if (v.budgetRemaining !== null) result.observe(budgetRemaining, v.budgetRemaining, base);
      }
    };
    const observables = [objective, availability, budgetRemaining];
    this.meter.addBatchObservableCallback(callback, observables);
    return () => {
      this.meter.removeBatchObservableCallback(callback, observables);
      stopChange();
      stopRecord();
    };
  }

  /** the gauge values: cached, recomputed at most once per refreshMs (or when the SLOs changed, or a check got its first run) */
  values(source: SloMetricsSource): SloGaugeValues[] {
    const checks = source.sloChecks();
    const key = checks.map((c) => `${c.name}\u0000${c.slo.objective}\u0000${c.slo.windowMs}`).join('\u0001');
    const withHistory = source.history.names().length;
    const now = this.now();
    const cache = this.cache;
    if (cache && cache.key === key && cache.withHistory >= withHistory && now - cache.at < this.refreshMs) return cache.values;
    this.computations++;
    const values = sloGaugeValues(checks, (name, ms) => source.history.window(name, ms));
    this.cache = { at: now, key, withHistory, values };
    return values;
  }

  private attributesOf(name: string): Readonly<Record<Outcome, Readonly<Record<string, string>>>> {
    let attributes = this.runAttributes.get(name);
    if (!attributes) {
      const of = (outcome: Outcome) => Object.freeze({ [ATTR.name]: name, [ATTR.outcome]: outcome });
      attributes = Object.freeze({ success: of('success'), failure: of('failure'), timeout: of('timeout'), rejected: of('rejected') });
      this.runAttributes.set(name, attributes);
    }
    return attributes;
  }
}
