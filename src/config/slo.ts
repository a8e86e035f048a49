/**
 * The `slo` block of a check and of `defaults` (docs/uptime.md):
 *
 *   slo: { objective: 99.9%, window: 30d }
 *
 * objective: a percentage ("99.9%") or a ratio (0.999), above 0 and below 100 %
 * (100 % leaves no error budget); a bare number of 1 or more is refused as
 * ambiguous. window: a duration from 1h to 30d (the history kept); over 24h,
 * whole hours (longer windows count hour buckets). Default window: 30d.
 *
 * A check's block overrides `defaults.slo` key by key; `slo: { enabled: false }`
 * opts a check out of the default. Pure: a zod fragment and the merge.
 */
import { z } from 'zod';
import { formatDuration, parseDuration } from './duration';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
export const SLO_MIN_WINDOW_MS = HOUR_MS;
export const SLO_MAX_WINDOW_MS = 30 * DAY_MS;
export const SLO_DEFAULT_WINDOW_MS = 30 * DAY_MS;

const PERCENT = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/;

/** "99.9%" → 0.999, 0.999 → 0.999; undefined with the reason when it is not an objective */
export function parseObjective(value: unknown): { ratio: number } | { error: string } {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { error: 'must be a number' };
    if (value >= 1) return { error: `${value} is ambiguous: write "${value}%" (a percentage) or ${Number((value / 100).toPrecision(12))} (a ratio)` };
    if (value <= 0) return { error: 'must be above 0' };
    return { ratio: value };
  }
  if (typeof value !== 'string') return { error: 'must be a percentage such as "99.9%" or a ratio such as 0.999' };
  const m = PERCENT.exec(value);
  if (!m) return { error: `"${value.slice(0, 20)}" is not a percentage such as "99.9%" (or a ratio such as 0.999)` };
  const percent = Number(m[1]);
  if (percent >= 100) return { error: 'an objective of 100% leaves no error budget (every failed run would be an infinite burn rate): use at most 99.999%' };
  if (percent <= 0) return { error: 'must be above 0%' };
  // 99.9 / 100 is 0.9990000000000001 in floating point: round to what was written
  return { ratio: Math.round(percent * 1e7) / 1e9 };
}

const objective = z
  .union([z.string(), z.number()], { error: 'must be a percentage such as "99.9%" or a ratio such as 0.999' })
  .superRefine((value, ctx) => {
    const parsed = parseObjective(value);
    if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
  })
  .transform((value) => (parseObjective(value) as { ratio: number }).ratio)
  .meta({ description: 'share of runs that must succeed: a percentage ("99.9%") or a ratio (0.999), below 100%' });

const window = z
  .string({ error: 'must be a duration such as "30d", "7d" or "24h"' })
  .superRefine((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'must be a duration such as "30d", "7d" or "24h"' });
    else if (ms < SLO_MIN_WINDOW_MS) ctx.addIssue({ code: 'custom', message: `${text.trim()} is shorter than 1h (the shortest SLO window)` });
    else if (ms > SLO_MAX_WINDOW_MS) ctx.addIssue({ code: 'custom', message: `${text.trim()} is longer than the 30 days of history kept` });
    else if (ms > DAY_MS && ms % HOUR_MS !== 0) ctx.addIssue({ code: 'custom', message: `${text.trim()}: a window over 24h counts whole hours (e.g. ${formatDuration(Math.round(ms / HOUR_MS) * HOUR_MS)})` });
    else if (ms <= DAY_MS && ms % 60_000 !== 0) ctx.addIssue({ code: 'custom', message: `${text.trim()}: a window counts whole minutes` });
  })
  .transform((text) => ({ ms: parseDuration(text)!, label: text.trim() }))
  .meta({ description: 'rolling window of the objective: 1h to 30d (whole hours over 24h); default 30d' });

/** `slo:` under `defaults` and under a check: every key optional, merged key by key */
export const sloSchema = z
  .strictObject({
    objective: objective.optional(),
    window: window.optional(),
    enabled: z.boolean().optional().describe('false: this check has no SLO, whatever defaults.slo says'),
  })
  .describe('availability objective of a check over a rolling window; see docs/uptime.md');

export type SloInput = z.output<typeof sloSchema>;

/** The SLO of a check as the sidecar uses it. */
export interface SloConfig {
  /** 0 < objective < 1 */
  objective: number;
  windowMs: number;
  /** the window as written ("30d"), for labels and JSON */
  window: string;
}

/**
 * The effective SLO: the check's block over `defaults.slo`, key by key; none
 * when neither sets one (or the check says `slo: false`). Throws when a block
 * exists but no objective is set anywhere (the loader turns that into a
 * config error at `checks[i].slo`).
 */
export function resolveSlo(own: SloInput | undefined, defaults: SloInput | undefined): SloConfig | undefined {
  if ((own?.enabled ?? defaults?.enabled) === false) return undefined;
  if (own === undefined && defaults === undefined) return undefined;
  const objectiveRatio = own?.objective ?? defaults?.objective;
  if (objectiveRatio === undefined) throw new Error('objective is required (here or in defaults.slo)');
  const w = own?.window ?? defaults?.window;
  return { objective: objectiveRatio, windowMs: w?.ms ?? SLO_DEFAULT_WINDOW_MS, window: w?.label ?? formatDuration(SLO_DEFAULT_WINDOW_MS) };
}
