import type { HealthSnapshots } from '../health/snapshot';
import type { RequestContext } from './app';
import type { UptimeView } from './uptime';

/** What the HTTP handlers may read of the running sidecar. */
export interface HealthView {
  /** the one health snapshot (startup latch and draining applied) */
  health: HealthSnapshots;
  /** the uptime history and SLOs (/health/{check} shows them with details) */
  uptime?: UptimeView;
  /** may this request see messages, latencies, errors? (server.showDetails) */
  canSeeDetails(ctx: RequestContext): boolean;
  startedAt: number;
  version: string;
}
