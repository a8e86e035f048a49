/**
 * Latency budget of a check (`latency: { warnAbove, failAbove }`), applied to
 * each finished run before it reaches the state:
 *   - a successful run slower than failAbove becomes a failed run
 *     ("slow: 812ms > failAbove 500ms"); hysteresis then decides DOWN as for
 *     any other failure;
 *   - a successful run slower than warnAbove stays a success but is marked
 *     `slow` ("slow: 612ms > warnAbove 500ms"): the check stays UP, its groups
 *     report DEGRADED (still served 200), /health shows `slow: true`.
 * Failed, timed-out and rejected runs are left as they are.
 */
import type { CheckConfig } from '../config/types';
import type { RunResult } from './state';

const ms = (value: number) => `${Math.round(value)}ms`;

export function applyLatencyBudget(check: Pick<CheckConfig, 'latency'>, run: RunResult): RunResult {
  const budget = check.latency;
  if (!budget || !run.ok) return run;
  if (budget.failAbove !== undefined && run.latencyMs > budget.failAbove) {
    return { ...run, ok: false, outcome: 'failure', slow: true, message: `slow: ${ms(run.latencyMs)} > failAbove ${ms(budget.failAbove)}` };
  }
  if (budget.warnAbove !== undefined && run.latencyMs > budget.warnAbove) {
    return { ...run, slow: true, message: `slow: ${ms(run.latencyMs)} > warnAbove ${ms(budget.warnAbove)}` };
  }
  return run;
}
