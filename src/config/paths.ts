/**
 * `server.paths`: extra paths a migrating user maps onto the built-in
 * endpoints (`/ready: readyz`, `/api/health/v2: health`). An extra path must
 * be a plain absolute path that no built-in endpoint answers — neither one of
 * the fixed paths nor anything under a built-in prefix — so an alias can never
 * hide or change an endpoint.
 */
import { z } from 'zod';

/** What an extra path may point at → the built-in path it answers as (metrics: telemetry.prometheus.path). */
export const PATH_TARGETS = {
  livez: '/livez',
  readyz: '/readyz',
  startupz: '/startupz',
  healthy: '/-/healthy',
  health: '/health',
  system: '/health/system',
  stats: '/health/stats',
  incidents: '/health/incidents',
  status: '/',
  metrics: '/metrics',
} as const;
export type PathTarget = keyof typeof PATH_TARGETS;

/** The paths the sidecar answers itself, and the prefixes under which it answers any path. */
export const BUILT_IN_PATHS: readonly string[] = ['/', '/livez', '/readyz', '/startupz', '/health'];
export const BUILT_IN_PREFIXES: readonly string[] = ['/health/', '/-/', '/admin/', '/status/', '/badges/'];

/** segments of unreserved / sub-delims / ':' '@' / percent-encoded characters (RFC 3986 pchar) */
const PLAIN_PATH = /^(\/(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})+)+$/;

export const serverPathsSchema = z
  .record(z.string(), z.enum(Object.keys(PATH_TARGETS) as [PathTarget, ...PathTarget[]]))
  .default({})
  .describe('extra paths answered as a built-in endpoint, e.g. { "/ready": readyz, "/api/health/v2": health }; targets: livez, readyz, startupz, healthy, health, system, stats, incidents, status, metrics');

/** What is wrong with one extra path (undefined: nothing), given the metrics path in use. */
export function extraPathProblem(path: string, metricsPath: string): string | undefined {
  if (!path.startsWith('/')) return 'must be an absolute path starting with /';
  if (/[?#]/.test(path)) return 'must be a path only (no ?query or #fragment)';
  if (path.length > 1 && path.endsWith('/')) return `must not end with / (every path is answered with and without a trailing slash: write ${path.replace(/\/+$/, '')})`;
  if (!PLAIN_PATH.test(path)) return 'must be /segment[/segment…] of letters, digits and -._~!$&\'()*+,;=:@ or %XX (no empty segment)';
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) return 'must not contain . or .. segments';
  if (BUILT_IN_PATHS.includes(path) || path === metricsPath) return 'is a built-in endpoint already';
  const prefix = BUILT_IN_PREFIXES.find((p) => path.startsWith(p));
  if (prefix) return `is under ${prefix}, which the sidecar answers itself`;
  return undefined;
}

/** server.paths as the router takes them: extra path → built-in path. */
export function resolveExtraPaths(paths: Readonly<Record<string, PathTarget>>, metricsPath: string): Map<string, string> {
  return new Map(Object.entries(paths).map(([path, target]) => [path, target === 'metrics' ? metricsPath : PATH_TARGETS[target]]));
}
