/**
 * Hand-drawn SVG for the status page (no chart library, no external
 * requests, nothing the CSP forbids: presentation attributes and classes,
 * no inline style or script):
 *  - responseTimeChart: mean response time per period as a line (broken
 *    where a period has no runs), with an availability strip under it, one
 *    cell per period: green all runs ok, amber some failed, red under the
 *    SLO objective (or under 90 % without one), grey no runs;
 *  - budgetBar: the share of the error budget left.
 * Every chart carries a text alternative (role="img", aria-label, <title>)
 * saying what it shows in numbers.
 */
import type { Summary } from '../../health/history';
import { escapeHtml, formatMs } from './format';

export type ChartPoint = Pick<Summary, 'from' | 'runs' | 'ok' | 'failed' | 'rejected' | 'availability' | 'meanLatencyMs'>;

const WIDTH = 300;
const PLOT_TOP = 6;
const PLOT_HEIGHT = 56;
const STRIP_TOP = PLOT_TOP + PLOT_HEIGHT + 4;
const STRIP_HEIGHT = 8;
const HEIGHT = STRIP_TOP + STRIP_HEIGHT;

/** 1, 2, 5 × 10^k at or above `value` (an axis maximum people can read) */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power + 1e-12) return step * power;
  return 10 * power;
}

/** class of a period's availability cell */
export function cellClass(point: ChartPoint, objective?: number): string {
  if (point.runs === 0 || point.availability === null) return 'c-none';
  if (point.availability >= 1) return 'c-ok';
  return point.availability >= (objective ?? 0.9) ? 'c-some' : 'c-bad';
}

/**
 * Response time and availability over consecutive periods (oldest first).
 * `span` names the whole range ("24 h"), `period` one point ("15 min").
 */
export function responseTimeChart(points: readonly ChartPoint[], span: string, period: string, objective?: number): string {
  const n = points.length;
  const step = WIDTH / Math.max(1, n);
  const latencies = points.map((p) => p.meanLatencyMs).filter((v): v is number => v !== null);
  const max = niceCeiling(Math.max(0, ...latencies));
  const y = (ms: number) => PLOT_TOP + PLOT_HEIGHT - (ms / max) * PLOT_HEIGHT;
  // one polyline per run of consecutive periods with data
  const segments: string[] = [];
  let current: string[] = [];
  points.forEach((p, i) => {
    if (p.meanLatencyMs === null) {
      if (current.length) segments.push(current.join(' '));
      current = [];
      return;
    }
    current.push(`${(i * step + step / 2).toFixed(1)},${y(p.meanLatencyMs).toFixed(1)}`);
  });
  if (current.length) segments.push(current.join(' '));
  const lines = segments
    .map((s) => (s.includes(' ') ? `<polyline class="rt-line" points="${s}" fill="none" stroke-width="1.5" stroke-linejoin="round"/>` : `<circle class="rt-dot" cx="${s.split(',')[0]}" cy="${s.split(',')[1]}" r="1.8"/>`))
    .join('');
  const cells = points
    .map((p, i) => `<rect class="${cellClass(p, objective)}" x="${(i * step).toFixed(2)}" y="${STRIP_TOP}" width="${Math.max(0.5, step - 0.6).toFixed(2)}" height="${STRIP_HEIGHT}"><title>${escapeHtml(periodTitle(p))}</title></rect>`)
    .join('');
  const withRuns = points.filter((p) => p.runs > 0);
  const failedPeriods = withRuns.filter((p) => (p.availability ?? 1) < 1).length;
  const label = latencies.length
    ? `mean response time over ${span}, per ${period}: ${formatMs(Math.min(...latencies))} to ${formatMs(Math.max(...latencies))}; ${failedPeriods} of ${withRuns.length} periods with failed runs`
    : `no runs in the last ${span}`;
  const grid = [0.5, 1].map((f) => `<line class="rt-grid" x1="0" x2="${WIDTH}" y1="${y(max * f).toFixed(1)}" y2="${y(max * f).toFixed(1)}"/>`).join('');
  return (
    `<figure class="chart"><figcaption class="small muted">Response time ${escapeHtml(span)} <span class="axis">(max ${formatMs(max)})</span></figcaption>` +
    `<svg class="rt" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escapeHtml(label)}"><title>${escapeHtml(label)}</title>` +
    `${grid}<line class="rt-axis" x1="0" x2="${WIDTH}" y1="${PLOT_TOP + PLOT_HEIGHT}" y2="${PLOT_TOP + PLOT_HEIGHT}"/>${lines}${cells}</svg></figure>`
  );
}

function periodTitle(p: ChartPoint): string {
  const at = new Date(p.from).toISOString().replace('T', ' ').replace(/:00\.000Z$/, 'Z');
  if (p.runs === 0) return `${at}: no runs`;
  const bad = p.failed + p.rejected;
  return `${at}: ${p.runs} runs, ${bad} failed${p.rejected ? ` (${p.rejected} rejected)` : ''}, mean ${formatMs(p.meanLatencyMs)}`;
}

/** the error budget left, as a bar (remaining ratio; negative = overspent) */
export function budgetBar(remainingRatio: number | null, totalMinutes: number, remainingMinutes: number | null): string {
  const width = 120;
  if (remainingRatio === null) return '<span class="muted">no runs yet</span>';
  const share = Math.max(0, Math.min(1, remainingRatio));
  const cls = remainingRatio >= 0.5 ? 'b-ok' : remainingRatio >= 0.25 ? 'b-low' : 'b-out';
  const text = remainingRatio < 0
    ? `budget overspent by ${formatMinutes(-(remainingMinutes ?? 0))} (budget ${formatMinutes(totalMinutes)})`
    : `${Math.floor(remainingRatio * 1000) / 10}% of budget left (${formatMinutes(remainingMinutes ?? 0)} of ${formatMinutes(totalMinutes)})`;
  return (
    `<svg class="budget" viewBox="0 0 ${width} 10" width="${width}" height="10" role="img" aria-label="${escapeHtml(text)}"><title>${escapeHtml(text)}</title>` +
    `<rect class="b-track" width="${width}" height="10" rx="2"/><rect class="${cls}" width="${(share * width).toFixed(1)}" height="10" rx="2"/></svg>` +
    ` <span class="small">${escapeHtml(text)}</span>`
  );
}

export function formatMinutes(minutes: number): string {
  if (minutes < 1) return `${Math.round(minutes * 60)} s`;
  if (minutes < 120) return `${(Math.round(minutes * 10) / 10).toString()} min`;
  return `${(Math.round((minutes / 60) * 10) / 10).toString()} h`;
}
