/**
 * Server-side rendering of the status page. One renderer for the first load
 * and for every refresh (the script swaps in /status/fragment), so what the
 * page shows can never drift between server and browser. Every dynamic
 * string is HTML-escaped; no inline script or style (the CSP forbids them).
 * State is shown by colour AND text AND symbol, never colour alone.
 */
import type { IncidentJson } from '../../health/incidents';
import type { Sample } from '../../health/stats';
import { budgetBar, responseTimeChart, type ChartPoint } from './chart';
import { ago, escapeHtml, formatDuration, formatMs } from './format';

export type RowStatus = 'UP' | 'DOWN' | 'UNKNOWN' | 'DEGRADED';

export interface CheckRow {
  name: string;
  status: 'UP' | 'DOWN' | 'UNKNOWN';
  slow?: boolean;
  kind?: string;
  critical?: boolean;
  latencyMs?: number | null;
  message?: string;
  lastChangeAt?: number | null;
  lastCheckedAt?: number | null;
  p95Ms5m?: number | null;
  successRatio1h?: number | null;
  recent?: Sample[];
  /** from the uptime history (details only): availability per window, oldest window last */
  uptime?: { window: string; availability: number | null }[];
  /** response time and availability per period: 24 h in 15-minute periods, 7 d in hours */
  charts?: { day: ChartPoint[]; week: ChartPoint[] };
  /** the check's SLO, when it has one */
  slo?: { objective: number; window: string; availability: number | null; remainingRatio: number | null; totalMinutes: number; remainingMinutes: number | null; coverage?: number };
}

/** why the viewer sees no details: showDetails never; when-authorized with no key configured; or without a valid key */
export type HiddenReason = 'never' | 'no-keys' | 'key-required';

export interface PageModel {
  title: string;
  details: boolean;
  hiddenReason?: HiddenReason;
  overall: RowStatus;
  groups: Record<string, RowStatus>;
  checks: CheckRow[];
  incidents: IncidentJson[];
  now: number;
  refreshSeconds: number;
}

const SYMBOL: Record<RowStatus, string> = { UP: '✓', DOWN: '✗', UNKNOWN: '?', DEGRADED: '!' };

function badge(status: RowStatus, label: string = status): string {
  return `<span class="badge s-${status.toLowerCase()}"><span aria-hidden="true">${SYMBOL[status]}</span> ${escapeHtml(label)}</span>`;
}

/** Inline SVG sparkline of recent latencies; failed runs are marked with a red dot. */
export function sparkline(samples: readonly Sample[], width = 120, height = 28): string {
  const points = samples.filter((s) => s.outcome !== 'rejected');
  if (points.length === 0) return '<span class="muted">no data</span>';
  const max = Math.max(...points.map((p) => p.latencyMs), 1);
  const min = Math.min(...points.map((p) => p.latencyMs));
  const step = points.length > 1 ? (width - 4) / (points.length - 1) : 0;
  const xy = points.map((p, i) => [2 + i * step, height - 2 - ((p.latencyMs / max) * (height - 4))] as const);
  const line = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  const dots = points
    .map((p, i) => (p.ok ? '' : `<circle cx="${xy[i]![0].toFixed(1)}" cy="${xy[i]![1].toFixed(1)}" r="2.5" class="spark-fail"/>`))
    .join('');
  const failed = points.filter((p) => !p.ok).length;
  const label = `latency of the last ${points.length} runs: ${formatMs(min)} to ${formatMs(max)}${failed ? `, ${failed} failed` : ''}`;
  return `<svg class="spark" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(label)}"><title>${escapeHtml(label)}</title><polyline points="${line}" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"/>${dots}</svg>`;
}

const SEVERITY: Record<RowStatus, number> = { DOWN: 0, DEGRADED: 1, UNKNOWN: 2, UP: 3 };

/** Page order: DOWN, DEGRADED (UP but slow), UNKNOWN, UP; by name within each. */
export function bySeverity(a: CheckRow, b: CheckRow): number {
  return SEVERITY[rowStatus(a).status] - SEVERITY[rowStatus(b).status] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

const HIDDEN_NOTE: Record<HiddenReason, string> = {
  never: 'Details (latency, messages, incidents) are not shown: server.showDetails is never.',
  'no-keys': 'Details (latency, messages, incidents) are not shown to anyone: server.showDetails is when-authorized, but no API key is configured (server.auth.keys).',
  'key-required': 'Details (latency, messages, incidents) are shown only to requests with an API key (server.showDetails: when-authorized).',
};

function rowStatus(row: CheckRow): { status: RowStatus; label: string } {
  if (row.status === 'UP' && row.slow) return { status: 'DEGRADED', label: 'SLOW' };
  return { status: row.status, label: row.status };
}

function checkRow(row: CheckRow, model: PageModel): string {
  const { status, label } = rowStatus(row);
  const name = `<th scope="row" class="name">${escapeHtml(row.name)}${model.details && row.critical === false ? ' <span class="muted">(non-critical)</span>' : ''}</th>`;
  const state = `<td class="state" data-label="State">${badge(status, label)}</td>`;
  if (!model.details) return `<tr class="row s-${status.toLowerCase()}" data-check="${escapeHtml(row.name)}" data-status="${status}">${name}${state}</tr>`;
  const ratio = row.successRatio1h === null || row.successRatio1h === undefined ? '—' : `${(row.successRatio1h * 100).toFixed(1)}%`;
  return [
    `<tr class="row s-${status.toLowerCase()}" data-check="${escapeHtml(row.name)}" data-status="${status}">`,
    name,
    state,
    `<td class="latency" data-label="Latency">${formatMs(row.latencyMs)}<span class="muted small"> p95 5m ${formatMs(row.p95Ms5m)}</span></td>`,
    `<td class="trend" data-label="Trend">${sparkline(row.recent ?? [])}</td>`,
    `<td class="ratio" data-label="Success 1h">${ratio}</td>`,
    `<td class="changed" data-label="Last change">${row.lastChangeAt ? `<time datetime="${new Date(row.lastChangeAt).toISOString()}">${ago(row.lastChangeAt, model.now)}</time>` : '—'}</td>`,
    `<td class="message" data-label="Message">${escapeHtml(row.message ?? '')}</td>`,
    '</tr>',
    historyRow(row),
  ].join('');
}

/** percent with up to 3 decimals, rounded down (99.9996 % is not 100 %) */
export function formatPercent(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined) return '—';
  if (ratio >= 1) return '100%';
  return `${(Math.floor(ratio * 100_000 + 1e-9) / 1000).toString()}%`;
}

/** the uptime history of a check: availability per window, its SLO budget, the 24 h and 7 d charts */
function historyRow(row: CheckRow): string {
  if (!row.uptime && !row.charts && !row.slo) return '';
  const uptime = row.uptime
    ? `<dl class="uptime" aria-label="availability">${row.uptime.map((u) => `<div><dt>${escapeHtml(u.window)}</dt><dd>${formatPercent(u.availability)}</dd></div>`).join('')}</dl>`
    : '';
  const young = row.slo?.coverage !== undefined && row.slo.coverage < 1 ? ` <span class="small muted">(runs in ${Math.floor(row.slo.coverage * 100)}% of the window)</span>` : '';
  const slo = row.slo
    ? `<p class="slo"><span class="small muted">SLO ${formatPercent(row.slo.objective)} / ${escapeHtml(row.slo.window)}:</span> ${formatPercent(row.slo.availability)} ${budgetBar(row.slo.remainingRatio, row.slo.totalMinutes, row.slo.remainingMinutes)}${young}</p>`
    : '';
  const objective = row.slo?.objective;
  const hasRuns = row.charts && [...row.charts.day, ...row.charts.week].some((p) => p.runs > 0);
  const charts = !row.charts
    ? ''
    : hasRuns
      ? `<div class="charts">${responseTimeChart(row.charts.day, '24 h', '15 min', objective)}${responseTimeChart(row.charts.week, '7 d', 'hour', objective)}</div>`
      : '<p class="small muted charts">No runs recorded yet: no response-time chart.</p>';
  return `<tr class="history-row" data-history="${escapeHtml(row.name)}"><td colspan="7"><div class="history"><div class="numbers">${uptime}${slo}</div>${charts}</div></td></tr>`;
}

function incidentsSection(model: PageModel): string {
  if (!model.details) return '';
  const items = model.incidents.length
    ? model.incidents
        .map(
          (i) =>
            `<li class="incident ${i.open ? 'open' : 'closed'}">${badge(i.open ? 'DOWN' : 'UP', i.open ? 'ONGOING' : 'RESOLVED')} <strong>${escapeHtml(i.check)}</strong> ` +
            `<time datetime="${i.start}">${escapeHtml(i.start.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))}</time> · ${formatDuration(i.durationMs)} · ${i.failedProbes} failed probe(s)` +
            `<div class="muted small">first error: ${escapeHtml(i.firstError)}</div></li>`,
        )
        .join('')
    : '<li class="muted">No incidents recorded.</li>';
  return `<section aria-labelledby="incidents-h"><h2 id="incidents-h">Incidents</h2><ul class="incidents">${items}</ul></section>`;
}

/** The part of the page that refreshes. */
export function renderFragment(model: PageModel): string {
  const groups = Object.entries(model.groups)
    .map(([name, status]) => `<li>${escapeHtml(name)} ${badge(status)}</li>`)
    .join('');
  const header = model.details
    ? '<tr><th scope="col">Check</th><th scope="col">State</th><th scope="col">Latency</th><th scope="col">Trend</th><th scope="col">Success 1h</th><th scope="col">Last change</th><th scope="col">Message</th></tr>'
    : '<tr><th scope="col">Check</th><th scope="col">State</th></tr>';
  const rows = model.checks.length
    ? model.checks.map((row) => checkRow(row, model)).join('')
    : `<tr><td colspan="${model.details ? 7 : 2}" class="muted">No checks configured.</td></tr>`;
  return [
    `<section class="summary s-${model.overall.toLowerCase()}" data-overall="${model.overall}" aria-live="polite">`,
    `<p class="overall">Overall ${badge(model.overall)}</p><ul class="groups" aria-label="groups">${groups}</ul></section>`,
    `<table class="checks"><caption class="sr-only">Checks and their state</caption><thead>${header}</thead><tbody>${rows}</tbody></table>`,
    model.details ? '' : `<p class="muted small details-note">${escapeHtml(HIDDEN_NOTE[model.hiddenReason ?? 'key-required'])}</p>`,
    incidentsSection(model),
  ].join('');
}

export function renderPage(model: PageModel): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${model.overall} — ${escapeHtml(model.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="status/app.css">
<script src="status/app.js" defer></script>
</head>
<body data-refresh="${model.refreshSeconds}" data-title="${escapeHtml(model.title)}">
<header><h1>${escapeHtml(model.title)}</h1><p class="muted small">Updated <span id="updated">${new Date(model.now).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</span> · refreshes every ${model.refreshSeconds}s<span id="stale" class="stale" hidden> · connection lost, retrying</span></p></header>
<main id="status">${renderFragment(model)}</main>
<noscript><p class="muted small">Reload the page to refresh.</p></noscript>
</body>
</html>
`;
}
