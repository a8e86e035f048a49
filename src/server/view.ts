import type { GroupEvaluator } from '../health/aggregate';
import type { HealthStore } from '../health/state';
import type { RequestContext } from './app';

/** What the HTTP handlers may read of the running sidecar. */
export interface HealthView {
  store: HealthStore;
  groups: GroupEvaluator;
  /** may this request see messages, latencies, errors? (server.showDetails) */
  canSeeDetails(ctx: RequestContext): boolean;
  startedAt: number;
  version: string;
}
