/**
 * What the SLO gauges report at a collection (a scrape), as data: the
 * telemetry layer creates the instruments and observes these values, so the
 * numbers have one source (the history and slo.ts) and test without a Meter.
 *
 *   healthcheck.slo.objective               {name, slo.window}         the objective (ratio, 0.999)
 *   healthcheck.slo.availability            {name, slo.window, window} availability over 1h, 24h, 7d, 30d and the SLO window
 *   healthcheck.slo.error_budget_remaining  {name, slo.window}         remaining share of the budget (negative once overspent)
 *
 * Only checks with an SLO are reported; a window without runs reports
 * nothing (no sample, rather than a made-up 0 or 1).
 */
import { HISTORY_WINDOWS, type Summary } from './history';
import { errorBudget } from './slo';

export const SLO_GAUGE_WINDOWS = ['1h', '24h', '7d', '30d'] as const;

export interface SloGaugeCheck {
  name: string;
  slo: { objective: number; windowMs: number; window: string };
}

export interface SloGaugeValues {
  name: string;
  /** the SLO window as written ("30d") */
  sloWindow: string;
  objective: number;
  /** window label → availability; the SLO window is included under its own label */
  availability: Record<string, number>;
  /** null without runs in the SLO window */
  budgetRemaining: number | null;
}

export function sloGaugeValues(checks: readonly SloGaugeCheck[], window: (name: string, ms: number) => Summary): SloGaugeValues[] {
  return checks.map(({ name, slo }) => {
    const availability: Record<string, number> = {};
    const windows: [string, number][] = SLO_GAUGE_WINDOWS.map((w) => [w, HISTORY_WINDOWS[w]]);
    if (!windows.some(([, ms]) => ms === slo.windowMs)) windows.push([slo.window, slo.windowMs]);
    let sloAvailability: number | null = null;
    for (const [label, ms] of windows) {
      const a = window(name, ms).availability;
      if (a !== null) availability[label] = a;
      if (ms === slo.windowMs) sloAvailability = a;
    }
    return {
      name,
      sloWindow: slo.window,
      objective: slo.objective,
      availability,
      budgetRemaining: errorBudget(slo.objective, slo.windowMs, sloAvailability).remainingRatio,
    };
  });
}
