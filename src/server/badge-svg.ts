/**
 * Badges like Gatus's (shields.io "flat" look): a grey label, a coloured
 * value, 20 px high. Pure: text in, SVG out. Every text is XML-escaped; the
 * width follows the text (per-character widths of an 11 px sans-serif, so a
 * long check name or value never overflows its box).
 *
 * Colours (Gatus's scale, https://github.com/TwiN/gatus — "badges"):
 *   #40cc11 awesome · #94cc11 great · #ccd311 good · #ccb311 passable · #cc8111 bad · #c7130a very bad
 *   #9f9f9f no data
 */
export const BADGE_COLOR = {
  awesome: '#40cc11',
  great: '#94cc11',
  good: '#ccd311',
  passable: '#ccb311',
  bad: '#cc8111',
  veryBad: '#c7130a',
  noData: '#9f9f9f',
} as const;

/** Gatus's default response-time thresholds (ms): ≤ 50 awesome, ≤ 200 great, ≤ 300 good, ≤ 500 passable, ≤ 750 bad, above very bad. */
export const DEFAULT_RESPONSE_TIME_THRESHOLDS = [50, 200, 300, 500, 750] as const;
const SCALE = [BADGE_COLOR.awesome, BADGE_COLOR.great, BADGE_COLOR.good, BADGE_COLOR.passable, BADGE_COLOR.bad] as const;

/**
 * Uptime colour. Without an SLO, Gatus's scale: ≥ 97.5 % awesome, ≥ 95 % great,
 * ≥ 90 % good, ≥ 80 % passable, ≥ 65 % bad, below very bad. With an SLO the
 * objective is the bar: at or above it awesome; below it by less than one more
 * budget (≥ 1 − 2·(1 − o)) passable; further below very bad.
 */
export function uptimeColor(availability: number | null, objective?: number): string {
  if (availability === null) return BADGE_COLOR.noData;
  if (objective !== undefined) {
    if (availability >= objective) return BADGE_COLOR.awesome;
    if (availability >= 1 - 2 * (1 - objective)) return BADGE_COLOR.passable;
    return BADGE_COLOR.veryBad;
  }
  const steps = [0.975, 0.95, 0.9, 0.8, 0.65];
  const index = steps.findIndex((s) => availability >= s);
  return index === -1 ? BADGE_COLOR.veryBad : SCALE[index]!;
}

/**
 * Response-time colour. With the check's latency budget: ≤ warnAbove awesome,
 * ≤ failAbove passable, above very bad (a bound that is not set is skipped);
 * without one, Gatus's thresholds.
 */
export function responseTimeColor(meanMs: number | null, budget?: { warnAbove?: number; failAbove?: number }): string {
  if (meanMs === null) return BADGE_COLOR.noData;
  if (budget && (budget.warnAbove !== undefined || budget.failAbove !== undefined)) {
    if (budget.warnAbove !== undefined && meanMs <= budget.warnAbove) return BADGE_COLOR.awesome;
    if (budget.failAbove === undefined || meanMs <= budget.failAbove) return budget.warnAbove === undefined ? BADGE_COLOR.awesome : BADGE_COLOR.passable;
    return BADGE_COLOR.veryBad;
  }
  const index = DEFAULT_RESPONSE_TIME_THRESHOLDS.findIndex((t) => meanMs <= t);
  return index === -1 ? BADGE_COLOR.veryBad : SCALE[index]!;
}

export type HealthBadgeState = 'UP' | 'DOWN' | 'UNKNOWN' | 'SLOW';

export function healthColor(state: HealthBadgeState): string {
  return { UP: BADGE_COLOR.awesome, DOWN: BADGE_COLOR.veryBad, SLOW: BADGE_COLOR.passable, UNKNOWN: BADGE_COLOR.noData }[state];
}

/**
 * Availability as a badge shows it: two decimals, rounded DOWN, so 99.999 %
 * reads 99.99 % (never 100 % unless every run succeeded); trailing zeros dropped.
 */
export function formatUptime(availability: number | null): string {
  if (availability === null) return 'no data';
  if (availability >= 1) return '100%';
  const floored = Math.floor(availability * 10_000 + 1e-9) / 100; // 1e-9: 0.29 × 10,000 is 2899.9999…
  return `${floored.toFixed(2).replace(/\.?0+$/, '')}%`;
}

export function formatResponseTime(meanMs: number | null): string {
  if (meanMs === null) return 'no data';
  if (meanMs < 10) return `${(Math.round(meanMs * 10) / 10).toString()}ms`;
  if (meanMs < 10_000) return `${Math.round(meanMs)}ms`;
  return `${(meanMs / 1000).toFixed(1)}s`;
}

// Advance widths (px) of an 11 px DejaVu Sans / Verdana-like face, for the characters badges use.
const NARROW = new Set([...'fijlrtI!.,:;|\'()[] ']);
const WIDE = new Set([...'mwMW%@']);
function textWidth(text: string): number {
  let width = 0;
  for (const c of text) width += NARROW.has(c) ? 3.9 : WIDE.has(c) ? 10.4 : /[A-Z0-9]/.test(c) ? 7.6 : 6.9;
  return Math.ceil(width);
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A flat two-part badge: `label` on grey, `value` on `color`. */
export function renderBadge(label: string, value: string, color: string): string {
  const pad = 6;
  const labelWidth = textWidth(label) + 2 * pad;
  const valueWidth = textWidth(value) + 2 * pad;
  const width = labelWidth + valueWidth;
  const l = escapeXml(label);
  const v = escapeXml(value);
  const title = `${l}: ${v}`;
  const labelX = labelWidth / 2;
  const valueX = labelWidth + valueWidth / 2;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="20" viewBox="0 0 ${width} 20" role="img" aria-label="${title}">
<title>${title}</title>
<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>
<clipPath id="r"><rect width="${width}" height="20" rx="3" fill="#fff"/></clipPath>
<g clip-path="url(#r)"><rect width="${labelWidth}" height="20" fill="#555"/><rect x="${labelWidth}" width="${valueWidth}" height="20" fill="${escapeXml(color)}"/><rect width="${width}" height="20" fill="url(#s)"/></g>
<g fill="#fff" text-anchor="middle" font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11">
<text x="${labelX}" y="15" fill="#010101" fill-opacity=".3">${l}</text><text x="${labelX}" y="14">${l}</text>
<text x="${valueX}" y="15" fill="#010101" fill-opacity=".3">${v}</text><text x="${valueX}" y="14">${v}</text>
</g>
</svg>
`;
}
