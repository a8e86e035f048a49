/**
 * Issue 16.7: shutdown must not resolve before every persistence write is in
 * Redis. Real Redis (a key prefix of our own) behind the TCP fault proxy.
 *  - a value saved while an earlier write is still in flight is written by
 *    close() (it was dropped: flush() waited for the write in flight only);
 *  - a write that fails (Redis refusing) is kept and written when Redis is
 *    back, before close() resolves;
 *  - a write that cannot be done before the deadline is reported (error log
 *    naming the key), and close() still resolves at the deadline.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import Redis from 'ioredis';
import { RedisHistory } from '../../src/persist/redis';
import { Redactor } from '../../src/redact';
import { startFaultProxy } from '../helpers/fault-proxy';
import { REDIS_URL, hostPort, waitFor } from '../helpers/servers';

const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
const prefixes: string[] = [];
after(async () => {
  for (const prefix of prefixes) await redis.del(`${prefix}:incidents`, `${prefix}:dead-letters`).catch(() => undefined);
  redis.disconnect();
});

type Logged = { level: string; fields: Record<string, unknown>; message: string };

function history(url: string, logged: Logged[] = []) {
  const prefix = `test-flush-${randomUUID()}`;
  prefixes.push(prefix);
  const h = new RedisHistory<{ id: string }>({
    url,
    keyPrefix: prefix,
    redactor: () => new Redactor([]),
    onLoad: () => undefined,
    log: (level, fields, message) => logged.push({ level, fields, message }),
    connectTimeoutMs: 500,
  });
  return { h, prefix };
}

async function stored(prefix: string): Promise<{ incidents: unknown; dead: unknown }> {
  const [incidents, dead] = await redis.mget(`${prefix}:incidents`, `${prefix}:dead-letters`);
  return { incidents: incidents && JSON.parse(incidents), dead: dead && JSON.parse(dead) };
}

describe('RedisHistory: every write flushed before close() resolves', () => {
  test('a value saved while another write is in flight is written by close()', async () => {
    await redis.connect();
    const { h, prefix } = history(REDIS_URL);
    assert.equal(await h.start(), true);
    h.saveIncidents([]); // starts a write
    h.saveDeadLetters([{ id: 'letter-1' }], 0); // queued behind it
    await h.close();
    assert.deepEqual(await stored(prefix), { incidents: [], dead: { letters: [{ id: 'letter-1' }], dropped: 0 } });
  });

  test('a failed write is retried when Redis is back, before close() resolves', async () => {
    const proxy = await startFaultProxy(hostPort(REDIS_URL));
    try {
      const logged: Logged[] = [];
      const { h, prefix } = history(proxy.url('redis'), logged);
      assert.equal(await h.start(), true);
      proxy.setMode('refuse');
      h.saveDeadLetters([{ id: 'letter-2' }], 0);
      await waitFor(() => logged.some((l) => l.level === 'warn'), { what: 'the failed write reported' });
      const closing = h.close(30_000);
      proxy.setMode('pass');
      await closing;
      assert.deepEqual((await stored(prefix)).dead, { letters: [{ id: 'letter-2' }], dropped: 0 });
      assert.equal(logged.filter((l) => l.level === 'error').length, 0, 'nothing reported lost');
    } finally {
      await proxy.close();
    }
  });

  test('a write impossible before the deadline is reported, naming the key', async () => {
    const proxy = await startFaultProxy(hostPort(REDIS_URL));
    try {
      const logged: Logged[] = [];
      const { h, prefix } = history(proxy.url('redis'), logged);
      assert.equal(await h.start(), true);
      proxy.setMode('refuse');
      h.saveDeadLetters([{ id: 'letter-3' }], 0);
      await h.close(300);
      const errors = logged.filter((l) => l.level === 'error');
      assert.equal(errors.length, 1);
      assert.deepEqual(errors[0]!.fields.keys, [`${prefix}:dead-letters`]);
      assert.match(errors[0]!.message, /not written before shutdown/);
      assert.equal((await stored(prefix)).dead, null);
    } finally {
      await proxy.close();
    }
  });
});
