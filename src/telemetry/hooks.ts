/**
 * How telemetry plugs into the running sidecar, from telemetry's side: the
 * hooks telemetry/sdk.ts builds and the Sidecar calls, and what telemetry
 * reads of the Sidecar once attached. Declared here (not in
 * sidecar.ts) so that telemetry never imports the wiring: the Sidecar
 * implements `TelemetryOwner` and takes `SidecarHooks`.
 */
import type { SidecarConfig } from '../config/types';
import type { History } from '../health/history';
import type { AttemptObserver } from '../health/runner';
import type { Logger } from 'pino';
import type { Redactor } from '../redact';
import type { MetricsSource, PrometheusRenderer } from './metrics';
import type { NotifyMetrics } from '../notify/service';
import type { ProbeMetrics } from '../probes/instruments';
import type { HttpServerMetrics } from './server-metrics';

/** What telemetry reads of the running sidecar: its state, its uptime history, its config and its redactor (replaced on reload) */
export interface TelemetryOwner extends MetricsSource {
  readonly uptime: { readonly history: Pick<History, 'window' | 'names'> };
  readonly config: SidecarConfig;
  readonly redactor: Redactor;
}

/**
 * What telemetry hands the sidecar. The server-facing parts match the
 * server's ports by shape (telemetry never imports server/): `requestMetrics`
 * is server/app.ts `RequestMetrics`, `metricsEndpoint` is
 * server/metrics-route.ts `MetricsEndpoint`; the wiring passes them on.
 */
export interface SidecarHooks {
  /** per-attempt metrics etc. */
  observer?: AttemptObserver;
  /** the probes' connection gauges and http phases (telemetry/instruments.ts) */
  probeMetrics?: ProbeMetrics;
  /** notification delivery counters and queue gauges (telemetry/instruments.ts) */
  notifyMetrics?: NotifyMetrics;
  /** http.server.request.duration and refusal counts of the sidecar's own HTTP server */
  requestMetrics?: HttpServerMetrics;
  /** start reading the sidecar (gauges, SLO gauges); called once, before the server starts */
  attach?: (owner: TelemetryOwner) => void;
  /** the Prometheus endpoint, when it is on: what renders it and where the route goes */
  metricsEndpoint?: { renderer: PrometheusRenderer; path: string; requireKey: boolean; logger: Logger };
}
