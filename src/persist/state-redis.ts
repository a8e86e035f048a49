/**
 * The one way persist/ connects to `state.redis`: ioredis loaded only when
 * state.redis is configured, connected lazily, failing fast while Redis is
 * away (no offline queue, one retry per command) and reconnecting with a
 * capped backoff, so a slow or absent Redis never holds up probes.
 */
import type Redis from 'ioredis';

export function stateRedis(url: string, options: { connectTimeoutMs?: number; commandTimeoutMs?: number } = {}): Redis {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const RedisClient = (require('ioredis') as typeof import('ioredis')).default;
  return new RedisClient(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    retryStrategy: (times) => Math.min(times * 200, 5000),
    ...(options.commandTimeoutMs !== undefined ? { commandTimeout: options.commandTimeoutMs } : {}),
  });
}
