/**
 * The one schema of the config file. The loader validates with it, and
 * `health-sidecar schema` prints it as JSON Schema (z.toJSONSchema, input side),
 * so editors and the loader can never disagree.
 */
import { z } from 'zod';
import { parseDuration } from './duration';

export const CHECK_KINDS = ['http', 'tcp', 'redis', 'postgres'] as const;
export const GROUPS = ['live', 'ready', 'startup'] as const;
export type GroupName = (typeof GROUPS)[number];

const duration = (what = 'a duration') =>
  z
    .string({ error: `must be ${what} such as "250ms", "5s" or "1m"` })
    .refine((s) => parseDuration(s) !== undefined, { error: `must be ${what} such as "250ms", "5s" or "1m"` })
    .transform((s) => parseDuration(s)!)
    .meta({ description: 'duration: a number followed by ms, s, m, h or d (e.g. 250ms, 5s, 1m30s)' });

const positiveDuration = duration().refine((ms) => ms > 0, { error: 'must be greater than 0' });

const RATE = /^(\d+)\/(\d+(?:\.\d+)?(?:ms|s|m|h|d)+)$/;
const rateLimit = z
  .string()
  .refine((s) => RATE.test(s) && Number(RATE.exec(s)![1]) > 0 && (parseDuration(RATE.exec(s)![2]!) ?? 0) > 0, {
    error: 'must be COUNT/DURATION such as "100/1m"',
  })
  .transform((s) => {
    const m = RATE.exec(s)!;
    return { limit: Number(m[1]), windowMs: parseDuration(m[2]!)! };
  });

const CHECK_NAME = /^[a-z0-9][a-z0-9_-]*$/;

const retrySchema = z.strictObject({
  attempts: z.number().int().min(1).max(10).describe('total attempts per run, including the first (1 = no retry)'),
  backoff: z.strictObject({ initial: duration(), max: duration() }),
  jitter: z.boolean(),
});
const breakerSchema = z.strictObject({
  failures: z.number().int().min(1).describe('consecutive failed attempts that open the breaker'),
  halfOpenAfter: positiveDuration,
});
const thresholdsSchema = z.strictObject({
  failure: z.number().int().min(1),
  success: z.number().int().min(1),
});

const defaultsSchema = z.strictObject({
  interval: positiveDuration.prefault('10s'),
  timeout: positiveDuration.prefault('2s'),
  retry: z
    .strictObject({
      attempts: retrySchema.shape.attempts.default(2),
      backoff: z
        .strictObject({ initial: duration().prefault('100ms'), max: duration().prefault('1s') })
        .prefault({}),
      jitter: z.boolean().default(true),
    })
    .prefault({}),
  breaker: z
    .strictObject({
      failures: breakerSchema.shape.failures.default(5),
      halfOpenAfter: positiveDuration.prefault('30s'),
    })
    .prefault({}),
  thresholds: z
    .strictObject({
      failure: z.number().int().min(1).default(3),
      success: z.number().int().min(1).default(1),
    })
    .prefault({}),
});

/** Fields every check kind shares; policy fields override `defaults` key by key. */
const commonCheck = {
  name: z.string().regex(CHECK_NAME, { error: 'must match [a-z0-9][a-z0-9_-]* (lower case, digits, - and _)' }),
  groups: z.array(z.enum(GROUPS)).default(['ready']),
  critical: z.boolean().default(true),
  interval: positiveDuration.optional(),
  timeout: positiveDuration.optional(),
  retry: retrySchema.partial().extend({ backoff: retrySchema.shape.backoff.partial().optional() }).optional(),
  breaker: breakerSchema.partial().optional(),
  thresholds: thresholdsSchema.partial().optional(),
};

const urlWithSchemes = (schemes: string[]) =>
  z.string({ error: 'is required' }).superRefine((value, ctx) => {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be a URL (${schemes.map((s) => `${s}://`).join(' or ')}…)` });
      return;
    }
    if (!schemes.includes(parsed.protocol.replace(/:$/, ''))) {
      ctx.addIssue({ code: 'custom', message: `scheme must be ${schemes.join(' or ')}, not ${parsed.protocol.replace(/:$/, '')}` });
    } else if (!parsed.hostname) {
      ctx.addIssue({ code: 'custom', message: 'must name a host' });
    }
  });

const STATUS_RANGE = /^([1-5]\d\d)(?:-([1-5]\d\d))?$/;
const statusSpec = z.union([z.number().int().min(100).max(599), z.string().regex(STATUS_RANGE, { error: 'must be a status code or range such as "200-299"' })]);

const tlsSchema = z.strictObject({
  insecureSkipVerify: z.boolean().default(false),
  ca: z.string().optional().describe('PEM text of extra CA certificates (use ${file:/path})'),
  cert: z.string().optional(),
  key: z.string().optional(),
  serverName: z.string().optional(),
});

const httpCheck = z.strictObject({
  ...commonCheck,
  kind: z.literal('http'),
  url: urlWithSchemes(['http', 'https']),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'OPTIONS']).default('GET'),
  headers: z.record(z.string(), z.string()).default({}),
  secretHeaders: z.array(z.string()).default([]).describe('header names whose values are secrets (Authorization, Cookie and X-API-Key always are)'),
  body: z.string().optional(),
  followRedirects: z.boolean().default(false),
  expect: z
    .strictObject({
      status: z.array(statusSpec).min(1).default(['200-299']),
      bodyContains: z.string().optional(),
      bodyRegex: z
        .string()
        .refine((s) => {
          try {
            new RegExp(s);
            return true;
          } catch {
            return false;
          }
        }, { error: 'must be a valid regular expression' })
        .optional(),
    })
    .prefault({}),
  tls: tlsSchema.optional(),
});

const tcpCheck = z.strictObject({
  ...commonCheck,
  kind: z.literal('tcp'),
  url: urlWithSchemes(['tcp']).refine((u) => {
    try {
      return new URL(u).port !== '';
    } catch {
      return true; // reported by the URL rule
    }
  }, { error: 'must name a port: tcp://host:port' }),
});

const redisCheck = z.strictObject({
  ...commonCheck,
  kind: z.literal('redis'),
  url: urlWithSchemes(['redis', 'rediss']),
});

const postgresCheck = z.strictObject({
  ...commonCheck,
  kind: z.literal('postgres'),
  url: urlWithSchemes(['postgres', 'postgresql']),
  query: z.string().min(1).default('SELECT 1'),
});

export const checkSchema = z.discriminatedUnion('kind', [httpCheck, tcpCheck, redisCheck, postgresCheck], {
  error: (issue) =>
    issue.code === 'invalid_union' && (issue as { note?: string }).note === 'No matching discriminator'
      ? `kind must be one of ${CHECK_KINDS.join(', ')}`
      : undefined,
});

const apiKeySchema = z.strictObject({
  name: z.string().regex(CHECK_NAME, { error: 'must match [a-z0-9][a-z0-9_-]*' }),
  key: z.string().min(16, { error: 'must be at least 16 characters' }),
  rateLimit: rateLimit.prefault('100/1m'),
});

export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        port: z.number().int().min(0).max(65535).default(9464),
        host: z.string().min(1).default('0.0.0.0'),
        showDetails: z.enum(['never', 'when-authorized', 'always']).default('when-authorized'),
        drainDelay: duration().prefault('5s'),
        auth: z
          .strictObject({
            keys: z.array(apiKeySchema).default([]),
            anonymousRateLimit: rateLimit.prefault('60/1m').describe('per client IP, for requests without a valid key'),
          })
          .prefault({}),
      })
      .prefault({}),
    log: z
      .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .prefault({}),
    telemetry: z
      .strictObject({
        serviceName: z.string().min(1).default('health-sidecar'),
        prometheus: z
          .strictObject({ enabled: z.boolean().default(true), path: z.string().startsWith('/').default('/metrics') })
          .prefault({}),
        traces: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
      })
      .prefault({}),
    defaults: defaultsSchema.prefault({}),
    checks: z.array(checkSchema).default([]),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.checks.forEach((check, index) => {
      const first = seen.get(check.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['checks', index, 'name'], message: `duplicate check name "${check.name}" (first used by checks[${first}])` });
      } else seen.set(check.name, index);
      const timeout = check.timeout ?? config.defaults.timeout;
      const interval = check.interval ?? config.defaults.interval;
      if (timeout > interval) {
        ctx.addIssue({ code: 'custom', path: ['checks', index, check.timeout !== undefined ? 'timeout' : 'interval'], message: `timeout (${timeout}ms) must not exceed interval (${interval}ms)` });
      }
    });
    const keyNames = new Set<string>();
    config.server.auth.keys.forEach((key, index) => {
      if (keyNames.has(key.name)) ctx.addIssue({ code: 'custom', path: ['server', 'auth', 'keys', index, 'name'], message: `duplicate key name "${key.name}"` });
      keyNames.add(key.name);
    });
  });

export type RawConfig = z.output<typeof configSchema>;
export type RawCheck = z.output<typeof checkSchema>;

/** JSON Schema of the config file, generated from the same schema the loader uses. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'otel-health-sidecar configuration',
  };
}
