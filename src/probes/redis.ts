import type Redis from 'ioredis';
import { z } from 'zod';
import { commonCheck, urlWithSchemes } from '../config/schema';
import { urlSecrets } from '../config/secrets';
import type { KindCheckConfig } from '../config/types';
import { ProbeFailure } from '../errors';
import { abortable, errorMessage, hardClose, isStaleConnectionError, type Probe, type ProbeContext, type ProbeKind } from './probe';
import { checkRedisReplication } from './replication';

const schema = z
  .strictObject({
    ...commonCheck,
    kind: z.literal('redis'),
    url: urlWithSchemes(['redis', 'rediss']),
    role: z.enum(['master', 'replica']).optional().describe('required replication role (INFO replication role:)'),
    maxReplicationLagSeconds: z
      .number()
      .min(0)
      .optional()
      .describe('on a replica: fail when the master link is down or master_last_io_seconds_ago exceeds this'),
  })
  .superRefine((check, ctx) => {
    if (check.role === 'master' && check.maxReplicationLagSeconds !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['maxReplicationLagSeconds'], message: 'applies only to a replica (role: master has no replication lag)' });
    }
  });

export type RedisCheckConfig = KindCheckConfig<typeof schema>;

const target = (check: RedisCheckConfig) => {
  const url = new URL(check.url);
  return `redis ${url.hostname}:${url.port || '6379'}`;
};

const AUTH_ERROR = /WRONGPASS|NOAUTH|invalid password|invalid username-password|AUTH.*failed/i;

/**
 * redis:// or rediss:// — PING over one kept connection. Safe defaults: no
 * offline queue (a command on a dead connection fails at once), connect
 * timeout = check timeout, no automatic reconnects or per-request retries
 * (the policy decides when to try again). A connection that timed out is
 * reset (RST) and the next run connects afresh. A kept connection found dead
 * at the start of a run (closed by the server while idle) is replaced once
 * within the same attempt.
 */
function createRedisProbe(check: RedisCheckConfig, context: ProbeContext): Probe {
  // the driver loads with the first redis check, not with the sidecar
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Redis = (require('ioredis') as typeof import('ioredis')).default;
  const where = target(check);
  let client: Redis | undefined;
  /** first error each connection reported (e.g. WRONGPASS from the AUTH sent on connect) */
  const connectionErrors = new WeakMap<Redis, Error>();

  function drop(redis: Redis | undefined) {
    if (!redis) return;
    if (client === redis) client = undefined;
    redis.removeAllListeners('close');
    // disconnect() alone ends the stream with a FIN that a hung server never answers
    hardClose(redis.stream);
    redis.disconnect(false);
  }

  /** A new connection; resolves once it is usable, rejects with the first error it met. */
  async function connect(signal: AbortSignal): Promise<Redis> {
    const redis = new Redis(check.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableReadyCheck: false,
      connectTimeout: check.timeout,
      commandTimeout: check.timeout,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      reconnectOnError: () => false,
      autoResubscribe: false,
      // CLIENT SETNAME: the check's connection is identifiable in CLIENT LIST (one per check)
      connectionName: `otel-health-sidecar:${check.name}`,
    });
    redis.on('error', (err: Error) => {
      if (!connectionErrors.has(redis)) connectionErrors.set(redis, err);
    });
    client = redis;
    try {
      await abortable(redis.connect(), signal, () => drop(redis));
    } catch (err) {
      drop(redis);
      throw signal.aborted ? err : (connectionErrors.get(redis) ?? err);
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

  return {
    async run(signal) {
      let reply: string;
      try {
        const kept = client?.status === 'ready' ? client : undefined;
        if (!kept) drop(client);
        try {
          reply = await ping(kept ?? (await connect(signal)), signal);
        } catch (err) {
          if (!kept || signal.aborted || !isStaleConnectionError(err)) throw err;
          drop(kept);
          reply = await ping(await connect(signal), signal);
        }
      } catch (err) {
        if (signal.aborted) throw err;
        drop(client);
        const message = errorMessage(err);
        throw new ProbeFailure('REDIS_FAILED', context.redactor.text(`${where}: ${AUTH_ERROR.test(message) ? `authentication failed (${message})` : message}`));
      }
      if (reply !== 'PONG') return { ok: false, message: context.redactor.text(`${where}: PING answered ${JSON.stringify(reply.slice(0, 64))}`) };
      if (check.role !== undefined || check.maxReplicationLagSeconds !== undefined) {
        // role / lag from INFO replication on the same connection (see replication.ts)
        const active = client;
        if (!active) throw new ProbeFailure('REDIS_FAILED', `${where}: connection closed before INFO replication`);
        return checkRedisReplication(active, signal, check, where, context.redactor, () => drop(active));
      }
      return { ok: true, message: 'PONG' };
    },
    async close() {
      const current = client;
      client = undefined;
      if (current) {
        current.removeAllListeners('close');
        await Promise.race([current.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
        drop(current);
      }
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
  secrets: (check) => urlSecrets(check.url),
  redact: (check, redactor) => ({ ...check, url: redactor.url(check.url) }),
};
