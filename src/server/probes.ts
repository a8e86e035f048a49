/**
 * Kubelet probe endpoints, as the Kubernetes API server answers them
 * (k8s.io/apiserver pkg/server/healthz):
 *   200 "ok"; `?verbose` lists every member (`[+]a ok`) then
 *   "<group> check passed"; on failure the list always comes (`[-]b failed:
 *   reason withheld` unless details may be shown) then "<group> check failed";
 *   `?exclude=name` (repeatable or comma-separated) leaves checks out and lists
 *   them as `[+]name excluded: ok`; `/livez/{check}`, `/readyz/{check}`,
 *   `/startupz/{check}` answer for that one member: "ok" or
 *   "internal server error: <reason>".
 * Answered from memory only: nothing here awaits a probe.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GroupName } from '../config/types';
import { isServing, type GroupView } from '../health/aggregate';
import type { CheckState } from '../health/state';
import type { BoundRecorder, RequestContext, RequestMetrics, Router } from './app';
import { BASE_HEADERS, HttpError, sendText } from './respond';
import type { HealthView } from './view';

const PROBE_PATHS: Record<GroupName, string[]> = {
  live: ['/livez', '/health/live'],
  ready: ['/readyz', '/health/ready'],
  startup: ['/startupz', '/health/startup'],
};
const ALLOWED_PARAMS = new Set(['verbose', 'exclude']);
/** probe answers are never compressed: the same bytes as the fast path, whatever the client accepts */
const PLAIN = { compress: false } as const;
/** the kubelet's paths answer under any load: never shed (server/overload.ts) */
const NEVER_SHED = { shed: false } as const;

export function registerProbeRoutes(router: Router, view: HealthView): void {
  for (const [group, paths] of Object.entries(PROBE_PATHS) as [GroupName, string[]][]) {
    const handler = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => probe(req, res, ctx, group, view);
    for (const path of paths) router.add(path, ['GET'], handler, NEVER_SHED);
  }
  router.add('/-/healthy', ['GET'], (req, res) => sendText(req, res, 200, 'ok', {}, PLAIN), NEVER_SHED);
  // per-check paths, as the API server installs /readyz/<check> for each of its checks
  for (const group of Object.keys(PROBE_PATHS) as GroupName[]) {
    router.addPrefix(`/${LABEL[group]}/`, ['GET'], (req, res, ctx) => probeOne(req, res, ctx, group, view), undefined, undefined, NEVER_SHED);
  }
}

/** `[+]a ok` / `[-]b failed: reason` lines of a group's members in config order; excluded ones `[+]name excluded: ok`. */
function memberLines(group: GroupName, full: GroupView, evaluated: GroupView, exclude: ReadonlySet<string>, details: boolean): string[] {
  const serving = isServing(evaluated.status);
  const lines: string[] = [];
  if (evaluated.note) lines.push(`[${serving ? '+' : '-'}]${group} ${evaluated.note}`);
  const byName = new Map(evaluated.members.map((m) => [m.name, m]));
  for (const listed of full.members) {
    const member = exclude.has(listed.name) ? undefined : (byName.get(listed.name) ?? listed);
    if (!member) lines.push(`[+]${listed.name} excluded: ok`);
    else if (member.status === 'UP') lines.push(`[+]${member.name} ok`);
    else if (member.status === 'UNKNOWN') lines.push(`[-]${member.name} failed: not checked yet`);
    else {
      const suffix = member.critical ? '' : ' (non-critical)';
      lines.push(`[-]${member.name} failed${suffix}: ${details ? member.message : 'reason withheld'}`);
    }
  }
  return lines;
}

/** The failure body the API server sends even without ?verbose: every member, then "<group> check failed". */
function failureBody(group: GroupName, full: GroupView, evaluated: GroupView, exclude: ReadonlySet<string>, details: boolean, extra: string[] = []): string {
  return `${[...memberLines(group, full, evaluated, exclude, details), ...extra, `${LABEL[group]} check failed`].join('\n')}\n`;
}

const LABEL: Record<GroupName, string> = { live: 'livez', ready: 'readyz', startup: 'startupz' };

/**
 * The kubelet's request — GET or HEAD of a probe path, no query, no body —
 * answered synchronously before any routing: no URL object, no auth, no
 * promise: the group status of the health snapshot, which is recomputed only
 * when the store's generation or the drain flag changed; a failure's body (the
 * member list) is built once per snapshot. Anything else (`?verbose`, a body, another method)
 * returns false and takes the full path, which answers the same bytes.
 */
export function createProbeFastPath(
  view: Pick<HealthView, 'health'> & { anonymousDetails?: () => boolean },
  extraPaths: () => ReadonlyMap<string, string> = () => new Map(),
  metrics?: RequestMetrics,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const groupOf = new Map<string, GroupName>();
  for (const [group, paths] of Object.entries(PROBE_PATHS) as [GroupName, string[]][]) for (const path of paths) groupOf.set(path, group);
  // server.paths onto a probe path (`/ready: readyz`) take the fast path too; read per miss, so a reload applies
  const answer = (status: number, body: string) => ({ status, body, headers: { ...BASE_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) } });
  const pass = answer(200, 'ok');
  // the failure body lists the members: built once per snapshot (and details setting), then reused
  const failures = new Map<GroupName, { snapshot: object; details: boolean; reply: ReturnType<typeof answer> }>();
  const failure = (group: GroupName, snapshot: ReturnType<HealthView['health']['current']>) => {
    const details = view.anonymousDetails?.() ?? false;
    const cached = failures.get(group);
    if (cached && cached.snapshot === snapshot && cached.details === details) return cached.reply;
    const view_ = snapshot.groups[group];
    const reply = answer(503, failureBody(group, view_, view_, new Set(), details));
    failures.set(group, { snapshot, details, reply });
    return reply;
  };
  // http.server.request.duration recorders bound once per path × method × answer: a request only adds to one
  const recorders = new Map<string, Record<'GET' | 'HEAD', { pass: BoundRecorder; fail: BoundRecorder }>>();
  const bindFor = (route: string) => {
    let bound = recorders.get(route);
    if (bound === undefined && metrics) {
      const pair = (method: string) => ({ pass: metrics.bind(method, route, 200), fail: metrics.bind(method, route, 503) });
      bound = { GET: pair('GET'), HEAD: pair('HEAD') };
      recorders.set(route, bound);
    }
    return bound;
  };
  if (metrics) for (const path of groupOf.keys()) bindFor(path);
  return (req, res) => {
    const started = metrics ? performance.now() : 0;
    const url = req.url ?? '';
    let group = groupOf.get(url);
    let route = url;
    if (group === undefined) {
      const target = extraPaths().get(url);
      group = target === undefined ? undefined : groupOf.get(target);
      if (group === undefined) return false;
      route = target!; // an extra path is recorded as the endpoint it answers as
    }
    const method = req.method;
    if ((method !== 'GET' && method !== 'HEAD') || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) return false;
    // the snapshot is cached until the store's generation or the drain flag changes
    const snapshot = view.health.current();
    const serving = isServing(snapshot.groups[group].status);
    const reply = serving ? pass : failure(group, snapshot);
    res.writeHead(reply.status, reply.headers);
    res.end(method === 'HEAD' ? undefined : reply.body);
    if (metrics) {
      const bound = recorders.get(route) ?? bindFor(route)!;
      (serving ? bound[method].pass : bound[method].fail).record((performance.now() - started) / 1000);
    }
    return true;
  };
}

function probe(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, group: GroupName, view: HealthView): void {
  const answer = probeAnswer(view.health, group, ctx.url.searchParams, () => view.canSeeDetails(ctx));
  sendText(req, res, answer.status, answer.body, {}, PLAIN);
}

/** `/readyz/{check}`: that member alone, "ok" or "internal server error: <reason>" (reason withheld unless details may be shown). */
function probeOne(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, group: GroupName, view: HealthView): void {
  const answer = probeOneAnswer(view.health, group, ctx.param ?? '', ctx.url.searchParams, () => view.canSeeDetails(ctx));
  sendText(req, res, answer.status, answer.body, {}, PLAIN);
}

/** A kubelet path's answer: status and text/plain body. */
export interface ProbeAnswer {
  status: number;
  body: string;
}

/** `/livez` … with its query (`?verbose`, `?exclude=`); 400 (thrown HttpError) for any other parameter. */
export function probeAnswer(health: HealthView['health'], group: GroupName, params: URLSearchParams, canSeeDetails: () => boolean): ProbeAnswer {
  for (const key of params.keys()) {
    if (!ALLOWED_PARAMS.has(key)) throw new HttpError(400, 'bad_parameter', `unknown query parameter "${key.slice(0, 40)}" (allowed: verbose, exclude)`);
  }
  const exclude = new Set(params.getAll('exclude').flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean));
  const full = health.current().groups[group];
  const result = health.groupWithout(group, exclude);
  const serving = isServing(result.status);
  const label = LABEL[group];
  if (serving && !params.has('verbose')) return { status: 200, body: 'ok' };
  const details = canSeeDetails();
  const known = new Set(health.current().checks.map((c) => c.name));
  const missing = [...exclude].filter((name) => !known.has(name));
  const warn = missing.length ? [`warn: some health checks cannot be excluded: no matches for ${missing.map((m) => `"${m.slice(0, 64)}"`).join(',')}`] : [];
  // always verbose on failure, as the API server is
  if (!serving) return { status: 503, body: failureBody(group, full, result, exclude, details, warn) };
  const lines = [...memberLines(group, full, result, exclude, details), ...warn, `${label} check passed`];
  return { status: 200, body: `${lines.join('\n')}\n` };
}

/** `/readyz/{check}` (only `?verbose` allowed, which changes nothing); 404 (thrown HttpError) for a check not in the group. */
export function probeOneAnswer(health: HealthView['health'], group: GroupName, name: string, params: URLSearchParams, canSeeDetails: () => boolean): ProbeAnswer {
  for (const key of params.keys()) {
    if (key !== 'verbose') throw new HttpError(400, 'bad_parameter', `unknown query parameter "${key.slice(0, 40)}" (allowed: verbose)`);
  }
  const member: CheckState | undefined = health.current().groups[group].members.find((m) => m.name === name);
  if (!member) throw new HttpError(404, 'not_found', `no check "${name.slice(0, 64)}" in /${LABEL[group]}`);
  if (member.status === 'UP') return { status: 200, body: 'ok' };
  const reason = member.status === 'UNKNOWN' ? 'not checked yet' : canSeeDetails() ? member.message : 'reason withheld';
  return { status: 503, body: `internal server error: ${reason}\n` };
}

/** An answer of the table and the route it is recorded as (http.route). */
export interface TabledAnswer extends ProbeAnswer {
  route: string;
  /** the group it answers for (`healthy` for /-/healthy) */
  group: GroupName | 'healthy';
}

/**
 * Every kubelet request an anonymous client can make without a query other
 * than `?verbose`, answered for the current snapshot: request target →
 * answer. The group paths (and their `server.paths` aliases), plain and
 * `?verbose`, `/-/healthy`, and `/{livez,readyz,startupz}/{check}` of every
 * member. What the kubelet listener's thread answers from (kubelet-listener.ts);
 * the bytes are those the routes send.
 */
export function probeTable(health: HealthView['health'], extraPaths: ReadonlyMap<string, string>, anonymousDetails: boolean): Map<string, TabledAnswer> {
  const table = new Map<string, TabledAnswer>();
  const details = () => anonymousDetails;
  const none = new URLSearchParams();
  const verbose = new URLSearchParams('verbose');
  const aliasesOf = (path: string) => [...extraPaths].filter(([, target]) => target === path).map(([alias]) => alias);
  for (const [group, paths] of Object.entries(PROBE_PATHS) as [GroupName, string[]][]) {
    const plain = probeAnswer(health, group, none, details);
    const verbose_ = probeAnswer(health, group, verbose, details);
    for (const path of paths) {
      for (const target of [path, ...aliasesOf(path)]) {
        table.set(target, { ...plain, route: path, group });
        table.set(`${target}?verbose`, { ...verbose_, route: path, group });
      }
    }
    const template = `/${LABEL[group]}/{param}`; // the route template addPrefix gives
    for (const member of health.current().groups[group].members) {
      table.set(`/${LABEL[group]}/${encodeURIComponent(member.name)}`, { ...probeOneAnswer(health, group, member.name, none, details), route: template, group });
    }
  }
  table.set('/-/healthy', { status: 200, body: 'ok', route: '/-/healthy', group: 'healthy' });
  return table;
}

/** The paths (exact, and prefixes ending in `/`) the kubelet listener serves: the probe routes and the aliases onto them. */
export function probePaths(extraPaths: ReadonlyMap<string, string>): { exact: string[]; prefixes: string[] } {
  const builtIn = [...Object.values(PROBE_PATHS).flat(), '/-/healthy'];
  const exact = [...builtIn, ...[...extraPaths].filter(([, target]) => builtIn.includes(target)).map(([alias]) => alias)];
  return { exact, prefixes: Object.values(LABEL).map((label) => `/${label}/`) };
}
