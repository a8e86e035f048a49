/**
 * What the on-call engineer reads:
 *   GET  /health/stats                 p50/p95/p99 latency and success ratio per check over 1m, 5m, 1h
 *                                      (?recent=N adds the last N samples per check)
 *   GET  /health/incidents             recent DOWN periods, newest first (?limit=N, ?check=NAME)
 *   GET  /                             the status page (server-rendered; ?refresh=SECONDS)
 *   GET  /status/fragment              the refreshing part of the page (what its script swaps in)
 *   GET  /status/app.css, /status/app.js
 *   GET  /admin/notifications/dead     dead letters (admin key)
 *   POST /admin/notifications/dead     retry them now (?id=, ?target= select some)
 *   GET  /admin/notifications/pending  messages waiting for delivery (admin key)
 *
 * Stats and incidents are details (latencies, error messages): they follow
 * server.showDetails — 401 without a valid key when details need one, 403
 * when details are never shown. The status page shows every check's state to
 * anyone, and latencies, messages, sparklines and incidents only when the
 * viewer may see details. The page and its fragment always answer 200 (a DOWN
 * dependency is content, not an error of the page).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WINDOWS, type LatencyStats, type WindowName } from '../health/stats';
import type { Logger } from 'pino';
import type { SidecarConfig } from '../config/types';
import type { IncidentLog } from '../health/incidents';
import type { HealthSnapshots } from '../health/snapshot';
import type { HealthStore } from '../health/state';
import type { NotificationService } from '../notify/service';
import type { UptimeTracker } from '../persist/uptime';
import type { Redactor } from '../redact';
import type { Authenticator } from './auth';
import type { UptimeView } from './uptime';
import type { RequestContext, Router } from './app';
import { requireKey, unauthorized } from './auth';
import { SharedBody } from './encoding';
import { HttpError, send, sendJson } from './respond';
import { STATUS_CSS, STATUS_JS } from './status-page/assets';
import { STATS_HISTORY_WINDOWS, uptimeJson, uptimeRow } from './uptime';
import { bySeverity, renderFragment, renderPage, type CheckRow, type HiddenReason, type PageModel, type RowStatus } from './status-page/render';

const SPARK_SAMPLES = 30;
/** a rendered page is reused at most this long (its relative times: "checked 3 s ago") */
const PAGE_REUSE_MS = 1000;
const PAGE_CACHE_ENTRIES = 4;
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function onlyParams(ctx: RequestContext, allowed: readonly string[]): void {
  for (const key of ctx.url.searchParams.keys()) {
    if (!allowed.includes(key)) throw new HttpError(400, 'bad_parameter', `unknown query parameter "${key.slice(0, 40)}"${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`);
  }
}

function intParam(ctx: RequestContext, name: string, min: number, max: number, fallback: number): number {
  const raw = ctx.url.searchParams.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new HttpError(400, 'bad_parameter', `${name} must be a whole number from ${min} to ${max}`);
  }
  return Number(raw);
}

/** What the on-call routes read: the Sidecar provides it (server code never imports the Sidecar). */
export interface StatusSource {
  readonly store: HealthStore;
  readonly health: HealthSnapshots;
  readonly stats: LatencyStats;
  readonly incidents: IncidentLog;
  readonly notifications: NotificationService;
  readonly uptime: UptimeTracker;
  readonly uptimeView: UptimeView;
  readonly config: SidecarConfig;
  readonly redactor: Redactor;
  readonly authenticator: Authenticator;
  readonly serviceName: string;
  readonly logger: Logger;
  canSeeDetails(ctx: RequestContext): boolean;
}

export function registerStatusRoutes(router: Router, sidecar: StatusSource): void {
  const oncall = () => sidecar;

  /** why this request sees no details; undefined when it does */
  const hiddenReason = (ctx: RequestContext): HiddenReason | undefined => {
    if (sidecar.canSeeDetails(ctx)) return undefined;
    if (sidecar.config.server.showDetails === 'never') return 'never';
    return sidecar.authenticator.enabled ? 'key-required' : 'no-keys';
  };
  /**
   * details endpoints: 401/403 instead of a silently emptied body. 401 only
   * when a key could help: when-authorized with no key configured is 403 like
   * never (a 401 would send clients looking for a key that cannot exist).
   */
  const requireDetails = (ctx: RequestContext) => {
    const reason = hiddenReason(ctx);
    if (reason === 'never') throw new HttpError(403, 'details_disabled', 'details are disabled (server.showDetails: never)');
    if (reason === 'no-keys') throw new HttpError(403, 'details_disabled', 'details are disabled: server.showDetails is when-authorized, but no API key is configured (server.auth.keys)');
    if (reason) throw unauthorized(ctx.identity);
  };

  router.add('/health/stats', ['GET'], (req, res, ctx) => {
    onlyParams(ctx, ['recent']);
    requireDetails(ctx);
    const recent = intParam(ctx, 'recent', 0, 500, 0);
    const checks: Record<string, unknown> = {};
    for (const state of sidecar.store.all()) {
      const stats = oncall().stats.of(state.name);
      checks[state.name] = {
        status: state.status,
        samples: stats.samples,
        capacity: stats.capacity,
        windows: stats.windows,
        // the uptime history (24h, 7d, 30d) and the SLO block (null without an SLO): docs/uptime.md
        ...uptimeJson(sidecar.uptimeView, state.name),
        ...(recent > 0 ? { recent: oncall().stats.recent(state.name, recent).map((s) => ({ at: new Date(s.at).toISOString(), latencyMs: round(s.latencyMs), outcome: s.outcome })) } : {}),
      };
    }
    sendJson(req, res, 200, { windows: Object.keys(WINDOWS), historyWindows: STATS_HISTORY_WINDOWS, historyPersisted: sidecar.uptime.persisted, percentileMethod: 'nearest-rank', checks });
  });

  router.add('/health/incidents', ['GET'], (req, res, ctx) => {
    onlyParams(ctx, ['limit', 'check']);
    requireDetails(ctx);
    const limit = intParam(ctx, 'limit', 1, 10_000, 50);
    const check = ctx.url.searchParams.get('check');
    if (check !== null && !sidecar.store.get(check) && !oncall().incidents.list().some((i) => i.check === check)) {
      throw new HttpError(404, 'unknown_check', `no check named "${check.slice(0, 64)}"`);
    }
    const log = oncall().incidents;
    const all = log.list().filter((i) => check === null || i.check === check);
    sendJson(req, res, 200, { open: all.filter((i) => i.endedAt === null).length, total: all.length, incidents: all.slice(0, limit).map((i) => log.toJson(i)) });
  });

  const model = (ctx: RequestContext, refreshSeconds: number): PageModel => {
    const details = sidecar.canSeeDetails(ctx);
    const snapshot = sidecar.health.current();
    const states = snapshot.checks;
    const groupStatus: Record<string, RowStatus> = {};
    for (const [name, view] of Object.entries(snapshot.groups)) groupStatus[name] = view.status;
    const checks: CheckRow[] = states
      .map((s) => {
        if (!details) return { name: s.name, status: s.status, slow: s.slow };
        const stats = oncall().stats.of(s.name);
        return {
          name: s.name,
          status: s.status,
          slow: s.slow,
          kind: s.kind,
          critical: s.critical,
          latencyMs: s.latencyMs,
          message: sidecar.redactor.text(s.message),
          lastChangeAt: s.lastChangeAt,
          lastCheckedAt: s.lastCheckedAt,
          p95Ms5m: stats.windows['5m' as WindowName].p95,
          successRatio1h: stats.windows['1h' as WindowName].successRatio,
          recent: oncall().stats.recent(s.name, SPARK_SAMPLES),
          ...uptimeRow(sidecar.uptimeView, sidecar.uptime.history, s.name),
        };
      })
      .sort(bySeverity);
    const hidden = hiddenReason(ctx);
    return {
      title: `${sidecar.serviceName} health`,
      details,
      ...(hidden ? { hiddenReason: hidden } : {}),
      overall: snapshot.overall,
      groups: groupStatus,
      checks,
      incidents: details ? oncall().incidents.list().slice(0, 20).map((i) => oncall().incidents.toJson(i)) : [],
      now: Date.now(),
      refreshSeconds,
    };
  };

  const html = (req: IncomingMessage, res: ServerResponse, body: SharedBody) =>
    send(req, res, 200, body.payload, 'text/html; charset=utf-8', { 'content-security-policy': PAGE_CSP, 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' }, { gzip: body.gzip });

  /**
   * Rendered pages, reused while nothing they show has changed (issue 14.2):
   * the page with details for 13 checks is ~400 KB and ~16 ms to render, so
   * viewers and fragment polls share one render (and one gzip) until a run is
   * recorded, the health snapshot changes (a status, the checks, draining) or PAGE_REUSE_MS passes (the page's relative
   * times). At most PAGE_CACHE_ENTRIES variants (details or not, refresh) are kept.
   */
  const pages = new Map<string, { runs: number; snapshot: object; at: number; body: SharedBody }>();
  let runs = 0;
  sidecar.store.onRecord(() => runs++);
  const rendered = (key: string, render: () => string): SharedBody => {
    const now = Date.now();
    // a new snapshot object: a status, a check or draining changed
    const snapshot = sidecar.health.current();
    for (const [k, page] of pages) if (now - page.at >= PAGE_REUSE_MS || page.runs !== runs || page.snapshot !== snapshot) pages.delete(k);
    const hit = pages.get(key);
    if (hit) return hit.body;
    const body = new SharedBody(Buffer.from(render()));
    if (pages.size >= PAGE_CACHE_ENTRIES) pages.delete(pages.keys().next().value!);
    pages.set(key, { runs, snapshot, at: now, body });
    return body;
  };
  /** what the viewer may see decides the page: details, or why not */
  const variant = (ctx: RequestContext) => hiddenReason(ctx) ?? 'details';

  router.add('/', ['GET'], (req, res, ctx) => {
    onlyParams(ctx, ['refresh']);
    const refresh = intParam(ctx, 'refresh', 1, 300, 5);
    html(req, res, rendered(`page:${refresh}:${variant(ctx)}`, () => renderPage(model(ctx, refresh))));
  });
  router.add('/status/fragment', ['GET'], (req, res, ctx) => {
    onlyParams(ctx, []);
    html(req, res, rendered(`fragment:${variant(ctx)}`, () => renderFragment(model(ctx, 5))));
  });
  const css = new SharedBody(Buffer.from(STATUS_CSS));
  const js = new SharedBody(Buffer.from(STATUS_JS));
  router.add('/status/app.css', ['GET'], (req, res, ctx) => {
    onlyParams(ctx, []);
    send(req, res, 200, css.payload, 'text/css; charset=utf-8', {}, { gzip: css.gzip });
  });
  router.add('/status/app.js', ['GET'], (req, res, ctx) => {
    onlyParams(ctx, []);
    send(req, res, 200, js.payload, 'text/javascript; charset=utf-8', {}, { gzip: js.gzip });
  });

  router.add('/admin/notifications/pending', ['GET'], (req, res, ctx) => {
    requireKey(sidecar.authenticator, ctx.identity);
    onlyParams(ctx, []);
    const pending = oncall().notifications.listPending();
    const iso = (ms: number) => new Date(ms).toISOString();
    sendJson(req, res, 200, {
      count: pending.length,
      pending: pending.map((p) => sidecar.redactor.value({ ...p, queuedAt: iso(p.queuedAt), nextAttemptAt: iso(p.nextAttemptAt) })),
    });
  });

  router.add('/admin/notifications/dead', ['GET', 'POST'], async (req, res, ctx) => {
    const keyName = requireKey(sidecar.authenticator, ctx.identity);
    onlyParams(ctx, req.method === 'POST' ? ['id', 'target'] : []);
    const service = oncall().notifications;
    if (req.method !== 'POST') {
      const dead = service.listDead();
      sendJson(req, res, 200, { count: dead.deadLetters.length, dropped: dead.dropped, max: dead.max, deadLetters: dead.deadLetters.map((l) => sidecar.redactor.value(letterJson(l))) });
      return;
    }
    const filter = { id: ctx.url.searchParams.get('id') ?? undefined, target: ctx.url.searchParams.get('target') ?? undefined };
    if (filter.target !== undefined && !service.targetNames.includes(filter.target) && !service.listDead().deadLetters.some((l) => l.target === filter.target)) {
      throw new HttpError(404, 'unknown_target', `no notification target named "${filter.target.slice(0, 64)}"`);
    }
    sidecar.logger.info({ keyName, action: 'retry-dead-letters', ...filter }, `admin: dead letters retried by key "${keyName}"`);
    const results = await service.retryDead(filter);
    const delivered = results.filter((r) => r.delivered).length;
    sendJson(req, res, 200, {
      retried: results.length,
      delivered,
      failed: results.length - delivered,
      remaining: service.listDead().deadLetters.length,
      results: results.map((r) => sidecar.redactor.value(r)),
    });
  });
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function letterJson(letter: import('../notify/dead-letters').DeadLetter): Record<string, unknown> {
  const e = letter.event;
  return {
    id: letter.id,
    target: letter.target,
    check: e.check,
    from: e.from,
    to: e.to,
    message: e.message,
    time: new Date(e.at).toISOString(),
    incidentId: e.incidentId,
    error: letter.error,
    attempts: letter.attempts,
    failedAt: new Date(letter.failedAt).toISOString(),
  };
}
