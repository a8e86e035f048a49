/**
 * Group rollup (Spring Boot Actuator / Kubernetes API server semantics):
 *   DOWN      any critical member is DOWN
 *   UNKNOWN   otherwise, any member has no result yet (served as 503)
 *   DEGRADED  otherwise, any non-critical member is DOWN, or any member is UP
 *             but slower than its latency.warnAbove (served as 200)
 *   UP        every member is UP; also a group with no members
 */
import { GROUPS, type GroupName } from '../config/schema';
import type { CheckState, CheckStatus } from './state';

export type GroupStatus = 'UP' | 'DEGRADED' | 'DOWN' | 'UNKNOWN';
export const GROUP_STATUS_VALUE: Record<GroupStatus, number> = { UP: 2, DEGRADED: 1, DOWN: 0, UNKNOWN: 0 };

export interface Member {
  status: CheckStatus;
  critical: boolean;
  slow?: boolean;
}

export function rollup(members: readonly Member[]): GroupStatus {
  let unknown = false;
  let degraded = false;
  for (const member of members) {
    if (member.status === 'DOWN') {
      if (member.critical) return 'DOWN';
      degraded = true;
    } else if (member.status === 'UNKNOWN') unknown = true;
    else if (member.slow) degraded = true;
  }
  if (unknown) return 'UNKNOWN';
  return degraded ? 'DEGRADED' : 'UP';
}

export function isServing(status: GroupStatus): boolean {
  return status === 'UP' || status === 'DEGRADED';
}

export interface GroupView {
  status: GroupStatus;
  members: CheckState[];
  /** why the group is not what its members say (draining, latched startup) */
  note?: string;
}

/** Lifecycle overrides on top of the rollup: draining readiness, latched startup. */
export class GroupEvaluator {
  private startupLatched = false;
  private draining = false;

  startDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Called on every state change: startup latches the moment its members are
   * UP, whether or not anyone asked /startupz then (not only lazily, on a request).
   */
  observe(states: readonly CheckState[]): void {
    if (!this.startupLatched) this.evaluate('startup', states);
  }

  evaluate(group: GroupName, states: readonly CheckState[], exclude?: ReadonlySet<string>): GroupView {
    const members = states.filter((s) => s.groups.includes(group) && !exclude?.has(s.name));
    if (group === 'ready' && this.draining) return { status: 'DOWN', members, note: 'shutting down' };
    if (group === 'startup' && this.startupLatched) return { status: 'UP', members, note: 'started' };
    const status = rollup(members);
    // Startup latches only on the full group (an ?exclude= view must not latch it).
    if (group === 'startup' && !exclude?.size && isServing(status)) this.startupLatched = true;
    return { status, members };
  }

  evaluateAll(states: readonly CheckState[]): Record<GroupName, GroupView> {
    const out = {} as Record<GroupName, GroupView>;
    for (const group of GROUPS) out[group] = this.evaluate(group, states);
    return out;
  }

  /** overall status: the worst of the groups, DEGRADED kept as such */
  static overall(groups: Record<GroupName, GroupView>): GroupStatus {
    const statuses = Object.values(groups).map((g) => g.status);
    if (statuses.includes('DOWN')) return 'DOWN';
    if (statuses.includes('UNKNOWN')) return 'UNKNOWN';
    if (statuses.includes('DEGRADED')) return 'DEGRADED';
    return 'UP';
  }
}
