/**
 * How telemetry plugs into the running sidecar, from telemetry's side: the
 * hooks telemetry/sdk.ts builds and the Sidecar calls, and what telemetry
 * reads of the Sidecar when it registers its routes. Declared here (not in
 * sidecar.ts) so that telemetry never imports the wiring: the Sidecar
 * implements `TelemetryOwner` and takes `SidecarHooks`.
 */
import type { SidecarConfig } from '../config/types';
import type { History } from '../health/history';
import type { AttemptObserver } from '../health/runner';
import type { Redactor } from '../redact';
import type { RequestMetrics, Router } from '../server/app';
import type { MetricsSource } from './metrics';

/** What telemetry reads of the running sidecar: its state, its uptime history, its config and its redactor (replaced on reload) */
export interface TelemetryOwner extends MetricsSource {
  readonly uptime: { readonly history: Pick<History, 'window' | 'names'> };
  readonly config: SidecarConfig;
  readonly redactor: Redactor;
}

export interface SidecarHooks {
  /** per-attempt metrics etc. */
  observer?: AttemptObserver;
  /** http.server.request.duration and refusal counts of the sidecar's own HTTP server */
  requestMetrics?: RequestMetrics;
  /** extra routes (metrics, admin, status page) registered before the server starts */
  registerRoutes?: (router: Router, owner: TelemetryOwner) => void;
}
