/**
 * Uptime answers from the run history, behind one narrow port (UptimeView):
 *
 *   GET /badges/{check}/health.svg                   the state (what /health/{check} shows anyone)
 *   GET /badges/{check}/uptime/{1h|24h|7d|30d}.svg   availability over the window
 *   GET /badges/{check}/response-time/{…}.svg        mean response time over the window
 *
 * and the JSON pieces /health/stats and /health/{check} add: the 24h, 7d
 * and 30d windows and the SLO block (docs/uptime.md has the shapes).
 *
 * Badges are SVG with a strong ETag (a hash of the bytes): If-None-Match
 * gets a 304; `no-cache` makes caches (GitHub's image proxy included) ask
 * again each time, cheaply. Uptime and response time are details: when the
 * request may not see details (server.showDetails), those badges answer 404,
 * as for a check that does not exist; the health badge shows no more than
 * /health/{check} shows to anyone. An unknown check is a 404, an unknown
 * badge or window a 400; both JSON {error:{code,message}}.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CheckConfig } from '../config/types';
import { HISTORY_WINDOWS, type History, type Summary } from '../health/history';
import type { HealthSnapshots } from '../health/snapshot';
import { sloReport, type SloReport } from '../health/slo';
import type { RequestContext, Router } from './app';
import { formatResponseTime, formatUptime, healthColor, renderBadge, responseTimeColor, uptimeColor, type HealthBadgeState } from './badge-svg';
import { HttpError, send } from './respond';

/** The windows a badge offers (Gatus: 1h, 24h, 7d; plus 30d). */
export const BADGE_WINDOWS = ['1h', '24h', '7d', '30d'] as const;
/** The history windows /health/stats adds to its per-run 1m, 5m, 1h. */
export const STATS_HISTORY_WINDOWS = ['24h', '7d', '30d'] as const;

export interface UptimeCheck {
  name: string;
  status: 'UP' | 'DOWN' | 'UNKNOWN';
  slow?: boolean;
  slo?: { objective: number; windowMs: number; window: string };
  latency?: { warnAbove?: number; failAbove?: number };
}

/** What the uptime answers read of the running sidecar. */
export interface UptimeView {
  check(name: string): UptimeCheck | undefined;
  /** the history window of `ms` ending now */
  window(name: string, ms: number): Summary;
  canSeeDetails(ctx: RequestContext): boolean;
  /** badges may be stored by shared caches (details are public: showDetails always) */
  detailsArePublic(): boolean;
}

export interface HistoryWindowJson {
  runs: number;
  /** ok runs / runs (rejected runs count as failed); null without runs */
  successRatio: number | null;
  failed: number;
  rejected: number;
  /** mean latency (ms) of the runs that reached the dependency; null without any */
  meanMs: number | null;
  /** share of the window's buckets that hold runs */
  coverage: number;
}

export function historyWindowJson(summary: Summary): HistoryWindowJson {
  return {
    runs: summary.runs,
    successRatio: summary.availability,
    failed: summary.failed,
    rejected: summary.rejected,
    meanMs: summary.meanLatencyMs,
    coverage: Math.round(summary.coverage * 1e6) / 1e6,
  };
}

/** the 24h, 7d and 30d windows of a check */
export function historyWindows(view: UptimeView, name: string): Record<(typeof STATS_HISTORY_WINDOWS)[number], HistoryWindowJson> {
  const out = {} as Record<(typeof STATS_HISTORY_WINDOWS)[number], HistoryWindowJson>;
  for (const w of STATS_HISTORY_WINDOWS) out[w] = historyWindowJson(view.window(name, HISTORY_WINDOWS[w]));
  return out;
}

/** the SLO report of a check, or null when it has no SLO */
export function sloJson(view: UptimeView, check: UptimeCheck): SloReport | null {
  if (!check.slo) return null;
  return sloReport(check.slo, check.slo.window, (ms) => view.window(check.name, ms));
}

/** history, SLO and windows of one check as /health/stats and /health/{check} show them */
export interface UptimeJson {
  history: Record<(typeof STATS_HISTORY_WINDOWS)[number], HistoryWindowJson>;
  slo: SloReport | null;
}

export function uptimeJson(view: UptimeView, name: string): UptimeJson | undefined {
  const check = view.check(name);
  if (!check) return undefined;
  return { history: historyWindows(view, name), slo: sloJson(view, check) };
}

/** What the status page shows of a check's history: availability per badge window, the SLO, the 24 h and 7 d charts. */
export function uptimeRow(view: UptimeView, history: Pick<History, 'series'>, name: string) {
  const check = view.check(name);
  const report = check ? sloJson(view, check) : null;
  return {
    uptime: BADGE_WINDOWS.map((w) => ({ window: w, availability: view.window(name, HISTORY_WINDOWS[w]).availability })),
    // 24 h in 15-minute periods, 7 d in hours
    charts: { day: history.series(name, 'minute', 15, 96), week: history.series(name, 'hour', 1, 168) },
    ...(report
      ? {
          slo: {
            objective: report.objective,
            window: report.window,
            availability: report.availability,
            remainingRatio: report.errorBudget.remainingRatio,
            totalMinutes: report.errorBudget.totalMinutes,
            remainingMinutes: report.errorBudget.remainingMinutes,
            coverage: report.coverage,
          },
        }
      : {}),
  };
}

/** The UptimeView of a running sidecar: states from the health snapshot, SLO and latency budget from the current config. */
export function createUptimeView(options: {
  health: HealthSnapshots;
  checkConfig: (name: string) => Pick<CheckConfig, 'slo' | 'latency'> | undefined;
  history: Pick<History, 'window'>;
  canSeeDetails: (ctx: RequestContext) => boolean;
  detailsArePublic: () => boolean;
}): UptimeView {
  return {
    check(name) {
      const state = options.health.current().checks.find((c) => c.name === name);
      if (!state) return undefined;
      const config = options.checkConfig(name);
      return {
        name,
        status: state.status,
        ...(state.slow ? { slow: true } : {}),
        ...(config?.slo ? { slo: config.slo } : {}),
        ...(config?.latency ? { latency: config.latency } : {}),
      };
    },
    window: (name, ms) => options.history.window(name, ms),
    canSeeDetails: options.canSeeDetails,
    detailsArePublic: options.detailsArePublic,
  };
}

const BADGE_PATH = /^([^/]+)\/(?:(health)\.svg|(uptime|response-time)\/([^/]+)\.svg)$/;

export function registerBadgeRoutes(router: Router, view: UptimeView): void {
  router.addPrefix(
    '/badges/',
    ['GET'],
    (req, res, ctx) => {
      for (const key of ctx.url.searchParams.keys()) throw new HttpError(400, 'bad_parameter', `unknown query parameter "${key.slice(0, 40)}"`);
      const m = BADGE_PATH.exec(ctx.param ?? '');
      if (!m) throw new HttpError(404, 'not_found', 'badges: /badges/{check}/health.svg, /badges/{check}/uptime/{window}.svg, /badges/{check}/response-time/{window}.svg');
      const [, name, health, kind, windowName] = m as unknown as [string, string, string | undefined, string | undefined, string | undefined];
      const check = view.check(name);
      if (!check) throw new HttpError(404, 'unknown_check', `no check named "${name.slice(0, 64)}"`);
      if (health) {
        const state: HealthBadgeState = check.status === 'UP' && check.slow ? 'SLOW' : check.status;
        sendBadge(req, res, renderBadge('health', state === 'UNKNOWN' ? 'unknown' : state.toLowerCase(), healthColor(state)), true); // the state is public, like /health/{check}
        return;
      }
      if (!(BADGE_WINDOWS as readonly string[]).includes(windowName!)) throw new HttpError(400, 'bad_window', `window must be one of ${BADGE_WINDOWS.join(', ')}`);
      // uptime and latency are details: hidden like an unknown check
      if (!view.canSeeDetails(ctx)) throw new HttpError(404, 'unknown_check', `no check named "${name.slice(0, 64)}"`);
      const summary = view.window(name, HISTORY_WINDOWS[windowName as (typeof BADGE_WINDOWS)[number]]);
      const svg =
        kind === 'uptime'
          ? renderBadge(`uptime ${windowName}`, formatUptime(summary.availability), uptimeColor(summary.availability, check.slo?.objective))
          : renderBadge(`response time ${windowName}`, formatResponseTime(summary.meanLatencyMs), responseTimeColor(summary.meanLatencyMs, check.latency));
      sendBadge(req, res, svg, view.detailsArePublic());
    },
    /^[^/]+\/.+$/,
  );
}

function sendBadge(req: IncomingMessage, res: ServerResponse, svg: string, shared: boolean): void {
  const etag = `"${createHash('sha256').update(svg).digest('base64url').slice(0, 22)}"`;
  const headers = {
    etag,
    'cache-control': `${shared ? 'public' : 'private'}, no-cache`,
    // an SVG opened on its own is a document: no scripts, no fetches
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  };
  const match = req.headers['if-none-match'];
  if (match && match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag || tag.trim() === '*')) {
    res.writeHead(304, { ...headers, 'x-content-type-options': 'nosniff' });
    res.end();
    return;
  }
  send(req, res, 200, svg, 'image/svg+xml; charset=utf-8', headers);
}
