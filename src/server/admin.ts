/**
 * Admin API (SPEC §4):
 *   POST /admin/checks/{name}/run    run now; concurrent calls share one probe run (single flight)
 *   POST /admin/checks/{name}/reset  breaker closed, counters cleared, version bumped
 *   GET  /admin/diagnostics          effective config with every secret redacted, breaker states, versions, uptime
 * Every call needs a valid API key (401 otherwise); with no key configured at
 * all the admin API is off (403). Authorisation comes before the check name is
 * looked at, so an anonymous caller cannot probe which checks exist. Each
 * action is logged with the key's name, never the key.
 */
import type { RunResult } from '../health/state';
import type { SidecarConfig } from '../config/types';
import { redactCheck } from '../probes/registry';
import { REDACTED, type Redactor } from '../redact';
import type { Logger } from 'pino';
import type { HealthSnapshots } from '../health/snapshot';
import type { CheckLoop } from '../health/scheduler';
import type { HealthStore } from '../health/state';
import type { Authenticator } from './auth';
import type { RequestContext, Router } from './app';
import { requireKey } from './auth';
import { checkJson } from './health';
import type { RateLimitGuard } from './ratelimit';
import { HttpError, sendJson } from './respond';
import { VERSION } from '../version';

const ACTIONS = ['run', 'reset'] as const;
type Action = (typeof ACTIONS)[number];

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export interface AdminOptions {
  /** the rate limiters, for their sizes in diagnostics */
  rateLimit?: RateLimitGuard;
}

/** What the admin routes act on: the Sidecar provides it (server code never imports the Sidecar). */
export interface AdminTarget {
  readonly store: HealthStore;
  readonly health: HealthSnapshots;
  readonly config: SidecarConfig;
  readonly redactor: Redactor;
  readonly authenticator: Authenticator;
  readonly logger: Logger;
  readonly startedAt: number;
  loop(name: string): CheckLoop | undefined;
  runNow(name: string): Promise<RunResult> | undefined;
  reset(name: string): boolean;
}

export function registerAdminRoutes(router: Router, sidecar: AdminTarget, options: AdminOptions = {}): void {
  const authorize = (ctx: RequestContext) => requireKey(sidecar.authenticator, ctx.identity);

  // /admin/checks/{name}/{run|reset}: one prefix route; the name is one path segment
  router.addPrefix(
    '/admin/checks/',
    ['POST'],
    async (req, res, ctx) => {
      const keyName = authorize(ctx);
      const { name, action } = parseCheckPath(ctx.param ?? '');
      for (const param of ctx.url.searchParams.keys()) throw new HttpError(400, 'bad_parameter', `unknown query parameter "${param.slice(0, 40)}"`);
      if (!sidecar.store.get(name)) throw new HttpError(404, 'unknown_check', `no check named "${name.slice(0, 64)}"`);
      const redactor = sidecar.redactor;
      if (action === 'reset') {
        if (!sidecar.reset(name)) throw new HttpError(404, 'unknown_check', `no check named "${name.slice(0, 64)}"`);
        sidecar.logger.info({ keyName, check: name, action: 'reset' }, `admin: check ${name} reset by key "${keyName}"`);
        sendJson(req, res, 200, { check: name, action: 'reset', state: redactor.value(checkJson(sidecar.store.get(name)!, true)) });
        return;
      }
      const running = sidecar.runNow(name);
      if (!running) throw new HttpError(404, 'unknown_check', `no check named "${name.slice(0, 64)}"`);
      sidecar.logger.info({ keyName, check: name, action: 'run' }, `admin: check ${name} run by key "${keyName}"`);
      const result = await running;
      const state = sidecar.store.get(name);
      sendJson(req, res, 200, { check: name, action: 'run', status: state?.status ?? 'UNKNOWN', result: resultJson(result, redactor) });
    },
    /^[^/]+\/[^/]+$/,
  );

  router.add('/admin/diagnostics', ['GET'], (req, res, ctx) => {
    const keyName = authorize(ctx);
    for (const param of ctx.url.searchParams.keys()) throw new HttpError(400, 'bad_parameter', `unknown query parameter "${param.slice(0, 40)}"`);
    sidecar.logger.info({ keyName, action: 'diagnostics' }, `admin: diagnostics read by key "${keyName}"`);
    const config = sidecar.config;
    const snapshot = sidecar.health.current();
    const states = snapshot.checks;
    sendJson(req, res, 200, {
      status: snapshot.overall,
      startedAt: iso(sidecar.startedAt),
      uptimeSeconds: Math.round((Date.now() - sidecar.startedAt) / 1000),
      versions: { sidecar: VERSION, node: process.version, v8: process.versions.v8, openssl: process.versions.openssl },
      checks: Object.fromEntries(
        states.map((s) => [
          s.name,
          {
            status: s.status,
            breaker: s.breaker,
            version: s.version,
            consecutiveFailures: s.consecutiveFailures,
            lastCheckedAt: iso(s.lastCheckedAt),
            running: sidecar.loop(s.name)?.running ?? false,
          },
        ]),
      ),
      skipped: config.skipped,
      // sharding (only when configured): this replica probes `owned` of the file's `total` checks
      ...(config.shard ? { shard: config.shard } : {}),
      rateLimits: options.rateLimit
        ? { trackedClients: options.rateLimit.ipLimiter.size, maxClients: options.rateLimit.ipLimiter.maxSubjects, evictedClients: options.rateLimit.ipLimiter.evicted, trackedKeys: options.rateLimit.keyLimiter.size }
        : null,
      config: redactedConfig(config, sidecar.redactor),
    });
  });
}

function parseCheckPath(param: string): { name: string; action: Action } {
  const slash = param.lastIndexOf('/');
  const name = param.slice(0, slash);
  const action = param.slice(slash + 1);
  if (!(ACTIONS as readonly string[]).includes(action)) throw new HttpError(404, 'not_found', `no such admin action "${action.slice(0, 40)}" (run, reset)`);
  return { name, action: action as Action };
}

export function resultJson(result: RunResult, redactor: Redactor): Record<string, unknown> {
  return {
    ok: result.ok,
    outcome: result.outcome,
    message: redactor.text(result.message),
    latencyMs: Math.round(result.latencyMs * 1000) / 1000,
    attempts: result.attempts,
    startedAt: iso(result.startedAt),
    finishedAt: iso(result.finishedAt),
    breaker: result.breaker,
    traceId: result.traceId ?? null,
  };
}

/**
 * The effective config as JSON with every secret removed: the list of secret
 * values itself is dropped, URL passwords and header values named secret are
 * masked explicitly, and the whole tree then goes through Redactor.value
 * (secret-named keys such as key/password/secret masked, every configured
 * secret removed from every string).
 */
export function redactedConfig(config: SidecarConfig, redactor: Redactor): unknown {
  const { secrets: _secrets, ...rest } = config;
  const checks = config.checks.map((check) => redactCheck(check, redactor));
  const notifications = config.notifications.map((target) => {
    if (target.kind === 'slack') return { ...target, url: REDACTED }; // the webhook URL is the credential
    if (target.kind === 'webhook') return { ...target, url: redactor.url(target.url), headers: Object.fromEntries(Object.keys(target.headers).map((name) => [name, REDACTED])) };
    return target;
  });
  const state = { ...config.state, redis: config.state.redis === undefined ? undefined : redactor.url(config.state.redis) };
  const { substitutions = [], ...shown } = { ...rest, checks, notifications, state };
  // A value that came from `${…}` is shown as written (`${TENANT}`), never expanded: an
  // environment value in a body, a non-secret header or a query string is not a configured
  // secret, yet it is not ours to show either. Copies elsewhere (defaults merged into checks)
  // are removed by value.
  const overlaid = structuredClone(shown) as Record<string, unknown>;
  for (const { path, text } of substitutions) setAt(overlaid, path, text);
  const values = substitutions.map((s) => s.value).filter((v) => v.length >= 4);
  return (values.length ? redactor.with(values) : redactor).value(overlaid);
}

/** Set `path` in a JSON tree to `value` when the path exists (a leaf that is not an object). */
function setAt(tree: Record<string, unknown>, path: readonly (string | number)[], value: string): void {
  let node: unknown = tree;
  for (const part of path.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return;
    node = (node as Record<string | number, unknown>)[part];
  }
  const last = path[path.length - 1];
  if (node === null || typeof node !== 'object' || last === undefined || !(last in node)) return;
  const current = (node as Record<string | number, unknown>)[last];
  if ((current !== null && typeof current === 'object') || current === REDACTED) return; // masked already: stays masked
  (node as Record<string | number, unknown>)[last] = value;
}
