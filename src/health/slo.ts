/**
 * Service level objectives over a check's run history (pure arithmetic).
 *
 * An SLO is an objective (the share of runs that must succeed, 0 < o < 1)
 * over a rolling window ending now (1 h … 30 d). With A the availability
 * over the window (history.ts: ok / runs, rejected runs counted as failed):
 *
 *   error budget (ratio)      = 1 − o                      (99.9 % → 0.001)
 *   error budget (minutes)    = (1 − o) · window           (99.9 % of 30 d → 43.2 min)
 *   budget consumed (ratio)   = (1 − A) / (1 − o)
 *   budget remaining (ratio)  = 1 − consumed               (negative once overspent)
 *   budget remaining (min)    = remaining · budget minutes
 *   burn rate over w          = (1 − A_w) / (1 − o)        (1 = spending exactly the budget)
 *
 * The ratios are over the runs recorded in the window: a history younger than
 * the window is judged on what it holds (`coverage` says how much of the
 * window has runs), the same as Prometheus computes from the run counter.
 * Minutes are the ratio times the window: a check failing 43 of the minutes
 * of a 30-day window, probed at a steady interval, has spent 43 of 43.2.
 */
import { HISTORY_WINDOWS, type Summary } from './history';

export interface Slo {
  /** share of runs that must succeed, 0 < objective < 1 (99.9 % → 0.999) */
  objective: number;
  /** rolling window in ms */
  windowMs: number;
}

/** The burn-rate windows of the multi-window alerts (SRE workbook): 5 m, 1 h, 6 h, 3 d. */
export const BURN_RATE_WINDOWS = ['5m', '1h', '6h', '3d'] as const;
export type BurnRateWindow = (typeof BURN_RATE_WINDOWS)[number];

export interface ErrorBudget {
  /** 1 − objective */
  ratio: number;
  /** (1 − objective) · window, in minutes */
  totalMinutes: number;
  /** share of the budget spent; null without runs */
  consumedRatio: number | null;
  /** 1 − consumed (negative once overspent); null without runs */
  remainingRatio: number | null;
  /** remaining · totalMinutes; null without runs */
  remainingMinutes: number | null;
}

export interface SloReport {
  objective: number;
  /** the window as written, e.g. "30d" */
  window: string;
  windowMs: number;
  /** over the window; null without runs */
  availability: number | null;
  runs: number;
  /** runs that did not succeed (failed + rejected) */
  badRuns: number;
  /** share of the window's buckets that hold runs (1 = history covers the whole window) */
  coverage: number;
  errorBudget: ErrorBudget;
  burnRates: Record<BurnRateWindow, number | null>;
}

/** burn rate = error ratio / error budget; null without runs */
export function burnRate(objective: number, availability: number | null): number | null {
  return availability === null ? null : (1 - availability) / (1 - objective);
}

export function errorBudget(objective: number, windowMs: number, availability: number | null): ErrorBudget {
  const ratio = 1 - objective;
  const totalMinutes = (ratio * windowMs) / 60_000;
  const consumed = burnRate(objective, availability);
  const remaining = consumed === null ? null : 1 - consumed;
  return {
    ratio: round(ratio, 9),
    totalMinutes: round(totalMinutes, 3),
    consumedRatio: consumed === null ? null : round(consumed, 6),
    remainingRatio: remaining === null ? null : round(remaining, 6),
    remainingMinutes: remaining === null ? null : round(remaining * totalMinutes, 3),
  };
}

/** The report of one SLO, given the history's window sums (`window(ms)` ends now). */
export function sloReport(slo: Slo, windowLabel: string, window: (ms: number) => Summary): SloReport {
  const over = window(slo.windowMs);
  const burnRates = {} as Record<BurnRateWindow, number | null>;
  for (const w of BURN_RATE_WINDOWS) {
    const rate = burnRate(slo.objective, window(HISTORY_WINDOWS[w]).availability);
    burnRates[w] = rate === null ? null : round(rate, 6);
  }
  return {
    objective: slo.objective,
    window: windowLabel,
    windowMs: slo.windowMs,
    availability: over.availability,
    runs: over.runs,
    badRuns: over.failed + over.rejected,
    coverage: round(over.coverage, 6),
    errorBudget: errorBudget(slo.objective, slo.windowMs, over.availability),
    burnRates,
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
