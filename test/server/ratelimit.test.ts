/**
 * Rate limits: the token bucket and its bounded LRU (through the limiter's own
 * API, with its injectable clock), then over HTTP against a real Sidecar: a
 * key's own quota, 429 + Retry-After + JSON, recovery after the window, per-IP
 * limits for anonymous and wrong-key requests, and kubelet paths never limited.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../../src/server/app';
import type { Identity } from '../../src/server/auth';
import type { HttpError } from '../../src/server/respond';
import { createRateLimitGuard, networkList, RateLimiter } from '../../src/server/ratelimit';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { apiKey, bearer, call, startSidecar, type Reply, type RunningSidecar } from '../security/support';
import { request } from '../helpers/http';

describe('RateLimiter (token bucket + LRU)', () => {
  test('a bucket allows `limit` at once, refuses the next with the time until one token is back, and refills over the window', () => {
    let now = 0;
    const limiter = new RateLimiter(100, () => now);
    const rate = { limit: 3, windowMs: 1000 };
    assert.deepEqual([1, 2, 3].map(() => limiter.take('a', rate)), [
      { allowed: true, remaining: 2, retryAfterMs: 0 },
      { allowed: true, remaining: 1, retryAfterMs: 0 },
      { allowed: true, remaining: 0, retryAfterMs: 0 },
    ]);
    assert.deepEqual(limiter.take('a', rate), { allowed: false, remaining: 0, retryAfterMs: 334 });
    assert.equal(limiter.take('b', rate).allowed, true, 'another subject has its own bucket');
    now = 200;
    assert.deepEqual(limiter.take('a', rate), { allowed: false, remaining: 0, retryAfterMs: 134 });
    now = 334;
    assert.equal(limiter.take('a', rate).allowed, true, 'one token back after windowMs/limit');
    assert.equal(limiter.take('a', rate).allowed, false);
    now = 334 + 1000;
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('a', rate).allowed), [true, true, true, false], 'full again after a whole window, never more than limit');
  });

  test('a changed quota (reload) applies at once, keeping the fraction used', () => {
    let now = 0;
    const limiter = new RateLimiter(10, () => now);
    for (let i = 0; i < 10; i++) limiter.take('k', { limit: 10, windowMs: 60_000 });
    assert.equal(limiter.take('k', { limit: 10, windowMs: 60_000 }).allowed, false);
    assert.equal(limiter.take('k', { limit: 100, windowMs: 60_000 }).allowed, false, 'exhausted stays exhausted');
    now = 600; // 100/min = one token per 600 ms
    assert.equal(limiter.take('k', { limit: 100, windowMs: 60_000 }).allowed, true);
  });

  test('10 000 distinct clients and then 40 000 more: size never exceeds the bound, the least recently used go first', () => {
    let now = 0;
    const limiter = new RateLimiter(10_000, () => now);
    const rate = { limit: 1, windowMs: 3_600_000 };
    for (let i = 0; i < 10_000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`, rate);
    assert.equal(limiter.size, 10_000);
    assert.equal(limiter.evicted, 0);
    // client 10.0.0.0 comes back (refused: its one token is spent) and so becomes most recently used
    assert.equal(limiter.take('10.0.0.0', rate).allowed, false);
    let maxSize = 0;
    for (let i = 0; i < 40_000; i++) {
      now++;
      limiter.take(`fd00::${i.toString(16)}`, rate);
      maxSize = Math.max(maxSize, limiter.size);
    }
    assert.equal(maxSize, 10_000);
    assert.equal(limiter.size, 10_000);
    assert.equal(limiter.evicted, 40_000);
    // the 10 000 old IPv4 clients were the least recently used: all forgotten, so a returning one starts afresh
    assert.equal(limiter.take('10.0.0.1', rate).allowed, true);
    assert.equal(limiter.take('fd00::9c3f', rate).allowed, false, 'a recent client is still remembered (and still refused)');
  });

  test('rejects a nonsensical size', () => {
    assert.throws(() => new RateLimiter(0), /maxSubjects must be a positive integer, got 0/);
  });
});

/** a request from another loopback address (another client to the limiter) */
async function callFrom(localAddress: string, port: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const reply = await request(port, path, { headers, localAddress });
  return { status: reply.status, headers: reply.headers, text: reply.body, json: reply.json };
}

describe('rate limits over HTTP', () => {
  const OPS = 'ratelimit-ops-key-000111';
  const CI = 'ratelimit-ci-key-000222';
  let dependency: TestHttpServer;
  let running: RunningSidecar;

  before(async () => {
    dependency = await startHttpServer((_req, res) => res.end('ok'));
    running = await startSidecar(
      `
server:
  port: 0
  host: 127.0.0.1
  auth:
    keys:
      - { name: ops, key: "${OPS}", rateLimit: 3/2s }
      - { name: ci, key: "${CI}", rateLimit: 50/1s }
    anonymousRateLimit: 2/10s
checks:
  - { name: app, kind: http, url: "${dependency.url}/", interval: 1h, groups: [live, ready, startup] }
`,
    );
    await waitFor(() => running.sidecar.store.get('app')?.status === 'UP', { what: 'first run', timeoutMs: 30_000 });
  });
  after(async () => {
    await running.stop();
    await dependency.close();
  });

  test('a key gets its own quota: limit requests pass, the next is 429 with Retry-After and a JSON error; other subjects are unaffected; it recovers after the window', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call(running.port, 'GET', '/health', bearer(OPS))).status);
    assert.deepEqual(statuses, [200, 200, 200]);
    const limited = await call(running.port, 'GET', '/health', apiKey(OPS));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '1');
    assert.equal(limited.headers['cache-control'], 'no-store');
    assert.equal(limited.headers['x-content-type-options'], 'nosniff');
    assert.deepEqual(limited.json(), { error: { code: 'rate_limited', message: 'too many requests for key "ops"; retry in 1s' } });
    // admin endpoints share the key's quota
    assert.equal((await call(running.port, 'GET', '/admin/diagnostics', bearer(OPS))).status, 429);
    // another key and an anonymous client have their own buckets
    assert.equal((await call(running.port, 'GET', '/health', bearer(CI))).status, 200);
    assert.equal((await callFrom('127.0.0.3', running.port, '/health')).status, 200);
    // recovery: after Retry-After seconds a token is back and the key is served again
    await new Promise((resolve) => setTimeout(resolve, Number(limited.headers['retry-after']) * 1000 + 50));
    assert.equal((await call(running.port, 'GET', '/health', bearer(OPS))).status, 200);
  });

  test('anonymous and wrong-key requests spend their client IP\'s quota; a valid key is unaffected; kubelet paths never get 429', async () => {
    const ip = '127.0.0.2';
    assert.deepEqual([(await callFrom(ip, running.port, '/health')).status, (await callFrom(ip, running.port, '/health', bearer('wrong-key-guess-000001'))).status], [200, 401]);
    const limited = await callFrom(ip, running.port, '/health', bearer('wrong-key-guess-000002'));
    assert.equal(limited.status, 429, 'a key guesser is slowed down per address');
    assert.equal(limited.headers['retry-after'], '5');
    assert.deepEqual(limited.json(), { error: { code: 'rate_limited', message: 'too many requests for this client address; retry in 5s' } });
    assert.equal((await callFrom(ip, running.port, '/admin/diagnostics')).status, 429);
    assert.equal((await callFrom(ip, running.port, '/nope')).status, 429, 'unknown paths are limited too');
    // the same address with a valid key uses the key's bucket
    assert.equal((await callFrom(ip, running.port, '/health', bearer(CI))).status, 200);
    // a different address is not affected
    assert.equal((await callFrom('127.0.0.4', running.port, '/health')).status, 200);
    // the kubelet: never limited, whatever it sends
    const probeStatuses = new Set<number>();
    for (let i = 0; i < 100; i++) {
      for (const path of ['/livez', '/readyz', '/startupz', '/health/live', '/health/ready', '/health/startup', '/-/healthy']) {
        probeStatuses.add((await callFrom(ip, running.port, path)).status);
      }
    }
    assert.deepEqual([...probeStatuses], [200]);
    assert.ok(running.sidecar.rateLimit.ipLimiter.size >= 3, 'three client addresses tracked');
  });
});

describe('rate-limit classes (issue 16.6)', () => {
  /** the guard as the server calls it: a request from `address` for `path` */
  function classes(options: { scrapers?: string[] } = {}) {
    let now = 0;
    const clock = () => now;
    const guard = createRateLimitGuard({
      keyRate: () => ({ limit: 1, windowMs: 60_000 }),
      anonymousRate: () => ({ limit: 2, windowMs: 60_000 }),
      metricsPath: () => '/metrics',
      metricsRate: () => ({ limit: 3, windowMs: 60_000 }),
      scraperNetworks: () => networkList(options.scrapers ?? []),
      keyLimiter: new RateLimiter(100, clock),
      ipLimiter: new RateLimiter(100, clock),
      metricsLimiter: new RateLimiter(100, clock),
    });
    const call = (path: string, address = '10.1.2.3', identity: Identity = { kind: 'anonymous' }): number => {
      const req = { socket: { remoteAddress: address } } as unknown as IncomingMessage;
      try {
        guard(req, { url: new URL(`http://x${path}`), identity } as RequestContext);
        return 200;
      } catch (err) {
        return (err as HttpError).status;
      }
    };
    return { call, tick: (ms: number) => (now += ms) };
  }

  test('/metrics has its own per-IP bucket: exhausting /health does not limit scrapes, nor the other way round', () => {
    const { call } = classes();
    assert.deepEqual([1, 2, 3].map(() => call('/health')), [200, 200, 429]);
    assert.deepEqual([1, 2, 3, 4].map(() => call('/metrics')), [200, 200, 200, 429]);
    assert.equal(call('/metrics', '10.9.9.9'), 200, 'per address');
  });

  test('scrapes from scraperNetworks and with a valid key are never counted; kubelet paths and status assets are not counted', () => {
    const { call } = classes({ scrapers: ['10.1.0.0/16', 'fd00::/8'] });
    for (let i = 0; i < 10; i++) assert.equal(call('/metrics', '10.1.2.3'), 200);
    for (let i = 0; i < 10; i++) assert.equal(call('/metrics', '::ffff:10.1.2.3'), 200, 'IPv4-mapped address');
    for (let i = 0; i < 10; i++) assert.equal(call('/metrics', 'fd00::1'), 200);
    assert.deepEqual([1, 2, 3, 4].map(() => call('/metrics', '10.2.0.1')), [200, 200, 200, 429], 'outside the networks: limited');
    for (let i = 0; i < 10; i++) assert.equal(call('/metrics', '10.2.0.1', { kind: 'key', name: 'prom' }), 200, 'an authenticated scrape');
    for (let i = 0; i < 10; i++) for (const path of ['/readyz', '/livez', '/status/app.css', '/status/app.js']) assert.equal(call(path, '10.3.0.1'), 200);
    assert.deepEqual([1, 2, 3].map(() => call('/', '10.3.0.1')), [200, 200, 429], 'the page itself is counted');
  });
});
