/**
 * /health (all checks), /health/{check} (one), /health/system (the process).
 * JSON with an ETag derived from the state generation (weak: latencies move
 * between versions, the verdicts do not). Details per server.showDetails.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isServing } from '../health/aggregate';
import type { HealthSnapshot } from '../health/snapshot';
import type { CheckState } from '../health/state';
import type { RequestContext, Router } from './app';
import { checkTiming, envelope, summary } from './health-body';
import { HttpError, sendJson } from './respond';
import { uptimeJson } from './uptime';
import type { HealthView } from './view';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function checkJson(state: CheckState, details: boolean): Record<string, unknown> {
  if (!details) return { status: state.status };
  return {
    status: state.status,
    kind: state.kind,
    critical: state.critical,
    groups: state.groups,
    latencyMs: state.latencyMs === null ? null : Math.round(state.latencyMs * 1000) / 1000,
    message: state.message,
    outcome: state.outcome,
    lastCheckedAt: iso(state.lastCheckedAt),
    lastSuccessAt: iso(state.lastSuccessAt),
    lastChangeAt: iso(state.lastChangeAt),
    ...checkTiming(state),
    consecutiveFailures: state.consecutiveFailures,
    breaker: state.breaker,
    version: state.version,
    ...(state.slow ? { slow: true } : {}),
  };
}

function etagFor(snapshot: HealthSnapshot, details: boolean, scope: string): string {
  // draining turns /health DOWN without any check changing: it must change the tag too
  return `W/"${scope}-${snapshot.generation}-${details ? 'd' : 's'}${snapshot.draining ? '-drain' : ''}"`;
}

function sendWithEtag(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, etag: string): void {
  const match = req.headers['if-none-match'];
  // weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored; * matches any current representation
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  if (match && match.split(',').some((tag) => opaque(tag) === opaque(etag) || tag.trim() === '*')) {
    res.writeHead(304, { etag, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end();
    return;
  }
  sendJson(req, res, status, body, { etag });
}

function noParams(ctx: RequestContext): void {
  for (const key of ctx.url.searchParams.keys()) throw new HttpError(400, 'bad_parameter', `unknown query parameter "${key.slice(0, 40)}"`);
}

export function registerHealthRoutes(router: Router, view: HealthView): void {
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();

  router.add('/health', ['GET'], (req, res, ctx) => {
    noParams(ctx);
    const details = view.canSeeDetails(ctx);
    const snapshot = view.health.current();
    // verdicts from the snapshot; timing fields from the latest states (they move on every run)
    const checks = view.health.latestChecks();
    const body = {
      status: snapshot.overall,
      ...envelope(view.startedAt, Date.now()),
      summary: summary(checks),
      groups: Object.fromEntries(Object.entries(snapshot.groups).map(([name, g]) => [name, g.status])),
      checks: Object.fromEntries(checks.map((s) => [s.name, checkJson(s, details)])),
    };
    sendWithEtag(req, res, isServing(snapshot.overall) ? 200 : 503, body, etagFor(snapshot, details, 'all'));
  });

  router.add('/health/system', ['GET'], (req, res, ctx) => {
    noParams(ctx);
    if (!view.canSeeDetails(ctx)) {
      sendJson(req, res, 200, { status: 'UP' });
      return;
    }
    const memory = process.memoryUsage();
    const cpu = process.cpuUsage();
    sendJson(req, res, 200, {
      status: 'UP',
      uptimeSeconds: Math.round((Date.now() - view.startedAt) / 1000),
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, heapTotalBytes: memory.heapTotal, externalBytes: memory.external },
      cpu: { userSeconds: cpu.user / 1e6, systemSeconds: cpu.system / 1e6 },
      eventLoopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
      versions: { sidecar: view.version, node: process.version },
      pid: process.pid,
    });
  });

  // /health/{check}: registered after the fixed /health/* paths, which win by exact match.
  router.addPrefix('/health/', ['GET'], (req, res, ctx) => {
    noParams(ctx);
    const name = ctx.param ?? '';
    const state = view.health.latestCheck(name);
    if (!state) throw new HttpError(404, 'unknown_check', `no check named "${name.slice(0, 64)}"`);
    const details = view.canSeeDetails(ctx);
    const uptime = details && view.uptime ? uptimeJson(view.uptime, name) : undefined;
    const body = { name, ...checkJson(state, details), ...uptime, ...envelope(view.startedAt, Date.now()) };
    // the history moves with every run: with it the tag names the run (lastCheckedAt), not only the version
    sendWithEtag(req, res, state.status === 'UP' ? 200 : 503, body, `W/"${name}-${state.version}-${state.breaker}-${details ? 'd' : 's'}${uptime ? `-${state.lastCheckedAt ?? 0}` : ''}"`);
  }, undefined, '/health/{check}');
}
