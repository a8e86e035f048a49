/**
 * Config warnings: a valid config that probably does not do what its author
 * meant. They never stop a start or a reload; `validate` prints them and `run`
 * logs them (docs/configuration.md, "Warnings"):
 *
 *   - no check to run: every kubelet probe path answers 200 whatever happens;
 *   - `server.showDetails: when-authorized` written out with no API key: no
 *     request can ever see details (the sidecar treats it as `never`);
 *   - a kubelet probe path no check can fail: `/readyz` with no critical check
 *     in group ready, or `/livez` / `/startupz` whose checks are all
 *     `critical: false` (a non-critical DOWN only makes a group DEGRADED,
 *     served 200). An EMPTY live or startup group is not warned about: "alive
 *     / started once the sidecar answers" is the intended default there.
 */
import type { ConfigProblem } from '../errors';
import type { Path, Position } from './document';
import { GROUPS, type GroupName } from './schema';

export const PROBE_PATHS: Record<GroupName, string> = { live: '/livez', ready: '/readyz', startup: '/startupz' };

export interface WarningInput {
  checks: readonly { name: string; groups: readonly GroupName[]; critical: boolean }[];
  skipped: readonly { name: string }[];
  shard?: { index: number; count: number; total: number };
  server: { showDetails: string; auth: { keys: readonly unknown[] } };
}

export interface WarningContext {
  /** position of the node at a path; undefined when the config does not contain it */
  positionOf(path: Path): Position | undefined;
  /** position of the document's start (for what is missing altogether) */
  start: Position;
}

export function configWarnings(config: WarningInput, { positionOf, start }: WarningContext): ConfigProblem[] {
  const warnings: ConfigProblem[] = [];
  const warn = (path: Path, shown: string, message: string) => warnings.push({ ...(positionOf(path) ?? start), path: shown, message });

  if (config.server.showDetails === 'when-authorized' && config.server.auth.keys.length === 0 && positionOf(['server', 'showDetails'])) {
    warn(
      ['server', 'showDetails'],
      'server.showDetails',
      'when-authorized, but server.auth.keys is empty: no request can see details (messages, latencies, /health/stats, /health/incidents), as with "never"; add a key or write "never"',
    );
  }

  if (config.checks.length === 0) {
    const why = config.skipped.length
      ? `all ${config.skipped.length} were skipped for an unset variable (${config.skipped.map((s) => s.name).join(', ')})`
      : config.shard && config.shard.total > 0
        ? `shard ${config.shard.index} of ${config.shard.count} owns none of the ${config.shard.total} check(s)`
        : 'the config defines none';
    warn(['checks'], 'checks', `no check to run (${why}): /livez, /readyz and /startupz always answer 200, whatever the app and its dependencies do`);
    return warnings;
  }

  for (const group of GROUPS) {
    const members = config.checks.filter((c) => c.groups.includes(group));
    if (members.some((c) => c.critical)) continue;
    const path = PROBE_PATHS[group];
    if (members.length === 0) {
      if (group !== 'ready') continue;
      warn(['checks'], 'checks', `${path} can never fail: no check is in group ready, so a readinessProbe on it passes whenever the sidecar answers`);
    } else {
      warn(
        ['checks'],
        'checks',
        `${path} can never fail: every check in group ${group} (${members.map((c) => c.name).join(', ')}) is critical: false, and a non-critical check that is DOWN only makes the group DEGRADED (200)`,
      );
    }
  }
  return warnings;
}
