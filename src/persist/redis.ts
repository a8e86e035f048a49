/**
 * Optional persistence (`state.redis`) of incidents and dead letters, so a
 * restarted sidecar keeps its history. Two keys per sidecar, each one JSON
 * document written whole (small and bounded by maxIncidents/maxDeadLetters):
 *   {prefix}:incidents      Incident[]
 *   {prefix}:dead-letters   { letters: DeadLetter[], dropped: number }
 * One writer per prefix: give each sidecar (monitored service) its own prefix.
 *
 * Writes are coalesced (only the latest value of a key is written) and never
 * awaited by the caller, so Redis being slow or down cannot hold up probes.
 * A write that fails is kept and written again when Redis is ready; shutdown
 * (`close(deadlineMs)`) waits until every pending value is written — also
 * values saved while an earlier write was in flight — or the deadline passes,
 * and then logs at error level which keys were not written.
 * If Redis is unreachable at start, history starts in memory and nothing is
 * written until Redis is back and the stored history has been read and
 * merged — a restart during a Redis outage never overwrites older history.
 */
import type Redis from 'ioredis';
import type { Incident } from '../health/incidents';
import type { Redactor } from '../redact';

/** `Letter`: what the notification side keeps as a dead letter (stored as it is given, JSON) */
export interface StoredHistory<Letter> {
  incidents: Incident[];
  deadLetters: Letter[];
  dropped: number;
}

type Key = 'incidents' | 'dead-letters';

export interface RedisHistoryOptions<Letter> {
  url: string;
  keyPrefix: string;
  redactor: () => Redactor;
  /** called once with what Redis held (at start, or when Redis first becomes reachable) */
  onLoad: (history: StoredHistory<Letter>) => void;
  log?: (level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string) => void;
  connectTimeoutMs?: number;
}

export class RedisHistory<Letter> {
  private readonly redis: Redis;
  private loaded = false;
  private loading: Promise<boolean> | undefined;
  private readonly pending = new Map<Key, string>();
  private writing: Promise<void> | undefined;
  private lastError = '';
  private failedLast = false;
  private closed = false;

  constructor(private readonly options: RedisHistoryOptions<Letter>) {
    // the driver loads only when state.redis is configured
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const RedisClient = (require('ioredis') as typeof import('ioredis')).default;
    this.redis = new RedisClient(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: options.connectTimeoutMs ?? 2000,
      retryStrategy: (times) => Math.min(times * 200, 5000),
      // a write to a Redis that stopped answering fails (and is retried) instead of hanging shutdown
      commandTimeout: 3000,
    });
    this.redis.on('error', (err: Error) => this.report(err));
    this.redis.on('ready', () => {
      void this.load().then(() => this.flushSoon());
    });
  }

  key(name: Key): string {
    return `${this.options.keyPrefix}:${name}`;
  }

  /** Connect and read the stored history; false (history in memory only, for now) when Redis cannot be reached. */
  async start(): Promise<boolean> {
    try {
      await this.redis.connect();
    } catch (err) {
      this.report(err as Error);
      return false;
    }
    return this.load();
  }

  saveIncidents(incidents: readonly Incident[]): void {
    this.save('incidents', JSON.stringify(incidents));
  }

  saveDeadLetters(letters: readonly Letter[], dropped: number): void {
    this.save('dead-letters', JSON.stringify({ letters, dropped }));
  }

  /**
   * Wait until every pending value is written (shutdown, tests), retrying
   * failed writes, for at most deadlineMs. Resolves with the keys still
   * unwritten at the deadline (empty: all written).
   */
  async flush(deadlineMs = 5000): Promise<string[]> {
    const until = Date.now() + deadlineMs;
    while (this.pending.size > 0 || this.writing) {
      const left = until - Date.now();
      if (left <= 0) break;
      if (!this.writing) this.flushSoon();
      // still not writing: Redis not ready (or the stored history not read yet) — wait a little and look again
      const step = this.writing ?? sleep(Math.min(100, left));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([step, new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
      if (this.failedLast && this.pending.size > 0) await sleep(Math.min(50, Math.max(0, until - Date.now())));
    }
    return [...this.pending.keys()];
  }

  /** Flush (bounded by deadlineMs), report what could not be written, disconnect. */
  async close(deadlineMs = 5000): Promise<void> {
    const unwritten = await this.flush(deadlineMs).catch(() => [...this.pending.keys()]);
    if (unwritten.length > 0) {
      const keys = unwritten.map((k) => this.key(k as Key));
      this.options.log?.('error', { keys, error: this.lastError || 'Redis not ready' }, `state.redis: ${keys.join(', ')} not written before shutdown (${this.lastError || 'Redis not ready'}); the newest values are lost`);
    }
    this.closed = true;
    this.redis.disconnect();
  }

  private save(key: Key, value: string): void {
    this.pending.set(key, value);
    this.flushSoon();
  }

  private flushSoon(): void {
    if (this.writing || !this.loaded || this.closed || this.pending.size === 0 || this.redis.status !== 'ready') return;
    this.writing = this.writeAll().finally(() => {
      this.writing = undefined;
      if (this.pending.size) setImmediate(() => this.flushSoon());
    });
  }

  private async writeAll(): Promise<void> {
    const batch = [...this.pending];
    this.pending.clear();
    try {
      const multi = this.redis.multi();
      for (const [key, value] of batch) multi.set(this.key(key), value);
      const results = await multi.exec();
      const failed = results?.find(([error]) => error)?.[0];
      if (!results || failed) throw failed ?? new Error('transaction aborted');
      this.failedLast = false;
    } catch (err) {
      this.failedLast = true;
      // keep the values unless newer ones arrived meanwhile; written when Redis is ready again
      for (const [key, value] of batch) if (!this.pending.has(key)) this.pending.set(key, value);
      this.report(err as Error);
    }
  }

  private load(): Promise<boolean> {
    if (this.loaded) return Promise.resolve(true);
    this.loading ??= (async () => {
      try {
        const [incidents, dead] = await this.redis.mget(this.key('incidents'), this.key('dead-letters'));
        const letters = parse<{ letters?: Letter[]; dropped?: number }>(dead) ?? {};
        const history: StoredHistory<Letter> = {
          incidents: Array.isArray(parse(incidents)) ? (parse(incidents) as Incident[]) : [],
          deadLetters: Array.isArray(letters.letters) ? letters.letters : [],
          dropped: typeof letters.dropped === 'number' ? letters.dropped : 0,
        };
        this.loaded = true;
        this.options.onLoad(history);
        this.options.log?.('info', { incidents: history.incidents.length, deadLetters: history.deadLetters.length }, `history loaded from Redis: ${history.incidents.length} incident(s), ${history.deadLetters.length} dead letter(s)`);
        return true;
      } catch (err) {
        this.report(err as Error);
        return false;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  private report(err: Error): void {
    const message = this.options.redactor().text(err?.message ?? String(err));
    if (message === this.lastError) return; // once per distinct error, not once per reconnect
    this.lastError = message;
    this.options.log?.('warn', { error: message }, `state.redis: ${message}; incidents and dead letters are kept in memory until Redis is back`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function parse<T = unknown>(text: string | null): T | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
