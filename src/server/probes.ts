/**
 * Kubelet probe endpoints, Kubernetes API server style:
 *   200 "ok" / 503 "<group> check failed", `?verbose` lists every member,
 *   `?exclude=name` (repeatable or comma-separated) leaves checks out.
 * Answered from memory only: nothing here awaits a probe.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GroupName } from '../config/types';
import { isServing } from '../health/aggregate';
import type { RequestContext, Router } from './app';
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

export function registerProbeRoutes(router: Router, view: HealthView): void {
  for (const [group, paths] of Object.entries(PROBE_PATHS) as [GroupName, string[]][]) {
    const handler = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => probe(req, res, ctx, group, view);
    for (const path of paths) router.add(path, ['GET'], handler);
  }
  router.add('/-/healthy', ['GET'], (req, res) => sendText(req, res, 200, 'ok', {}, PLAIN));
}

const LABEL: Record<GroupName, string> = { live: 'livez', ready: 'readyz', startup: 'startupz' };

/**
 * The kubelet's request — GET or HEAD of a probe path, no query, no body —
 * answered synchronously before any routing: no URL object, no auth, no
 * promise: the group status of the health snapshot, which is recomputed only
 * when the store's generation or the drain flag changed. Anything else (`?verbose`, a body, another method)
 * returns false and takes the full path, which answers the same bytes.
 */
export function createProbeFastPath(view: Pick<HealthView, 'health'>, extraPaths: () => ReadonlyMap<string, string> = () => new Map()): (req: IncomingMessage, res: ServerResponse) => boolean {
  const groupOf = new Map<string, GroupName>();
  for (const [group, paths] of Object.entries(PROBE_PATHS) as [GroupName, string[]][]) for (const path of paths) groupOf.set(path, group);
  // server.paths onto a probe path (`/ready: readyz`) take the fast path too; read per miss, so a reload applies
  const aliasGroup = (url: string): GroupName | undefined => {
    const target = extraPaths().get(url);
    return target === undefined ? undefined : groupOf.get(target);
  };
  const answer = (status: number, body: string) => ({ status, body, headers: { ...BASE_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) } });
  const answers = new Map<GroupName, { pass: ReturnType<typeof answer>; fail: ReturnType<typeof answer> }>();
  for (const group of groupOf.values()) answers.set(group, { pass: answer(200, 'ok'), fail: answer(503, `${LABEL[group]} check failed`) });
  return (req, res) => {
    const url = req.url ?? '';
    const group = groupOf.get(url) ?? aliasGroup(url);
    if (group === undefined) return false;
    const method = req.method;
    if ((method !== 'GET' && method !== 'HEAD') || req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) return false;
    // the snapshot is cached until the store's generation or the drain flag changes
    const reply = isServing(view.health.current().groups[group].status) ? answers.get(group)!.pass : answers.get(group)!.fail;
    res.writeHead(reply.status, reply.headers);
    res.end(method === 'HEAD' ? undefined : reply.body);
    return true;
  };
}

function probe(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, group: GroupName, view: HealthView): void {
  const params = ctx.url.searchParams;
  for (const key of params.keys()) {
    if (!ALLOWED_PARAMS.has(key)) throw new HttpError(400, 'bad_parameter', `unknown query parameter "${key.slice(0, 40)}" (allowed: verbose, exclude)`);
  }
  const exclude = new Set(params.getAll('exclude').flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean));
  const result = view.health.groupWithout(group, exclude);
  const serving = isServing(result.status);
  const status = serving ? 200 : 503;
  const label = LABEL[group];
  if (!params.has('verbose')) {
    sendText(req, res, status, serving ? 'ok' : `${label} check failed`, {}, PLAIN);
    return;
  }
  const details = view.canSeeDetails(ctx);
  const lines: string[] = [];
  if (result.note) lines.push(`[${serving ? '+' : '-'}]${group} ${result.note}`);
  for (const member of result.members) {
    if (member.status === 'UP') lines.push(`[+]${member.name} ok`);
    else if (member.status === 'UNKNOWN') lines.push(`[-]${member.name} failed: not checked yet`);
    else {
      const suffix = member.critical ? '' : ' (non-critical)';
      lines.push(details ? `[-]${member.name} failed${suffix}: ${member.message}` : `[-]${member.name} failed${suffix}`);
    }
  }
  const known = new Set(view.health.current().checks.map((c) => c.name));
  const missing = [...exclude].filter((name) => !known.has(name));
  if (missing.length) lines.push(`warn: some health checks cannot be excluded: no matches for ${missing.map((m) => `"${m.slice(0, 64)}"`).join(',')}`);
  lines.push(`${label} check ${serving ? 'passed' : 'failed'}`);
  sendText(req, res, status, `${lines.join('\n')}\n`, {}, PLAIN);
}
