/** Our attribute and instrument names, in one place (see SPEC §5). */
export const ATTR = {
  name: 'healthcheck.name',
  kind: 'healthcheck.kind',
  outcome: 'healthcheck.outcome',
  critical: 'healthcheck.critical',
  group: 'healthcheck.group',
  from: 'healthcheck.from',
  to: 'healthcheck.to',
  attempt: 'healthcheck.attempt',
  attempts: 'healthcheck.attempts',
  trigger: 'healthcheck.trigger',
  breakerState: 'healthcheck.breaker.state',
  /** redis with sentinels: the node that answered (host:port), and the Sentinel that named it */
  redisNode: 'healthcheck.redis.node',
  redisSentinel: 'healthcheck.redis.sentinel',
  /** the SLO's window as configured ("30d") */
  sloWindow: 'healthcheck.slo.window',
  /** the window an availability is over ("1h", "24h", "7d", "30d", or the SLO window) */
  window: 'healthcheck.window',
} as const;

export const METRIC = {
  probeDuration: 'healthcheck.probe.duration',
  probeAttempts: 'healthcheck.probe.attempts',
  status: 'healthcheck.status',
  groupStatus: 'healthcheck.group.status',
  breakerState: 'healthcheck.breaker.state',
  transitions: 'healthcheck.transitions',
  consecutiveFailures: 'healthcheck.consecutive_failures',
  lastSuccess: 'healthcheck.last_success',
  /** finished runs (all attempts of one) by outcome: what the SLO burn-rate rules divide */
  runs: 'healthcheck.runs',
  sloObjective: 'healthcheck.slo.objective',
  sloAvailability: 'healthcheck.slo.availability',
  sloErrorBudgetRemaining: 'healthcheck.slo.error_budget_remaining',
  /** circuit breaker state changes, by from/to (closed, open, half-open) */
  breakerTransitions: 'healthcheck.breaker.transitions',
  /** requests refused for authentication, by reason (missing, wrong_key, rate_limited); never the key */
  authFailures: 'healthcheck.server.auth_failures',
  shed: 'healthcheck.server.shed',
  /** notification delivery attempts, by target and outcome (success, failure, timeout) */
  notificationAttempts: 'healthcheck.notification.attempts',
  /** http checks: time per request phase (dns, connect, tls, ttfb, transfer), summed over a run's redirects as blackbox_exporter does */
  httpPhaseDuration: 'healthcheck.http.phase.duration',
  /** connections a check holds open to its dependency, by kind (redis, http) and db.client.connection.state; postgres: db.client.connection.count */
  connections: 'healthcheck.connections',
  /** https checks: seconds until the earliest certificate of the chain expires (probes/tls-expiry.ts) */
  certExpiry: 'healthcheck.tls.cert_expiry',
  /** config reloads applied, and refused because the new config was invalid (config/reload.ts) */
  configReloads: 'healthcheck.config.reloads',
  configReloadFailures: 'healthcheck.config.reload_failures',
} as const;

/** Notification delivery (notify/service.ts); `healthcheck.notification.attempts` is METRIC.notificationAttempts. */
export const NOTIFY_METRIC = {
  sent: 'healthcheck.notifications.sent',
  failed: 'healthcheck.notifications.failed',
  dead: 'healthcheck.notifications.dead',
  redeliveries: 'healthcheck.notifications.redeliveries',
  folded: 'healthcheck.notifications.folded',
  duplicatesSuppressed: 'healthcheck.notifications.duplicates_suppressed',
  queueDepth: 'healthcheck.notifications.queue.depth',
  oldestAge: 'healthcheck.notifications.queue.oldest_age',
} as const;

/** Attributes of the counters above. */
export const ATTR_EXTRA = {
  authReason: 'healthcheck.auth.reason',
  notificationTarget: 'notification.target',
  httpPhase: 'healthcheck.http.phase',
  /** healthcheck.telemetry.export_failures: traces, metrics or logs */
  telemetrySignal: 'healthcheck.telemetry.signal',
  /** healthcheck.config.reloads / reload_failures: sighup, file or manual */
  reloadTrigger: 'healthcheck.reload.trigger',
  /** healthcheck.tls.cert_expiry: which certificate a series describes (leaf, earliest) */
  tlsCertPosition: 'healthcheck.tls.cert',
} as const;

/** OpenTelemetry semantic-convention names we record under (HTTP server, database client). */
export const SEMCONV = {
  httpServerDuration: 'http.server.request.duration',
  httpMethod: 'http.request.method',
  httpRoute: 'http.route',
  httpStatus: 'http.response.status_code',
  dbConnectionCount: 'db.client.connection.count',
  dbConnectionState: 'db.client.connection.state',
  dbConnectionPool: 'db.client.connection.pool.name',
  /** the class of error a failed operation ended with: our errors.ts PROBE_ERROR codes */
  errorType: 'error.type',
} as const;

/** Bucket boundaries the semantic conventions advise for http.server.request.duration (seconds). */
export const HTTP_SERVER_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** Probe latency buckets in seconds: 1 ms … 10 s. */
export const PROBE_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Phase buckets of healthcheck.http.phase.duration (seconds): 100 µs … 10 s — loopback phases are well under a millisecond. */
export const HTTP_PHASE_BUCKETS = [0.0001, 0.00025, 0.0005, ...PROBE_DURATION_BUCKETS];

/** Telemetry about telemetry: span export trouble (counted, logged at most once a minute). */
export const SELF_METRIC = {
  exportFailures: 'healthcheck.telemetry.export_failures',
} as const;

/** Instrumentation scope of everything this process records itself. */
export const SCOPE = 'otel-health-sidecar';

/** Resource attributes taken from the Kubernetes downward API (env var → attribute). */
export const K8S_RESOURCE_ENV: Readonly<Record<string, string>> = {
  K8S_POD_NAME: 'k8s.pod.name',
  K8S_NAMESPACE_NAME: 'k8s.namespace.name',
  K8S_NODE_NAME: 'k8s.node.name',
};
