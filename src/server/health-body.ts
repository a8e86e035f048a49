/**
 * The fields /health and /health/{check} carry besides the verdicts
 * (docs/probes.md "Health body"): when the answer was made, how long the
 * sidecar has run, per check when it last ran, since when its status holds,
 * how long the last run took and what the last answer was, and counts per
 * status. Additive: no existing field changes meaning.
 */
import type { CheckState, CheckStatus } from '../health/state';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** `timestamp` (RFC 3339, UTC, ms) and `uptimeSeconds` (whole seconds since the sidecar started). */
export function envelope(startedAt: number, now: number): { timestamp: string; uptimeSeconds: number } {
  return { timestamp: new Date(now).toISOString(), uptimeSeconds: Math.max(0, Math.floor((now - startedAt) / 1000)) };
}

/** Checks per status; every status is present (0 when none). */
export function summary(checks: readonly Pick<CheckState, 'status'>[]): Record<CheckStatus, number> & { total: number } {
  const counts = { UP: 0, DOWN: 0, UNKNOWN: 0, total: checks.length };
  for (const check of checks) counts[check.status]++;
  return counts;
}

/** A check's timing fields beside lastCheckedAt (shown with details): `since` = when the status last changed (null before the first result). */
export function checkTiming(state: CheckState): { since: string | null; durationMs: number | null; response?: CheckState['response']; errorCode?: string } {
  return {
    since: iso(state.lastChangeAt),
    durationMs: state.lastDurationMs,
    ...(state.response ? { response: state.response } : {}),
    // why the last run failed, as a stable code (docs/probes.md, "Error codes"); absent after a success
    ...(state.errorCode ? { errorCode: state.errorCode } : {}),
  };
}
