/** Sidecar configs the benches share. `${PORT}` is filled in by spawnSidecar. */

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The three-check config of the endpoint benches: an HTTP app, Redis and PostgreSQL,
 * all in the ready group. Telemetry as shipped (Prometheus on, traces on) unless
 * `traces: false`.
 */
export function threeChecksConfig({ appUrl, redisUrl = REDIS_URL, databaseUrl = DATABASE_URL, interval = '2s', timeout = '1s', traces = true, extraChecks = '' } = {}) {
  return `
server: { port: \${PORT}, host: 127.0.0.1, drainDelay: 0s }
log: { level: warn }
telemetry: { serviceName: bench, traces: { enabled: ${traces} } }
defaults: { interval: ${interval}, timeout: ${timeout} }
checks:
  - { name: app, kind: http, url: "${appUrl}", groups: [ready] }
  - { name: cache, kind: redis, url: "${redisUrl}", groups: [ready] }
  - { name: db, kind: postgres, url: "${databaseUrl}", query: SELECT 1, groups: [ready] }
${extraChecks}`;
}
