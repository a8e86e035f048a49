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
} as const;

/** Probe latency buckets in seconds: 1 ms … 10 s. */
export const PROBE_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
