import Redis from 'ioredis';
import type { CheckConfigOf } from '../config/types';
import { abortable, errorMessage, type Probe, type ProbeContext } from './probe';

const AUTH_ERROR = /WRONGPASS|NOAUTH|invalid password|invalid username-password|AUTH.*failed/i;

/**
 * redis:// or rediss:// — PING over one kept connection. Safe defaults: no
 * offline queue (a command on a dead connection fails at once), connect
 * timeout = check timeout, no automatic reconnects or per-request retries
 * (the policy decides when to try again). A connection that timed out is
 * destroyed and the next run connects afresh.
 */
export function createRedisProbe(check: CheckConfigOf<'redis'>, context: ProbeContext): Probe {
  let client: Redis | undefined;
  let lastError: Error | undefined;

  function drop(target: Redis | undefined) {
    if (!target) return;
    if (client === target) client = undefined;
    target.removeAllListeners('close');
    target.disconnect(false);
  }

  function connect(): { redis: Redis; ready: Promise<void> } {
    lastError = undefined;
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
      connectionName: 'otel-health-sidecar',
    });
    redis.on('error', (err: Error) => {
      lastError = err;
    });
    const ready = redis.connect().then(
      () => {
        redis.once('close', () => {
          if (client === redis) {
            client = undefined;
            context.onConnectionLost?.('redis connection closed');
          }
        });
      },
      (err: unknown) => {
        throw lastError ?? err;
      },
    );
    return { redis, ready };
  }

  return {
    async run(signal) {
      let redis = client;
      try {
        if (!redis || redis.status !== 'ready') {
          drop(redis);
          const fresh = connect();
          redis = fresh.redis;
          client = redis;
          await abortable(fresh.ready, signal, () => drop(fresh.redis));
        }
        const current = redis;
        const reply = await abortable(current.ping(), signal, () => drop(current));
        if (reply !== 'PONG') return { ok: false, message: `PING answered ${JSON.stringify(String(reply).slice(0, 64))}` };
        return { ok: true, message: 'PONG' };
      } catch (err) {
        if (!signal.aborted) drop(redis);
        const message = errorMessage(lastError ?? err);
        throw new Error(context.redactor.text(AUTH_ERROR.test(message) ? `authentication failed: ${message}` : message));
      }
    },
    async close() {
      const current = client;
      client = undefined;
      if (current) {
        current.removeAllListeners('close');
        await current.quit().catch(() => current.disconnect(false));
      }
    },
  };
}
