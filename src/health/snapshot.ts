/**
 * The one health snapshot: `{ overall, groups, checks }` with the lifecycle
 * rules applied (startup latched once its members were UP, readiness DOWN while
 * draining). Every reader — the kubelet probe paths (fast and full), /health,
 * /health/{check}, admin diagnostics, the status page, the gRPC health server
 * and the metrics gauges — reads it from here, so none can disagree.
 *
 * A snapshot is computed on demand and kept until the store's generation or
 * the drain flag changes: a reader between two state changes pays one
 * comparison. Startup latches on every state change (not only when someone
 * reads), as the kubelet expects of a startup probe.
 */
import { GROUPS, type GroupName } from '../config/schema';
import { GroupEvaluator, rollup, type GroupStatus, type GroupView } from './aggregate';
import type { CheckState, HealthStore } from './state';

export interface HealthSnapshot {
  /** DOWN while draining; otherwise the rollup of every check */
  readonly overall: GroupStatus;
  readonly groups: Readonly<Record<GroupName, GroupView>>;
  readonly checks: readonly CheckState[];
  /** the store generation it was computed from (with `draining`, its identity: an ETag source) */
  readonly generation: number;
  readonly draining: boolean;
}

export class HealthSnapshots {
  private readonly evaluator = new GroupEvaluator();
  private cached: HealthSnapshot | undefined;

  constructor(private readonly store: HealthStore) {
    store.onChange(() => this.evaluator.observe(store.all()));
  }

  /** SIGTERM: readiness fails from now on. */
  startDraining(): void {
    this.evaluator.startDraining();
  }

  get draining(): boolean {
    return this.evaluator.isDraining;
  }

  current(): HealthSnapshot {
    const generation = this.store.generation;
    const draining = this.evaluator.isDraining;
    const cached = this.cached;
    if (cached && cached.generation === generation && cached.draining === draining) return cached;
    const checks = this.store.all();
    const groups = {} as Record<GroupName, GroupView>;
    for (const group of GROUPS) groups[group] = this.evaluator.evaluate(group, checks);
    this.cached = { overall: draining ? 'DOWN' : rollup(checks), groups, checks, generation, draining };
    return this.cached;
  }

  /**
   * The checks' latest states. Their verdicts (status, breaker) are the
   * snapshot's — any change of those moves the generation — but timing fields
   * (lastCheckedAt, latencyMs, lastDurationMs, response) move on every run,
   * which the cached snapshot does not follow.
   */
  latestChecks(): CheckState[] {
    return this.store.all();
  }

  latestCheck(name: string): CheckState | undefined {
    return this.store.get(name);
  }

  /** One group without some members (`?exclude=`): the same rules, and it never latches startup. */
  groupWithout(group: GroupName, exclude: ReadonlySet<string>): GroupView {
    if (!exclude.size) return this.current().groups[group];
    return this.evaluator.evaluate(group, this.store.all(), exclude);
  }
}
