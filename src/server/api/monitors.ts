/**
 * /api/v1 (docs/api.md): monitors managed at run time, kept in the store.
 *
 *   GET    /api/v1/monitors                  list (group, status, source filters; cursor pagination)
 *   POST   /api/v1/monitors                  create (Idempotency-Key)
 *   GET    /api/v1/monitors/{name}           one (ETag)
 *   PUT    /api/v1/monitors/{name}           replace (If-Match)
 *   PATCH  /api/v1/monitors/{name}           JSON merge patch (If-Match)
 *   DELETE /api/v1/monitors/{name}           delete (If-Match)
 *   GET    /api/v1/monitors/{name}/results   current state and per-minute history
 *   GET    /api/v1/audit                     the audit log (admin)
 *
 * A monitor body is a check as in the config file, validated by the same
 * loader (same messages). Checks of the file are listed read-only; a write
 * naming one is a 409. A stale If-Match is a 412 and writes nothing; the
 * store unreachable is a 503 for writes while reads answer from memory.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ApiScope } from '../../config/schema';
import type { CheckState } from '../../health/state';
import type { Redactor } from '../../redact';
import { StoreError, type MonitorStore, type StoredMonitor } from '../../store/monitor-store';
import { redactBody, type MonitorProblem, type ParsedMonitor } from '../../store/monitor-checks';
import type { RequestContext, Router } from '../app';
import { RateLimiter, type Rate } from '../ratelimit';
import { HttpError, send as sendBody, sendJson } from '../respond';
import { PROBE_KINDS } from '../../probes/registry';
import { openApiDocument } from './openapi';

const send200 = (req: IncomingMessage, res: ServerResponse, text: string) => sendBody(req, res, 200, text, 'application/json; charset=utf-8');

export const API_PREFIX = '/api/v1';

/** Who is calling and what they may do (an API key, or a verified bearer JWT). */
export interface Caller {
  /** as the audit log names it: `key:<name>` or `jwt:<sub>` */
  actor: string;
  scopes: ReadonlySet<ApiScope>;
}

/** A check of the file, as the list shows it (secret fields already masked). */
export interface FileCheckView {
  name: string;
  check: Record<string, unknown>;
  groups: readonly string[];
}

/** What the API acts on; the wiring provides it (server code never imports the Sidecar). */
export interface MonitorsTarget {
  readonly store: MonitorStore;
  readonly logger: Logger;
  readonly redactor: Redactor;
  /** the file's checks, every shard's (names clash across shards too) */
  fileChecks(): readonly FileCheckView[];
  /** the monitors as last read from the store */
  monitors(): ReadonlyMap<string, StoredMonitor>;
  /** validate a body as a check of the file */
  parse(body: unknown): ParsedMonitor;
  /** the secret values of a valid body (masked in the audit log) */
  secretsOf(body: Record<string, unknown>): string[];
  /** a write of this monitor committed: read it again and apply (resolves once probing reflects it) */
  changed(name: string): Promise<void>;
  /** this replica's state of a check (undefined when another shard probes it) */
  state(name: string): CheckState | undefined;
  /** the shard that probes a check (undefined without sharding) */
  shardOf(name: string, pin?: number): number | undefined;
  /** authenticate; throws 401/403 HttpErrors */
  caller(req: IncomingMessage, ctx: RequestContext): Promise<Caller>;
  writeRate(): Rate;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const etag = (version: number) => `"${version}"`;
const MAX_LIMIT = 500;

function needScope(caller: Caller, scope: ApiScope): void {
  if (!caller.scopes.has(scope) && !caller.scopes.has('admin')) {
    throw new HttpError(403, 'insufficient_scope', `this needs the ${scope} scope; ${caller.actor} has ${[...caller.scopes].join(', ') || 'none'}`);
  }
}

/** The JSON body of a write, or 400/415 with a clear message. */
function jsonBody(req: IncomingMessage, ctx: RequestContext): unknown {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json' && type !== 'application/merge-patch+json') {
    throw new HttpError(415, 'unsupported_media_type', 'the body must be JSON (Content-Type: application/json, or application/merge-patch+json for PATCH)');
  }
  const text = ctx.body?.toString('utf8') ?? '';
  if (text.trim() === '') throw new HttpError(400, 'invalid_json', 'the body is empty; send a check as JSON');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `the body is not valid JSON: ${(err as Error).message}`);
  }
}

/** `If-Match: "3"` → 3; `*` or absent → undefined (any version); anything else matches nothing. */
function ifMatch(req: IncomingMessage): number | undefined | 'none' {
  const header = req.headers['if-match'];
  if (header === undefined || header.trim() === '*') return undefined;
  const m = /^\s*(?:W\/)?"(\d+)"\s*$/.exec(header);
  return m ? Number(m[1]) : 'none';
}

function invalid(problems: MonitorProblem[]): HttpError & { problems: MonitorProblem[] } {
  const summary = problems.map((p) => `${p.path}: ${p.message}`).join('; ');
  return Object.assign(new HttpError(400, 'invalid_monitor', `${problems.length} problem(s): ${summary}`), { problems });
}

function storeFailure(err: unknown): never {
  if (!(err instanceof StoreError)) throw err;
  switch (err.reason) {
    case 'unavailable':
      throw new HttpError(503, 'store_unavailable', `${err.message}; the change was not made (probing goes on with the monitors already loaded; retry later)`, { 'retry-after': '5' });
    case 'not_found':
      throw new HttpError(404, 'unknown_monitor', err.message);
    case 'exists':
      throw new HttpError(409, 'name_taken', err.message);
    case 'stale':
      throw new HttpError(412, 'precondition_failed', err.message);
    case 'limit':
      throw new HttpError(409, 'monitor_limit', err.message);
    case 'idempotency_mismatch':
      throw new HttpError(422, 'idempotency_key_reused', err.message);
  }
}

/** JSON merge patch (RFC 7396) */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

export function registerMonitorRoutes(router: Router, target: MonitorsTarget): void {
  const writes = new RateLimiter();

  const statusJson = (name: string) => {
    const state = target.state(name);
    if (!state) return null;
    return { status: state.status, message: target.redactor.text(state.message), latencyMs: state.latencyMs, lastCheckedAt: iso(state.lastCheckedAt), consecutiveFailures: state.consecutiveFailures };
  };
  const monitorJson = (m: StoredMonitor) => ({
    name: m.name,
    source: 'api' as const,
    readOnly: false,
    version: m.version,
    check: target.redactor.value(m.body) as Record<string, unknown>,
    createdAt: m.createdAt,
    createdBy: m.createdBy,
    updatedAt: m.updatedAt,
    updatedBy: m.updatedBy,
    shard: target.shardOf(m.name, typeof m.body.shard === 'number' ? m.body.shard : undefined) ?? null,
    state: statusJson(m.name),
  });
  const fileJson = (f: FileCheckView) => ({
    name: f.name,
    source: 'file' as const,
    readOnly: true,
    version: null,
    check: f.check,
    createdAt: null,
    createdBy: null,
    updatedAt: null,
    updatedBy: null,
    shard: target.shardOf(f.name, typeof f.check.shard === 'number' ? f.check.shard : undefined) ?? null,
    state: statusJson(f.name),
  });

  const writer = async (req: IncomingMessage, ctx: RequestContext): Promise<Caller> => {
    const caller = await target.caller(req, ctx);
    needScope(caller, 'monitors:write');
    const decision = writes.take(caller.actor, target.writeRate());
    if (!decision.allowed) {
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      throw new HttpError(429, 'rate_limited', `too many writes for ${caller.actor} (store.writeRateLimit); retry in ${seconds}s`, { 'retry-after': String(seconds) });
    }
    return caller;
  };
  const reader = async (req: IncomingMessage, ctx: RequestContext): Promise<Caller> => {
    const caller = await target.caller(req, ctx);
    needScope(caller, 'monitors:read');
    return caller;
  };
  const fileCheck = (name: string) => target.fileChecks().find((f) => f.name === name);
  const refuseFileName = (name: string) => {
    if (fileCheck(name)) throw new HttpError(409, 'name_taken', `"${name}" is a check of the config file (source: file, read-only); choose another name`);
  };
  /** validated body + its audit form (secrets masked) */
  const validate = (body: unknown) => {
    const parsed = target.parse(body);
    if ('problems' in parsed) throw invalid(parsed.problems);
    const record = body as Record<string, unknown>;
    const audit = redactOf(record);
    return { body: record, audit };
  };
  const redactOf = (body: Record<string, unknown>) => target.redactor.value(redactBody(body, target.secretsOf(body))) as Record<string, unknown>;
  const send = (req: IncomingMessage, res: ServerResponse, status: number, m: StoredMonitor, headers: Record<string, string> = {}) =>
    sendJson(req, res, status, monitorJson(m), { etag: etag(m.version), ...headers });
  const answerInvalid = (req: IncomingMessage, res: ServerResponse, err: unknown) => {
    if (err instanceof HttpError && 'problems' in err) {
      sendJson(req, res, 400, { error: { code: err.code, message: err.message, problems: (err as { problems: MonitorProblem[] }).problems } });
      return true;
    }
    return false;
  };

  router.add(`${API_PREFIX}/monitors`, ['GET', 'POST'], async (req, res, ctx) => {
    if (req.method === 'POST') {
      const caller = await writer(req, ctx);
      try {
        const raw = jsonBody(req, ctx);
        const { body, audit } = validate(raw);
        const name = body.name as string;
        refuseFileName(name);
        const header = req.headers['idempotency-key'];
        const key = Array.isArray(header) ? header[0] : header;
        if (key !== undefined && (key.length === 0 || key.length > 200)) throw new HttpError(400, 'bad_idempotency_key', 'Idempotency-Key must be 1 to 200 characters');
        const created = await target.store
          .create(caller.actor, name, body, { after: audit }, key ? { key, request: JSON.stringify(body) } : undefined)
          .catch(storeFailure);
        if (!created.replayed) target.logger.info({ actor: caller.actor, monitor: name, action: 'create' }, `api: monitor ${name} created by ${caller.actor}`);
        await target.changed(name);
        send(req, res, created.replayed ? 200 : 201, created.monitor, { location: `${API_PREFIX}/monitors/${encodeURIComponent(name)}`, ...(created.replayed ? { 'idempotent-replayed': 'true' } : {}) });
      } catch (err) {
        if (!answerInvalid(req, res, err)) throw err;
      }
      return;
    }
    await reader(req, ctx);
    const params = ctx.url.searchParams;
    for (const key of params.keys()) {
      if (!['group', 'status', 'source', 'label', 'limit', 'cursor'].includes(key)) throw new HttpError(400, 'bad_parameter', `unknown query parameter "${key.slice(0, 40)}" (group, status, source, label, limit, cursor)`);
    }
    // label=NAME (has it) or label=NAME=VALUE; repeated: all must match
    const labels = params.getAll('label').map((text) => {
      const at = text.indexOf('=');
      return at < 0 ? { name: text, value: undefined } : { name: text.slice(0, at), value: text.slice(at + 1) };
    });
    const labelled = (check: Record<string, unknown>) => {
      const own = (check.labels ?? {}) as Record<string, unknown>;
      return labels.every((l) => (l.value === undefined ? l.name in own : own[l.name] === l.value));
    };
    const limitText = params.get('limit') ?? '100';
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > MAX_LIMIT) throw new HttpError(400, 'bad_parameter', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
    let after = '';
    const cursor = params.get('cursor');
    if (cursor !== null) {
      after = Buffer.from(cursor, 'base64url').toString('utf8');
      if (!after || Buffer.from(after).toString('base64url') !== cursor) throw new HttpError(400, 'bad_parameter', 'cursor is not one this API gave out');
    }
    const group = params.get('group');
    const status = params.get('status');
    const source = params.get('source');
    if (source !== null && source !== 'file' && source !== 'api') throw new HttpError(400, 'bad_parameter', 'source must be file or api');
    const fileNames = new Set(target.fileChecks().map((f) => f.name));
    // a monitor whose name the file took later (a reload) is not probed: the file's check is listed
    const all = [...target.fileChecks().map(fileJson), ...[...target.monitors().values()].filter((m) => !fileNames.has(m.name)).map(monitorJson)]
      .filter((m) => m.name > after)
      .filter((m) => source === null || m.source === source)
      .filter((m) => group === null || ((m.check.groups as string[] | undefined) ?? ['ready']).includes(group))
      .filter((m) => status === null || (m.state?.status ?? 'UNKNOWN') === status.toUpperCase())
      .filter((m) => labelled(m.check))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    const page = all.slice(0, limit);
    const next = all.length > limit ? Buffer.from(page[page.length - 1]!.name).toString('base64url') : null;
    sendJson(req, res, 200, { items: page, nextCursor: next });
  });

  router.addPrefix(
    `${API_PREFIX}/monitors/`,
    ['GET', 'PUT', 'PATCH', 'DELETE'],
    async (req, res, ctx) => {
      const [name = '', sub] = (ctx.param ?? '').split('/');
      if (sub === 'results') {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on results`, { allow: 'GET, HEAD' });
        await reader(req, ctx);
        const file = fileCheck(name);
        if (!file && !target.monitors().has(name)) throw new HttpError(404, 'unknown_monitor', `no monitor named "${name.slice(0, 64)}"`);
        const minutesText = ctx.url.searchParams.get('minutes') ?? '60';
        const minutes = Number(minutesText);
        if (!/^\d+$/.test(minutesText) || minutes < 1 || minutes > 100_000) throw new HttpError(400, 'bad_parameter', 'minutes must be a whole number from 1 to 100000');
        const history = await target.store.results(name, Date.now() - minutes * 60_000).catch((err) => {
          if (err instanceof StoreError && err.reason === 'unavailable') return null;
          throw err;
        });
        sendJson(req, res, 200, {
          name,
          state: statusJson(name),
          history: history?.map((h) => ({ minute: new Date(h.minute).toISOString(), runs: h.runs, failures: h.failures, latencyAvgMs: h.runs ? h.latencySumMs / h.runs : null, latencyMaxMs: h.latencyMaxMs })) ?? null,
          historyAvailable: history !== null,
        });
        return;
      }
      if (req.method === 'GET' || req.method === 'HEAD') {
        await reader(req, ctx);
        const file = fileCheck(name);
        if (file) return void sendJson(req, res, 200, fileJson(file));
        const known = target.monitors().get(name) ?? (await target.store.get(name).catch(() => undefined));
        if (!known) throw new HttpError(404, 'unknown_monitor', `no monitor named "${name.slice(0, 64)}"`);
        send(req, res, 200, known);
        return;
      }
      const caller = await writer(req, ctx);
      if (fileCheck(name)) throw new HttpError(409, 'read_only', `"${name}" is a check of the config file (source: file): change it in the file`);
      const version = ifMatch(req);
      if (version === 'none') throw new HttpError(412, 'precondition_failed', 'If-Match names no version of this monitor (use the ETag of a GET)');
      try {
        if (req.method === 'DELETE') {
          const gone = await target.store.delete(caller.actor, name, version, { before: (old) => redactOf(old.body) }).catch(storeFailure);
          target.logger.info({ actor: caller.actor, monitor: name, action: 'delete' }, `api: monitor ${name} deleted by ${caller.actor}`);
          await target.changed(name);
          sendJson(req, res, 200, { name: gone.name, deleted: true, version: gone.version });
          return;
        }
        const raw = jsonBody(req, ctx);
        let body: unknown;
        if (req.method === 'PATCH') {
          const current = await target.store.get(name).catch(storeFailure);
          if (!current) throw new HttpError(404, 'unknown_monitor', `no monitor named "${name.slice(0, 64)}"`);
          if (version !== undefined && current.version !== version) throw new HttpError(412, 'precondition_failed', `monitor "${name}" changed since (now version ${current.version}); GET it again and retry with its ETag`);
          body = mergePatch(current.body, raw);
        } else body = raw && typeof raw === 'object' && !Array.isArray(raw) && !('name' in raw) ? { name, ...raw } : raw;
        const valid = validate(body);
        if (valid.body.name !== name) throw invalid([{ path: 'name', message: `must be "${name}" (the name in the path); a monitor is renamed by creating the new one and deleting the old` }]);
        const updated = await target.store
          .update(caller.actor, name, valid.body, version, { before: (old) => redactOf(old.body), after: valid.audit })
          .catch(storeFailure);
        target.logger.info({ actor: caller.actor, monitor: name, action: 'update' }, `api: monitor ${name} updated by ${caller.actor}`);
        await target.changed(name);
        send(req, res, 200, updated);
      } catch (err) {
        if (!answerInvalid(req, res, err)) throw err;
      }
    },
    /^[^/]+(\/results)?$/,
    `${API_PREFIX}/monitors/{name}`,
  );

  let document: string | undefined;
  router.add(`${API_PREFIX}/openapi.json`, ['GET'], (req, res) => {
    document ??= JSON.stringify(openApiDocument(PROBE_KINDS.map((k) => k.schema)));
    send200(req, res, document);
  });

  router.add(`${API_PREFIX}/audit`, ['GET'], async (req, res, ctx) => {
    const caller = await target.caller(req, ctx);
    needScope(caller, 'admin');
    const monitor = ctx.url.searchParams.get('monitor') ?? undefined;
    const limitText = ctx.url.searchParams.get('limit') ?? '100';
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > 1000) throw new HttpError(400, 'bad_parameter', 'limit must be a whole number from 1 to 1000');
    const entries = await target.store.audit({ monitor, limit }).catch(storeFailure);
    sendJson(req, res, 200, { items: entries.map((e) => target.redactor.value(e)) });
  });
}
