/**
 * The one schema of the config file, assembled from the common fields below and
 * the check kinds' own schemas (each probe kind module builds its schema from
 * the pieces exported here; the probe registry hands the list in, so config/
 * never imports probes/). The loader validates with it, and `health-sidecar
 * schema` prints it as JSON Schema (z.toJSONSchema, input side), so editors and
 * the loader can never disagree.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { formatDuration, parseDuration } from './duration';
import { extraPathProblem, serverPathsSchema } from './paths';
import { sloSchema } from './slo';

export const GROUPS = ['live', 'ready', 'startup'] as const;
export type GroupName = (typeof GROUPS)[number];

/** for editors (JSON Schema; a `${…}` reference is let through); the loader's own check is parseDuration */
const DURATION_PATTERN = '^(\\s*(\\d+(\\.\\d+)?(ms|s|m|h|d))+\\s*|.*\\$\\{[^}]*\\}.*)$';
const durationMessage = (what: string) => `must be ${what} such as "250ms", "5s" or "1m"`;
export const duration = (what = 'a duration', positive = false) =>
  z
    .string({
      error: (issue) =>
        typeof issue.input === 'number'
          ? `must be ${what} with a unit, such as "${issue.input}s" or "${issue.input}ms" (a bare number is ambiguous)`
          : durationMessage(what),
    })
    .superRefine((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        const negative = /^\s*-/.test(text) && parseDuration(text.trim().slice(1)) !== undefined;
        ctx.addIssue({ code: 'custom', message: negative ? (positive ? 'must be greater than 0' : 'must not be negative') : durationMessage(what) });
      } else if (positive && ms <= 0) ctx.addIssue({ code: 'custom', message: 'must be greater than 0' });
    })
    .transform((s) => parseDuration(s)!)
    .meta({ description: 'duration: a number followed by ms, s, m, h or d (e.g. 250ms, 5s, 1m30s)', pattern: DURATION_PATTERN });

export const positiveDuration = duration('a duration', true);

const RATE = /^(\d+)\/(\d+(?:\.\d+)?(?:ms|s|m|h|d)+)$/;
const rateLimit = z
  .string()
  .refine((s) => RATE.test(s) && Number(RATE.exec(s)![1]) > 0 && (parseDuration(RATE.exec(s)![2]!) ?? 0) > 0, {
    error: 'must be COUNT/DURATION such as "100/1m"',
  })
  .transform((s) => {
    const m = RATE.exec(s)!;
    return { limit: Number(m[1]), windowMs: parseDuration(m[2]!)! };
  })
  .meta({ description: 'COUNT/DURATION, e.g. 100/1m', pattern: '^(\\d+/(\\d+(\\.\\d+)?(ms|s|m|h|d))+|.*\\$\\{[^}]*\\}.*)$' });

/** an IPv4 or IPv6 network, e.g. 10.0.0.0/8, fd00::/8; a bare address is a /32 (/128) */
const cidr = z
  .string()
  .refine((s) => parseCidr(s) !== undefined, { error: 'must be a network such as 10.0.0.0/8 or fd00::/8' })
  .meta({ description: 'CIDR network, e.g. 10.0.0.0/8' });

export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', bits, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** pino's levels; accepted in any case (LOG_LEVEL=DEBUG is debug) */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** The level a text names, whatever its case; undefined when it names none. */
export const parseLogLevel = (text: string): LogLevel | undefined => LOG_LEVELS.find((level) => level === text.trim().toLowerCase());
const logLevel = z
  .string()
  .refine((text) => parseLogLevel(text) !== undefined, { error: `must be one of ${LOG_LEVELS.join(', ')} (any case)` })
  .transform((text) => parseLogLevel(text)!)
  .meta({
    description: `one of ${LOG_LEVELS.join(', ')} (any case)`,
    // JSON Schema patterns have no case-insensitive flag: [dD][eE]… (and a ${…} reference is let through)
    pattern: `^\\s*(${LOG_LEVELS.map((l) => l.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`)).join('|')})\\s*$|\\$\\{[^}]*\\}`,
  });

const CHECK_NAME = /^[a-z0-9][a-z0-9_-]*$/;
/** `/health/<name>` paths that are endpoints, not checks */
const RESERVED_CHECK_NAMES: readonly string[] = ['live', 'ready', 'startup', 'system', 'stats', 'incidents'];

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
  slo: sloSchema.optional().describe('the SLO of every check that sets none (a check overrides it key by key); see docs/uptime.md'),
});

/** Fields every check kind shares; policy fields override `defaults` key by key. */
export const commonCheck = {
  name: z
    .string()
    .regex(CHECK_NAME, { error: 'must match [a-z0-9][a-z0-9_-]* (lower case, digits, - and _)' })
    .refine((name) => !RESERVED_CHECK_NAMES.includes(name), {
      error: `is reserved: /health/{${RESERVED_CHECK_NAMES.join(',')}} are endpoints of their own`,
    }),
  groups: z.array(z.enum(GROUPS)).default(['ready']),
  critical: z.boolean().default(true),
  interval: positiveDuration.optional(),
  timeout: positiveDuration.optional(),
  retry: retrySchema.partial().extend({ backoff: retrySchema.shape.backoff.partial().optional() }).optional(),
  breaker: breakerSchema.partial().optional(),
  thresholds: thresholdsSchema.partial().optional(),
  shard: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe('pin this check to one shard index (needs the top-level shard); default: placed by rendezvous hashing of its name'),
  labels: z
    .record(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.\/-]{0,62}$/, { error: 'label names are letters, digits, _ . / - (at most 63)' }), z.string().max(200))
    .optional()
    .describe('free-form labels (team, tier, …): the monitors API filters by them (?label=team=payments)'),
  latency: z
    .strictObject({
      warnAbove: positiveDuration.optional().describe('a successful run slower than this keeps the check UP but flags it slow; its groups report DEGRADED'),
      failAbove: positiveDuration.optional().describe('a successful run slower than this counts as a failed run (hysteresis applies)'),
    })
    .refine((l) => l.warnAbove === undefined || l.failAbove === undefined || l.warnAbove < l.failAbove, { error: 'warnAbove must be less than failAbove' })
    .optional()
    .describe('latency budget of a check'),
  slo: sloSchema.optional(),
};

/** A URL string with one of the given schemes and a host. */
export const urlWithSchemes = (schemes: string[]) =>
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


/** TLS options of the kinds that speak TLS (http with https URLs, grpc with grpcs URLs). */
export const tlsSchema = z.strictObject({
  insecureSkipVerify: z.boolean().default(false),
  ca: z.string().optional().describe('PEM text of extra CA certificates (use ${file:/path})'),
  cert: z.string().optional(),
  key: z.string().optional(),
  serverName: z.string().optional(),
  minValidity: positiveDuration
    .optional()
    .describe('fail (or warn, per minValidityAction) when the server certificate or any certificate in its chain expires sooner than this, e.g. 14d'),
  minValidityAction: z.enum(['fail', 'warn']).default('fail').describe('fail: the probe fails; warn: the probe succeeds with a warning in its message'),
}).superRefine((tls, ctx) => {
  // unusable PEM is a config error now, not a probe failure on every run later
  for (const problem of tlsMaterialProblems(tls)) ctx.addIssue({ code: 'custom', path: [problem.field], message: problem.message });
});

const PEM_BEGIN = '-----BEGIN ';
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?(?:-----END CERTIFICATE-----|$)/g;
const opensslReason = (err: unknown) => (err instanceof Error ? err.message.replace(/^error:[0-9A-F]+:/, '').replace(/:+/g, ': ') : String(err));

/**
 * What is wrong with tls.ca / cert / key, never quoting their content (a
 * value that is a file path is quoted: it is a path, not the secret). A bare
 * path is refused; text that is PEM (has a -----BEGIN line) must parse, and a
 * key must belong to its certificate; anything else is left to the kinds'
 * own rules and the probe.
 */
export function tlsMaterialProblems(tls: { ca?: string; cert?: string; key?: string }): { field: 'ca' | 'cert' | 'key'; message: string }[] {
  const problems: { field: 'ca' | 'cert' | 'key'; message: string }[] = [];
  // every prober takes PEM text: a bare file path would be ignored by Node and fail later as a
  // misleading "self-signed certificate"
  for (const field of ['ca', 'cert', 'key'] as const) {
    const value = tls[field]?.trim();
    if (value !== undefined && /^(\/|\.{1,2}\/|~\/)[^\n]*\.(pem|crt|cer|key)$/i.test(value)) {
      problems.push({ field, message: `is a file path, not PEM text: to read the file, write \${file:${value.slice(0, 200)}}` });
    }
  }
  if (tls.ca?.includes(PEM_BEGIN)) {
    const blocks = tls.ca.match(PEM_CERTIFICATE) ?? [];
    if (blocks.length === 0) problems.push({ field: 'ca', message: 'no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)' });
    blocks.forEach((block, i) => {
      try {
        new X509Certificate(block);
      } catch (err) {
        problems.push({ field: 'ca', message: `certificate ${i + 1} of ${blocks.length} is not a valid certificate (${opensslReason(err)})` });
      }
    });
  }
  let certificate: X509Certificate | undefined;
  if (tls.cert?.includes(PEM_BEGIN)) {
    try {
      certificate = new X509Certificate(tls.cert);
    } catch (err) {
      problems.push({ field: 'cert', message: `not a valid PEM certificate (${opensslReason(err)})` });
    }
  }
  if (tls.key?.includes(PEM_BEGIN)) {
    try {
      const key = createPrivateKey(tls.key);
      if (certificate && !certificate.checkPrivateKey(key)) problems.push({ field: 'key', message: 'does not belong to tls.cert (the public keys differ)' });
    } catch (err) {
      problems.push({ field: 'key', message: `not a valid PEM private key (${opensslReason(err)})` });
    }
  }
  return problems;
}

/** Does a URL name a port? (A URL that does not parse is reported by the URL rule, so it passes here.) */
export const hasPort = (u: string) => {
  try {
    return new URL(u).port !== '';
  } catch {
    return true; // reported by the URL rule
  }
};

/** The schema of a check kind: a strict object with the common fields and `kind: z.literal(…)`. */
export type CheckSchema = z.ZodObject<{ kind: z.ZodLiteral<string> } & z.ZodRawShape>;

/** what a key or a bearer JWT may do on /api/v1 (docs/api.md); a key without `scopes` has all of them */
export const API_SCOPES = ['monitors:read', 'monitors:write', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];
const scopesSchema = z.array(z.enum(API_SCOPES));
const apiKeySchema = z.strictObject({
  name: z.string().regex(CHECK_NAME, { error: 'must match [a-z0-9][a-z0-9_-]*' }),
  key: z.string().min(16, { error: 'must be at least 16 characters' }),
  rateLimit: rateLimit.prefault('100/1m'),
  scopes: scopesSchema.default([...API_SCOPES]).describe('what the key may do on /api/v1 and /admin (default: everything, as before scopes existed)'),
});
const jwtSchema = z.strictObject({
  issuer: urlWithSchemes(['https', 'http']).describe('the iss every token must carry'),
  jwksUri: urlWithSchemes(['https', 'http']).describe("the issuer's JSON Web Key Set"),
  audience: z.string().min(1).describe('the aud every token must carry'),
  claim: z.string().min(1).default('scope').describe('the claim whose values map to scopes (a space-separated string or an array)'),
  scopes: z.record(z.string(), scopesSchema).describe('claim value → the scopes it grants'),
});

/** `store` (monitor modes only): monitors managed over /api/v1, kept in PostgreSQL (docs/api.md) */
const storeSchema = z.strictObject({
  postgres: urlWithSchemes(['postgres', 'postgresql']).describe('the PostgreSQL database of monitors, their audit log and their run history'),
  retention: positiveDuration.prefault('7d').describe('how long per-minute run aggregates are kept'),
  maxMonitors: z.number().int().min(1).max(100_000).default(10_000).describe('monitors the store may hold'),
  writeRateLimit: rateLimit.prefault('60/1m').describe('writes per key (or JWT subject) on /api/v1/monitors'),
  resync: positiveDuration.prefault('30s').describe('full resync from the store, the safety net under LISTEN/NOTIFY'),
});

// ── notifications (SPEC §7) and state persistence ──────────────────────────
const SEVERITIES = ['warning', 'critical'] as const;
const notificationCommon = {
  name: z.string().regex(CHECK_NAME, { error: 'must match [a-z0-9][a-z0-9_-]*' }),
  checks: z.array(z.string().regex(CHECK_NAME, { error: 'must be a check name' })).optional().describe('checks this target hears about (default: all)'),
  groups: z.array(z.enum(GROUPS)).optional().describe('only checks in one of these groups (default: any group)'),
  minSeverity: z.enum(SEVERITIES).default('warning').describe('warning: every check; critical: only critical checks'),
  cooldown: duration().prefault('5m').describe('at most one message per check and state in this window'),
  timeout: positiveDuration.prefault('10s').describe('per delivery attempt'),
  retry: z
    .strictObject({
      attempts: z.number().int().min(1).max(20).default(4).describe('total attempts per message, including the first'),
      backoff: z.strictObject({ initial: duration().prefault('1s'), max: duration().prefault('30s') }).prefault({}),
    })
    .prefault({}),
  breaker: z
    .strictObject({ failures: z.number().int().min(1).default(5), halfOpenAfter: positiveDuration.prefault('1m') })
    .prefault({}),
  retention: duration()
    .prefault('24h')
    .describe('how long an undelivered message keeps being redelivered before it becomes a dead letter (0: after its first round of attempts)'),
  redelivery: z
    .strictObject({ initial: positiveDuration.prefault('10s'), max: positiveDuration.prefault('5m') })
    .prefault({})
    .describe('wait between rounds of attempts of an undelivered message: doubling from initial up to max, with jitter'),
};
const webhookTarget = z.strictObject({
  ...notificationCommon,
  kind: z.literal('webhook'),
  url: urlWithSchemes(['http', 'https']),
  secret: z.string().min(1).optional().describe('HMAC-SHA256 key; the signature of the body goes in X-Signature-256: sha256=<hex>'),
  headers: z.record(z.string(), z.string()).default({}),
});
const slackTarget = z.strictObject({
  ...notificationCommon,
  kind: z.literal('slack'),
  url: urlWithSchemes(['http', 'https']).describe('Slack incoming-webhook URL (a secret: never shown)'),
});
const emailTarget = z.strictObject({
  ...notificationCommon,
  kind: z.literal('email'),
  email: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(587),
    secure: z.boolean().default(false).describe('true: TLS from the first byte (port 465); false: STARTTLS when offered'),
    requireTLS: z.boolean().default(false).describe('fail unless STARTTLS succeeds'),
    user: z.string().optional(),
    pass: z.string().optional(),
    from: z.string().min(3),
    to: z.array(z.string().min(3)).min(1),
    tls: z.strictObject({ insecureSkipVerify: z.boolean().default(false), ca: z.string().optional(), serverName: z.string().optional() }).optional(),
  }),
});
export const NOTIFICATION_KINDS = ['webhook', 'slack', 'email'] as const;
export const notificationSchema = z.discriminatedUnion('kind', [webhookTarget, slackTarget, emailTarget], {
  error: (issue) =>
    issue.code === 'invalid_union' && (issue as { note?: string }).note === 'No matching discriminator'
      ? `kind must be one of ${NOTIFICATION_KINDS.join(', ')}`
      : undefined,
});

const stateSchema = z.strictObject({
  redis: urlWithSchemes(['redis', 'rediss']).optional().describe('keep incidents and dead letters in Redis so a restart keeps them (default: memory only)'),
  keyPrefix: z.string().min(1).default('otel-health-sidecar').describe('Redis key prefix; one per monitored service'),
  maxIncidents: z.number().int().min(1).max(10000).default(200),
  maxDeadLetters: z.number().int().min(1).max(10000).default(100),
});

/** The whole config schema for the given check kinds (in the order `kind must be one of` lists them). */
export function buildConfigSchema(checkSchemas: readonly CheckSchema[]) {
  const kinds = checkSchemas.map((schema) => schema.shape.kind.value);
  const checkSchema = z.discriminatedUnion('kind', checkSchemas as unknown as [CheckSchema, ...CheckSchema[]], {
    error: (issue) =>
      issue.code === 'invalid_union' && (issue as { note?: string }).note === 'No matching discriminator'
        ? `kind must be one of ${kinds.join(', ')}`
        : undefined,
  }) as unknown as z.ZodType<RawCheck, unknown>;
  return z
    .strictObject({
      server: z
        .strictObject({
          port: z.number().int().min(0).max(65535).default(9464),
          grpcPort: z.number().int().min(0).max(65535).optional().describe('serve grpc.health.v1 (services live, ready, startup, "" = ready) on this port; off when absent'),
          probeListener: z
            .strictObject({
              port: z.number().int().min(0).max(65535).describe('the kubelet paths (/livez, /readyz, /startupz, aliases, per-check forms) on this port too; point the Kubernetes probes at it'),
              thread: z.boolean().default(true).describe('answer it from a worker thread, so a flood of the main port cannot delay it (false: on the main event loop)'),
            })
            .optional()
            .describe('a listener of its own for the kubelet paths; off when absent (docs/security.md, "Overload: the kubelet paths first")'),
          host: z.string().min(1).default('0.0.0.0'),
          showDetails: z.enum(['never', 'when-authorized', 'always']).default('when-authorized'),
          drainDelay: duration().prefault('5s').describe('after SIGTERM, readiness fails at once and everything keeps being served this long'),
          drainTimeout: positiveDuration.prefault('20s').describe('after drainDelay: how long requests in flight, queued notifications and persistence writes may take before the process exits'),
          paths: serverPathsSchema,
          auth: z
            .strictObject({
              keys: z.array(apiKeySchema).default([]),
              anonymousRateLimit: rateLimit.prefault('60/1m').describe('per client IP, for requests without a valid key'),
              metricsRateLimit: rateLimit.prefault('300/1m').describe('per client IP on the Prometheus path, a bucket of its own (not counted for a valid key or a scraperNetworks address)'),
              scraperNetworks: z.array(cidr).default([]).describe('addresses (CIDR) whose scrapes of the Prometheus path are never rate limited'),
              jwt: jwtSchema.optional().describe('also accept bearer JWTs of this issuer on /api/v1 (docs/api.md)'),
            })
            .prefault({}),
          overload: z
            .strictObject({
              perTurn: z.number().int().min(1).max(100_000).default(8).describe('requests other than the kubelet paths admitted per event-loop turn; more get 503 overloaded + Retry-After'),
              turnBudgetMs: z.number().int().min(1).max(100_000).default(20).describe('ms of work on those requests per event-loop turn; the rest of the turn gets 503 overloaded + Retry-After (the first request of a turn always runs)'),
              maxInFlight: z.number().int().min(1).max(100_000).default(32).describe('requests other than the kubelet paths running at once; more get 503 overloaded + Retry-After'),
            })
            .prefault({})
            .describe('load shedding that keeps the kubelet paths fast whatever else is asked (docs/security.md)'),
        })
        .prefault({}),
      log: z
        .strictObject({ level: logLevel.default('info') })
        .prefault({}),
      telemetry: z
        .strictObject({
          serviceName: z.string().min(1).default('health-sidecar'),
          prometheus: z
            .strictObject({
              enabled: z.boolean().default(true),
              path: z.string().startsWith('/').default('/metrics'),
              requireKey: z.boolean().default(false).describe('true: /metrics needs a valid API key (server.auth.keys), 401 without one'),
            })
            .prefault({}),
          traces: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
        })
        .prefault({}),
      defaults: defaultsSchema.prefault({}),
      checks: z.array(checkSchema).default([]),
      notifications: z.array(notificationSchema).default([]),
      state: stateSchema.prefault({}),
      mode: z.enum(['sidecar', 'monitor']).default('sidecar').describe('sidecar: beside an app in its pod; monitor: the standalone or sharded monitor of many endpoints'),
      store: storeSchema.optional().describe('monitors managed at run time over /api/v1, kept in PostgreSQL (mode: monitor, or a shard block)'),
      shard: z
        .strictObject({
          index: z
            .union([z.number().int().min(0), z.literal('auto')], { error: 'must be a whole number ≥ 0 or "auto"' })
            .describe('this replica\'s shard, 0 … count-1; "auto": the StatefulSet ordinal, the trailing -N of K8S_POD_NAME or HOSTNAME'),
          count: z.number().int().min(1).max(1024).describe('number of replicas the checks are split across'),
        })
        .optional()
        .describe('split the checks across replicas: this one probes only the checks it owns (rendezvous hashing of the name)'),
    })
    .superRefine((config, ctx) => {
      for (const path of Object.keys(config.server.paths)) {
        const problem = extraPathProblem(path, config.telemetry.prometheus.path);
        if (problem) ctx.addIssue({ code: 'custom', path: ['server', 'paths', path], message: problem });
      }
      if (config.store && config.mode !== 'monitor' && !config.shard) {
        ctx.addIssue({ code: 'custom', path: ['store'], message: 'needs mode: monitor (or a shard block): a pod sidecar takes its checks from the file only' });
      }
      if (config.telemetry.prometheus.requireKey && config.server.auth.keys.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['telemetry', 'prometheus', 'requireKey'], message: 'needs at least one key in server.auth.keys (no scrape could ever be allowed)' });
      }
      if (config.shard && typeof config.shard.index === 'number' && config.shard.index >= config.shard.count) {
        ctx.addIssue({ code: 'custom', path: ['shard', 'index'], message: `must be less than shard.count (${config.shard.count}): shards are numbered 0 … ${config.shard.count - 1}` });
      }
      config.checks.forEach((check, index) => {
        if (check.shard === undefined) return;
        if (!config.shard) ctx.addIssue({ code: 'custom', path: ['checks', index, 'shard'], message: 'pins the check to a shard, but there is no top-level shard: { index, count }' });
        else if (check.shard >= config.shard.count) ctx.addIssue({ code: 'custom', path: ['checks', index, 'shard'], message: `must be less than shard.count (${config.shard.count})` });
      });
      const seen = new Map<string, number>();
      config.checks.forEach((check, index) => {
        const first = seen.get(check.name);
        if (first !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['checks', index, 'name'], message: `duplicate check name "${check.name}" (first used by checks[${first}])` });
        } else seen.set(check.name, index);
        const slo = { ...config.defaults.slo, ...check.slo };
        if ((check.slo || config.defaults.slo) && slo.enabled !== false && slo.objective === undefined) {
          ctx.addIssue({ code: 'custom', path: ['checks', index, 'slo'], message: 'objective is required (here or in defaults.slo)' });
        }
        // a check that sets neither inherits both: the defaults' own rule below covers it
        if (check.timeout !== undefined || check.interval !== undefined) {
          const timeout = check.timeout ?? config.defaults.timeout;
          const interval = check.interval ?? config.defaults.interval;
          if (timeoutExceedsInterval(timeout, interval)) {
            const from = (own: number | undefined, key: string) => (own === undefined ? `, from defaults.${key}` : '');
            ctx.addIssue({
              code: 'custom',
              path: ['checks', index, check.timeout !== undefined ? 'timeout' : 'interval'],
              message: `timeout (${formatDuration(timeout)}${from(check.timeout, 'timeout')}) must not exceed interval (${formatDuration(interval)}${from(check.interval, 'interval')})`,
            });
          }
        }
      });
      if (timeoutExceedsInterval(config.defaults.timeout, config.defaults.interval)) {
        ctx.addIssue({ code: 'custom', path: ['defaults', 'timeout'], message: `timeout (${formatDuration(config.defaults.timeout)}) must not exceed interval (${formatDuration(config.defaults.interval)})` });
      }
      const targetNames = new Map<string, number>();
      config.notifications.forEach((target, index) => {
        const first = targetNames.get(target.name);
        if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['notifications', index, 'name'], message: `duplicate notification name "${target.name}" (first used by notifications[${first}])` });
        else targetNames.set(target.name, index);
      });
      const keyNames = new Set<string>();
      config.server.auth.keys.forEach((key, index) => {
        if (keyNames.has(key.name)) ctx.addIssue({ code: 'custom', path: ['server', 'auth', 'keys', index, 'name'], message: `duplicate key name "${key.name}"` });
        keyNames.add(key.name);
      });
    });
;
}

/** Both valid durations (an invalid one is reported on its own) and the timeout longer. */
function timeoutExceedsInterval(timeout: unknown, interval: unknown): timeout is number {
  return typeof timeout === 'number' && typeof interval === 'number' && interval > 0 && timeout > 0 && timeout > interval;
}

/** What every check has, whatever its kind (a kind's own fields come with its schema). */
const baseCheck = z.object({ ...commonCheck, kind: z.string() });
export type RawCheck = z.output<typeof baseCheck>;
export type ConfigSchema = ReturnType<typeof buildConfigSchema>;
export type RawConfig = z.output<ConfigSchema>;
export type NotificationConfig = z.output<typeof notificationSchema>;

/** JSON Schema of the config file, generated from the same schema the loader uses. */
export function configJsonSchema(schema: ConfigSchema): Record<string, unknown> {
  return {
    ...z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }),
    title: 'otel-health-sidecar configuration',
  };
}
