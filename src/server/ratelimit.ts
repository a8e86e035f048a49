/**
 * Rate limits (SPEC §4, §8): a token bucket per subject (an API key's name,
 * or a client IP for requests without a valid key), kept in an LRU of bounded
 * size so that any number of distinct clients costs a fixed amount of memory.
 *
 * A bucket holds `limit` tokens and refills continuously at limit/windowMs,
 * so a client may burst `limit` requests and then gets `limit` per window;
 * after one whole idle window the bucket is full again. Evicting a subject
 * from the LRU forgets its history: it may burst again. With the default of
 * 10 000 subjects that needs more distinct addresses than a flood from one
 * pod network usually has, and memory stays bounded either way.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList } from 'node:net';
import type { RequestContext } from './app';
import { unauthorized } from './auth';
import { HttpError } from './respond';

export interface Rate {
  limit: number;
  windowMs: number;
}

export interface Decision {
  allowed: boolean;
  /** tokens left after this request (whole tokens) */
  remaining: number;
  /** when not allowed: ms until one token is back */
  retryAfterMs: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
  rate: Rate;
}

export const DEFAULT_MAX_SUBJECTS = 10_000;

export class RateLimiter {
  /** Map iteration order = recency order: the first entry is the least recently used. */
  private readonly buckets = new Map<string, Bucket>();
  private evictions = 0;

  constructor(
    readonly maxSubjects = DEFAULT_MAX_SUBJECTS,
    private readonly clock: () => number = () => performance.now(),
  ) {
    if (!Number.isInteger(maxSubjects) || maxSubjects < 1) throw new RangeError(`maxSubjects must be a positive integer, got ${maxSubjects}`);
  }

  /** subjects currently tracked (never more than maxSubjects) */
  get size(): number {
    return this.buckets.size;
  }

  /** subjects forgotten to make room for others, since start */
  get evicted(): number {
    return this.evictions;
  }

  /** Take one token from `subject`'s bucket. */
  take(subject: string, rate: Rate): Decision {
    const now = this.clock();
    let bucket = this.buckets.get(subject);
    if (bucket) {
      this.buckets.delete(subject); // re-inserted below: most recently used
      if (bucket.rate.limit !== rate.limit || bucket.rate.windowMs !== rate.windowMs) {
        // quota changed by a reload: keep the fraction used, apply the new size
        bucket = { tokens: Math.min(rate.limit, (bucket.tokens / bucket.rate.limit) * rate.limit), updatedAt: bucket.updatedAt, rate };
      }
      const refill = ((now - bucket.updatedAt) * rate.limit) / rate.windowMs;
      bucket.tokens = Math.min(rate.limit, bucket.tokens + Math.max(0, refill));
      bucket.updatedAt = now;
    } else {
      bucket = { tokens: rate.limit, updatedAt: now, rate };
      while (this.buckets.size >= this.maxSubjects) {
        const oldest = this.buckets.keys().next().value as string;
        this.buckets.delete(oldest);
        this.evictions++;
      }
    }
    this.buckets.set(subject, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true, remaining: Math.floor(bucket.tokens), retryAfterMs: 0 };
    }
    const msPerToken = rate.windowMs / rate.limit;
    return { allowed: false, remaining: 0, retryAfterMs: Math.max(1, Math.ceil((1 - bucket.tokens) * msPerToken)) };
  }

  /** Forget everything (tests, or a reload that removes every key). */
  clear(): void {
    this.buckets.clear();
  }
}

/**
 * Paths the kubelet calls: never rate limited (a 429 there would restart or
 * unready the pod for a reason that has nothing to do with its health), and
 * never authenticated.
 */
export const UNLIMITED_PATHS: ReadonlySet<string> = new Set(['/livez', '/readyz', '/startupz', '/health/live', '/health/ready', '/health/startup', '/-/healthy']);

/**
 * The status page's static files: loaded with the page (one page view, not
 * one request per file), immutable for a version and cheap — never counted.
 * The page itself and its fragment polls are counted.
 */
export const STATUS_ASSET_PATHS: ReadonlySet<string> = new Set(['/status/app.css', '/status/app.js']);

/**
 * Rate-limit classes (issue 16.6):
 *   unlimited  kubelet paths and status page assets: never counted
 *   metrics    the Prometheus path: its own per-IP bucket (`metricsRateLimit`),
 *              not counted at all for a valid key or an address in
 *              `scraperNetworks`, so a scrape never competes with /health
 *              callers or status-page viewers on the same address
 *   default    everything else: the key's quota, or the anonymous per-IP quota
 */
export type RateClass = 'unlimited' | 'metrics' | 'default';

export function rateClass(pathname: string, metricsPath: string | undefined): RateClass {
  if (UNLIMITED_PATHS.has(pathname) || STATUS_ASSET_PATHS.has(pathname)) return 'unlimited';
  if (metricsPath !== undefined && pathname === metricsPath) return 'metrics';
  return 'default';
}

export interface RateLimitGuardOptions {
  /** the current quota of a key by name (reads the live config, so reloads apply) */
  keyRate(name: string): Rate | undefined;
  /** the current quota per client IP for requests without a valid key */
  anonymousRate(): Rate;
  /**
   * true when keys are configured: a request that presents a wrong key is then
   * answered 401 on every limited path (after spending its IP's quota), rather
   * than silently served as anonymous
   */
  rejectInvalidKeys?(): boolean;
  /** the Prometheus path (undefined: no metrics endpoint) */
  metricsPath?(): string | undefined;
  /** per client IP on the metrics path, its own bucket */
  metricsRate?(): Rate;
  /** addresses whose requests to the metrics path are never counted */
  scraperNetworks?(): BlockList | undefined;
  keyLimiter?: RateLimiter;
  ipLimiter?: RateLimiter;
  metricsLimiter?: RateLimiter;
}

export interface RateLimitGuard {
  (req: IncomingMessage, ctx: RequestContext): void;
  keyLimiter: RateLimiter;
  ipLimiter: RateLimiter;
  metricsLimiter: RateLimiter;
}

/** The client address: the socket's peer. X-Forwarded-For is not trusted (no trusted-proxy option). */
export function clientAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * The `guard` hook of createHttpServer: a valid key spends its own quota;
 * anything else (no key, a wrong key) spends its client IP's quota, so a key
 * guesser is slowed down per address. Throws 429 with Retry-After (whole
 * seconds, at least 1), then 401 for a wrong key (see rejectInvalidKeys).
 * Kubelet probe paths are exempt from both.
 */
export function createRateLimitGuard(options: RateLimitGuardOptions): RateLimitGuard {
  const keyLimiter = options.keyLimiter ?? new RateLimiter();
  const ipLimiter = options.ipLimiter ?? new RateLimiter();
  const metricsLimiter = options.metricsLimiter ?? new RateLimiter();
  const guard = ((req: IncomingMessage, ctx: RequestContext) => {
    const cls = rateClass(ctx.url.pathname, options.metricsPath?.());
    if (cls === 'unlimited') return;
    let decision: Decision;
    let who: string;
    const rate = ctx.identity.kind === 'key' ? options.keyRate(ctx.identity.name) : undefined;
    if (cls === 'metrics' && options.metricsRate) {
      if (ctx.identity.kind === 'key') return; // an authenticated scrape
      const address = clientAddress(req);
      if (options.scraperNetworks?.()?.check(address.replace(/^::ffff:/, ''), isIPv6(address) ? 'ipv6' : 'ipv4')) return;
      decision = metricsLimiter.take(address, options.metricsRate());
      who = 'metrics scrapes from this client address';
    } else if (ctx.identity.kind === 'key' && rate) {
      decision = keyLimiter.take(ctx.identity.name, rate);
      who = `key "${ctx.identity.name}"`;
    } else {
      decision = ipLimiter.take(clientAddress(req), options.anonymousRate());
      who = 'this client address';
    }
    if (!decision.allowed) {
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      throw new HttpError(429, 'rate_limited', `too many requests for ${who}; retry in ${seconds}s`, { 'retry-after': String(seconds) });
    }
    if (ctx.identity.kind === 'invalid' && (options.rejectInvalidKeys?.() ?? false)) throw unauthorized(ctx.identity);
  }) as RateLimitGuard;
  guard.keyLimiter = keyLimiter;
  guard.ipLimiter = ipLimiter;
  guard.metricsLimiter = metricsLimiter;
  return guard;
}

/** a BlockList of CIDR networks (already validated by the config schema) */
export function networkList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const text of cidrs) {
    const [address = '', bits] = text.split('/');
    const family = address.includes(':') ? 'ipv6' : 'ipv4';
    list.addSubnet(address, bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits), family);
  }
  return list;
}

function isIPv6(address: string): boolean {
  return address.includes(':') && !address.startsWith('::ffff:');
}
