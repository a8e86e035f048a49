import { hostname } from 'node:os';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { trace } from '@opentelemetry/api';
import type Redis from 'ioredis';
import { z } from 'zod';
import { commonCheck, tlsSchema, urlWithSchemes } from '../config/schema';
import { urlSecrets } from '../config/secrets';
import type { KindCheckConfig } from '../config/types';
import { ProbeFailure, PROBE_ERROR, probeErrorCode } from '../errors';
import { REDACTED } from '../redact';
import { ATTR } from '../telemetry/semconv';
import { probeInstruments } from './instruments';
import { abortable, closePolitely, errorMessage, hardClose, isStaleConnectionError, type Probe, type ProbeContext, type ProbeKind, type ProbeResult } from './probe';
import { evaluateCluster, evaluateMemory, ROUND_TRIP_TTL_SECONDS, roundTripKey } from './redis-checks';
import { evaluateRedisReplication, parseRedisInfo } from './replication';
import { CertExpiryRegistry, certificateExpiry, minValidityVerdict, type CertExpiry } from './tls-expiry';

/** host:port, host name or IPv4, or [IPv6]:port */
const SENTINEL_ADDRESS = /^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*|\[[0-9a-fA-F:.]+\]):\d{1,5}$/;

const schema = z
  .strictObject({
    ...commonCheck,
    kind: z.literal('redis'),
    url: urlWithSchemes(['redis', 'rediss']).describe(
      'redis://[[user]:password@]host[:port][/db]; rediss:// for TLS. With sentinels: the scheme, credentials and db of the master (the host is not used; write the master name there)',
    ),
    tls: tlsSchema.optional().describe('TLS options (only with rediss://)'),
    role: z.enum(['master', 'replica']).optional().describe('required replication role (INFO replication role:)'),
    maxReplicationLagSeconds: z
      .number()
      .min(0)
      .optional()
      .describe('on a replica: fail when the master link is down or master_last_io_seconds_ago exceeds this'),
    sentinels: z
      .array(z.string().regex(SENTINEL_ADDRESS, { error: 'must be host:port, e.g. sentinel-0.redis:26379' }))
      .min(1)
      .optional()
      .describe('Redis Sentinels to ask for the current master of masterName (host:port, tried in order); the probe checks that master'),
    masterName: z.string().min(1).optional().describe('the master group the Sentinels monitor (SENTINEL GET-MASTER-ADDR-BY-NAME)'),
    sentinelPassword: z.string().optional().describe('password of the Sentinels (their requirepass), if any'),
    cluster: z.boolean().default(false).describe('Redis Cluster: CLUSTER INFO must say cluster_state:ok with all 16384 slots ok'),
    maxMemoryRatio: z
      .number()
      .gt(0)
      .max(1)
      .optional()
      .describe('fail when used_memory / maxmemory (INFO memory) exceeds this, e.g. 0.9; not applicable without a maxmemory'),
    roundTrip: z
      .boolean()
      .default(false)
      .describe('SET a key of its own with a 60 s expiry and GET it back (otel-health-sidecar:roundtrip:<host name>:<check name>)'),
  })
  .superRefine((check, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (check.role === 'master' && check.maxReplicationLagSeconds !== undefined) {
      issue('maxReplicationLagSeconds', 'applies only to a replica (role: master has no replication lag)');
    }
    if (check.tls !== undefined && check.url.startsWith('redis://')) issue('tls', 'TLS options need a rediss:// URL (redis:// is plaintext)');
    if (check.sentinels !== undefined && check.masterName === undefined) issue('masterName', 'is required with sentinels (the master group to ask for)');
    if (check.masterName !== undefined && check.sentinels === undefined) issue('sentinels', 'are required with masterName (the Sentinels to ask)');
    if (check.sentinelPassword !== undefined && check.sentinels === undefined) issue('sentinelPassword', 'applies only with sentinels');
    if (check.sentinels !== undefined) {
      if (check.cluster) issue('cluster', 'cannot be combined with sentinels (a Cluster has no Sentinels)');
      if (check.role === 'replica' || check.maxReplicationLagSeconds !== undefined) {
        issue(check.role === 'replica' ? 'role' : 'maxReplicationLagSeconds', 'with sentinels the probe checks the master the Sentinels name (role master is checked always)');
      }
    }
    if (check.roundTrip && check.role === 'replica') issue('roundTrip', 'writes a key: a replica refuses writes (READONLY)');
  });

export type RedisCheckConfig = KindCheckConfig<typeof schema>;

const target = (check: RedisCheckConfig) => {
  if (check.sentinels) return `redis master ${check.masterName} (Sentinels ${check.sentinels.join(', ')})`;
  const url = new URL(check.url);
  return `redis ${url.hostname}:${url.port || '6379'}`;
};

const AUTH_ERROR = /WRONGPASS|NOAUTH|invalid password|invalid username-password|AUTH.*failed/i;

interface Endpoint {
  host: string;
  port: number;
  /** the Sentinel that named it (sentinel mode) */
  sentinel?: string;
}

/** "host:port" and "[v6]:port" → host and port */
function parseAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(address.slice(colon + 1)) };
}

const addressText = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * redis:// or rediss:// — PING over one kept connection, then what the check
 * asks for on the same connection: replication role/lag, CLUSTER INFO, memory
 * pressure, a write round trip. With `sentinels`, each run first asks the
 * Sentinels for the current master of `masterName` and probes that node
 * (reconnecting when the master moved), and checks it says role:master.
 *
 * Safe defaults: no offline queue (a command on a dead connection fails at
 * once), connect timeout = check timeout, no automatic reconnects or
 * per-request retries (the policy decides when to try again). A connection
 * that timed out is reset (RST) and the next run connects afresh. A kept
 * connection found dead at the start of a run (closed by the server while
 * idle) is replaced once within the same attempt.
 */
function createRedisProbe(check: RedisCheckConfig, context: ProbeContext): Probe {
  // the driver loads with the first redis check, not with the sidecar
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Redis = (require('ioredis') as typeof import('ioredis')).default;
  const url = new URL(check.url);
  const secure = url.protocol === 'rediss:';
  const tlsOptions: ConnectionOptions | undefined = secure
    ? {
        ca: check.tls?.ca,
        cert: check.tls?.cert,
        key: check.tls?.key,
        servername: check.tls?.serverName,
        rejectUnauthorized: !(check.tls?.insecureSkipVerify ?? false),
      }
    : undefined;
  /** what every connection to a data node shares (credentials and db from the URL) */
  const nodeOptions = {
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    tls: tlsOptions,
  };
  const fixed: Endpoint | undefined = check.sentinels ? undefined : { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379) };
  const sentinels = check.sentinels?.map(parseAddress) ?? [];
  const roundTrip = check.roundTrip ? roundTripKey(hostname(), check.name) : undefined;
  const certs = (context.certExpiry ?? new CertExpiryRegistry()).recorder(check.name, check.kind);
  const safeDefaults = (timeout: number) => ({
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    connectTimeout: timeout,
    commandTimeout: timeout,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    reconnectOnError: () => false,
    autoResubscribe: false,
  });

  let client: Redis | undefined;
  let endpoint: Endpoint | undefined;
  /** the certificate the current connection's server presented (rediss://) */
  let certificate: CertExpiry | undefined;
  /** cluster mode: the round-trip key that lives on the node we talk to (per connection) */
  let clusterKey: string | undefined;
  /** first error each connection reported (e.g. WRONGPASS from the AUTH sent on connect) */
  const connectionErrors = new WeakMap<Redis, Error>();
  /** the Sentinel connection kept between runs, and which one it is */
  let sentinel: { redis: Redis; index: number } | undefined;
  // healthcheck.connections: the data node's connection and the Sentinel's, idle between runs
  const instruments = probeInstruments(check, context.metrics, () => {
    const open = (client ? 1 : 0) + (sentinel ? 1 : 0);
    return instruments.busy ? { idle: 0, used: open } : { idle: open, used: 0 };
  });

  function drop(redis: Redis | undefined) {
    if (!redis) return;
    if (client === redis) client = undefined;
    redis.removeAllListeners('close');
    // disconnect() alone ends the stream with a FIN that a hung server never answers
    hardClose(redis.stream);
    redis.disconnect(false);
  }

  function dropSentinel() {
    if (!sentinel) return;
    hardClose(sentinel.redis.stream);
    sentinel.redis.disconnect(false);
    sentinel = undefined;
  }

  /** A new connection; resolves once it is usable, rejects with the first error it met. */
  async function connect(to: Endpoint, signal: AbortSignal): Promise<Redis> {
    const redis = new Redis({
      ...nodeOptions,
      host: to.host,
      port: to.port,
      ...safeDefaults(check.timeout),
      // CLIENT SETNAME: the check's connection is identifiable in CLIENT LIST (one per check)
      connectionName: `otel-health-sidecar:${check.name}`,
    });
    redis.on('error', (err: Error) => {
      if (!connectionErrors.has(redis)) connectionErrors.set(redis, err);
    });
    client = redis;
    endpoint = to;
    clusterKey = undefined;
    try {
      await abortable(redis.connect(), signal, () => drop(redis));
    } catch (err) {
      drop(redis);
      throw signal.aborted ? err : (connectionErrors.get(redis) ?? err);
    }
    if (secure) {
      certificate = certificateExpiry((redis.stream as TLSSocket).getPeerCertificate?.(true));
      if (certificate) certs.record(certificate);
    }
    redis.once('close', () => {
      if (client === redis) {
        client = undefined;
        context.onConnectionLost?.('redis connection closed');
      }
    });
    return redis;
  }

  async function ping(redis: Redis, signal: AbortSignal): Promise<string> {
    try {
      return String(await abortable(redis.ping(), signal, () => drop(redis)));
    } catch (err) {
      // ioredis may report "ready" before the AUTH reply failed the connection; the
      // PING then fails with "Stream isn't writeable", while the cause is the auth error.
      const cause = connectionErrors.get(redis);
      throw !signal.aborted && cause && AUTH_ERROR.test(cause.message) ? cause : err;
    }
  }

  /**
   * Ask the Sentinels, in order from the one that answered last, for the
   * current master. Each gets an equal share of the timeout, so one that is
   * silent does not leave the others no time.
   */
  async function resolveMaster(signal: AbortSignal): Promise<Endpoint> {
    const share = Math.max(50, Math.floor(check.timeout / sentinels.length));
    const problems: string[] = [];
    const start = sentinel?.index ?? 0;
    for (let i = 0; i < sentinels.length; i++) {
      const index = (start + i) % sentinels.length;
      const address = sentinels[index]!;
      const name = addressText(address.host, address.port);
      try {
        if (sentinel?.index !== index || sentinel.redis.status !== 'ready') {
          dropSentinel();
          // over TLS when the url is rediss:// (same CA and client certificate; tls.serverName is the master's name, not theirs)
          const tls = tlsOptions && { ...tlsOptions, servername: undefined };
          const redis = new Redis({ host: address.host, port: address.port, password: check.sentinelPassword, tls, ...safeDefaults(share) });
          redis.on('error', (err: Error) => {
            if (!connectionErrors.has(redis)) connectionErrors.set(redis, err);
          });
          sentinel = { redis, index };
          try {
            await abortable(redis.connect(), signal, dropSentinel);
          } catch (err) {
            throw signal.aborted ? err : (connectionErrors.get(redis) ?? err);
          }
        }
        const active = sentinel!.redis;
        let reply: [string, string] | null;
        try {
          reply = (await abortable(active.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', check.masterName!), signal, dropSentinel)) as [string, string] | null;
        } catch (err) {
          // as with PING: the AUTH reply may fail the connection only after ioredis called it ready
          const cause = connectionErrors.get(active);
          throw !signal.aborted && cause && AUTH_ERROR.test(cause.message) ? cause : err;
        }
        if (!reply) {
          problems.push(`${name}: does not know master ${check.masterName}`);
          dropSentinel();
          continue;
        }
        return { host: reply[0], port: Number(reply[1]), sentinel: name };
      } catch (err) {
        if (signal.aborted) throw err;
        dropSentinel();
        const message = errorMessage(err);
        problems.push(`${name}: ${AUTH_ERROR.test(message) ? `authentication failed (${message})` : message}`);
      }
    }
    throw new ProbeFailure(PROBE_ERROR.connect, context.redactor.text(`${target(check)}: no Sentinel named the master (${problems.join('; ')})`));
  }

  /** One command on the probe's connection; a failure names what failed. */
  async function command<T>(redis: Redis, signal: AbortSignal, where: string, what: string, send: () => Promise<T>): Promise<T> {
    try {
      return await abortable(send(), signal, () => drop(redis));
    } catch (err) {
      if (signal.aborted) throw err;
      throw new ProbeFailure(AUTH_ERROR.test(errorMessage(err)) ? PROBE_ERROR.auth : probeErrorCode(err), context.redactor.text(`${where}: ${what} failed: ${errorMessage(err)}`), { cause: err });
    }
  }

  /** Cluster mode: a round-trip key whose slot this node serves (found once per connection with CLUSTER KEYSLOT). */
  async function keyOnThisNode(redis: Redis, signal: AbortSignal, where: string, base: string): Promise<string> {
    if (clusterKey) return clusterKey;
    const myId = String(await command(redis, signal, where, 'CLUSTER MYID', () => redis.call('CLUSTER', 'MYID')));
    // each entry: [first slot, last slot, [ip, port, id] of the master, …its replicas]
    const slots = (await command(redis, signal, where, 'CLUSTER SLOTS', () => redis.call('CLUSTER', 'SLOTS'))) as [number, number, [string, number, string]][];
    const mine = slots.filter((range) => range[2]?.[2] === myId);
    if (mine.length === 0) throw new ProbeFailure(PROBE_ERROR.unhealthy, `${where}: this node serves no slots, so roundTrip has nowhere to write`);
    for (let n = 0; n < 1000; n++) {
      const key = `${base}:${n}`;
      const slot = Number(await command(redis, signal, where, 'CLUSTER KEYSLOT', () => redis.call('CLUSTER', 'KEYSLOT', key)));
      if (mine.some(([from, to]) => slot >= from && slot <= to)) return (clusterKey = key);
    }
    throw new ProbeFailure(PROBE_ERROR.unhealthy, `${where}: found no round-trip key for the slots this node serves`);
  }

  async function runOnce(signal: AbortSignal): Promise<ProbeResult> {
    let reply: string;
    let to: Endpoint | undefined;
    const where = () => (to?.sentinel ? `redis ${addressText(to.host, to.port)} (master of ${check.masterName} per Sentinel ${to.sentinel})` : target(check));
    try {
      to = fixed ?? (await resolveMaster(signal));
      const moved = endpoint !== undefined && (endpoint.host !== to.host || endpoint.port !== to.port);
      const kept = client?.status === 'ready' && !moved ? client : undefined;
      if (!kept) drop(client);
      try {
        reply = await ping(kept ?? (await connect(to, signal)), signal);
      } catch (err) {
        if (!kept || signal.aborted || !isStaleConnectionError(err)) throw err;
        drop(kept);
        reply = await ping(await connect(to, signal), signal);
      }
    } catch (err) {
      if (signal.aborted || err instanceof ProbeFailure) throw err;
      drop(client);
      const code = (err as NodeJS.ErrnoException).code ?? '';
      const message = code.startsWith('ERR_SSL_') ? opensslReason(errorMessage(err)) : errorMessage(err);
      // TLS 1.3: a server that wants a client certificate rejects it after the handshake, with a
      // reset, or (when the alert arrives first) with "alert certificate required"
      const withoutClientCert = secure && check.tls?.cert === undefined;
      const hint = !withoutClientCert
        ? ''
        : code === 'ECONNRESET'
          ? ' (right after the TLS handshake: does the server require a client certificate? tls.cert and tls.key)'
          : /alert certificate required/i.test(message)
            ? ' (the server requires a client certificate: tls.cert and tls.key)'
            : '';
      throw new ProbeFailure(AUTH_ERROR.test(message) ? PROBE_ERROR.auth : probeErrorCode(err), context.redactor.text(`${where()}: ${AUTH_ERROR.test(message) ? `authentication failed (${message})` : message}${hint}`), { cause: err });
    }
    if (to.sentinel) {
      // which node answered, on the attempt's span (the runner makes it active)
      trace.getActiveSpan()?.setAttributes({ [ATTR.redisNode]: addressText(to.host, to.port), [ATTR.redisSentinel]: to.sentinel });
    }
    if (reply !== 'PONG') return { ok: false, message: context.redactor.text(`${where()}: PING answered ${JSON.stringify(reply.slice(0, 64))}`) };
    const redis = client;
    if (!redis) throw new ProbeFailure(PROBE_ERROR.connect, `${where()}: connection closed after PING`);
    const parts = [to.sentinel ? `PONG from ${addressText(to.host, to.port)}, master of ${check.masterName} per Sentinel ${to.sentinel}` : 'PONG'];
    const verdicts: (() => Promise<{ ok: boolean; message: string }>)[] = [];
    const role = to.sentinel ? 'master' : check.role;
    if (role !== undefined || check.maxReplicationLagSeconds !== undefined) {
      verdicts.push(async () =>
        evaluateRedisReplication(parseRedisInfo(String(await command(redis, signal, where(), 'INFO replication', () => redis.info('replication')))), {
          role,
          maxReplicationLagSeconds: check.maxReplicationLagSeconds,
        }),
      );
    }
    if (check.cluster) {
      verdicts.push(async () => evaluateCluster(parseRedisInfo(String(await command(redis, signal, where(), 'CLUSTER INFO', () => redis.call('CLUSTER', 'INFO'))))));
    }
    if (check.maxMemoryRatio !== undefined) {
      const ratio = check.maxMemoryRatio;
      verdicts.push(async () => evaluateMemory(parseRedisInfo(String(await command(redis, signal, where(), 'INFO memory', () => redis.info('memory')))), ratio));
    }
    if (roundTrip) {
      verdicts.push(async () => {
        const key = check.cluster ? await keyOnThisNode(redis, signal, where(), roundTrip) : roundTrip;
        const token = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
        await command(redis, signal, where(), `SET ${key}`, () => redis.set(key, token, 'EX', ROUND_TRIP_TTL_SECONDS));
        const back = await command(redis, signal, where(), `GET ${key}`, () => redis.get(key));
        if (back !== token) return { ok: false, message: `round trip: GET ${key} returned ${back === null ? 'nothing' : 'another value'} right after SET` };
        return { ok: true, message: `round trip ok (${key})` };
      });
    }
    for (const verdict of verdicts) {
      const result = await verdict();
      if (!result.ok) return { ok: false, message: context.redactor.text(`${where()}: ${result.message}`) };
      parts.push(result.message);
    }
    if (secure) {
      const validity = minValidityVerdict(certificate, check.tls ?? {});
      if (validity.state === 'fail') return { ok: false, message: context.redactor.text(`${where()}: ${parts[0]}, but ${validity.message}`) };
      if (validity.state === 'warn') parts.push(validity.message);
    }
    return { ok: true, message: context.redactor.text(parts.join(', ')) };
  }

  return {
    run: (signal) => instruments.track(() => runOnce(signal)),
    async close() {
      instruments.close();
      dropSentinel();
      certs.clear();
      const current = client;
      client = undefined;
      current?.removeAllListeners('close');
      if (current) await closePolitely(() => current.quit(), () => drop(current));
    },
  };
}

export const redisKind: ProbeKind<RedisCheckConfig> = {
  kind: 'redis',
  schema,
  create: createRedisProbe,
  targetField: 'url',
  placeholder: 'redis://unset.invalid:1',
  target,
  secrets: (check) => [...urlSecrets(check.url), ...(check.sentinelPassword ? [check.sentinelPassword] : []), ...(check.tls?.key ? [check.tls.key] : [])],
  // tls.key is masked by the Redactor's secret-named keys; sentinelPassword's name is not one of those
  redact: (check, redactor) => ({ ...check, url: redactor.url(check.url), ...(check.sentinelPassword === undefined ? {} : { sentinelPassword: REDACTED }) }),
};

/**
 * OpenSSL's message without its internals: "80DC…:error:0A00045C:SSL
 * routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/…:1601:SSL
 * alert number 116\n" → "TLS error: tlsv13 alert certificate required (SSL alert
 * number 116)". A message of another shape is kept as it is, trimmed.
 */
export function opensslReason(message: string): string {
  const reason = /:SSL routines:[^:]*:([^:]+):/.exec(message)?.[1];
  if (!reason) return message.trim();
  const alert = /SSL alert number (\d+)/.exec(message)?.[1];
  return `TLS error: ${reason}${alert ? ` (SSL alert number ${alert})` : ''}`;
}
