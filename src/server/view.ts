import type { HealthSnapshots } from '../health/snapshot';
import type { RequestContext } from './app';

/** What the HTTP handlers may read of the running sidecar. */
export interface HealthView {
  /** the one health snapshot (startup latch and draining applied) */
  health: HealthSnapshots;
  /** may this request see messages, latencies, errors? (server.showDetails) */
  canSeeDetails(ctx: RequestContext): boolean;
  startedAt: number;
  version: string;
}
