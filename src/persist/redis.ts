/**
 * Optional persistence (`state.redis`) of incidents, dead letters and the
 * notification outbox, so a restarted sidecar keeps its history and sends
 * what it had not delivered. Keys per sidecar (docs/notifications.md):
 *   {prefix}:incidents      JSON Incident[] (bounded by maxIncidents)
 *   {prefix}:dead-letters   JSON { letters: DeadLetter[], dropped: number } (bounded by maxDeadLetters)
 *   {prefix}:outbox         hash "<target>\n<event id>" → JSON PendingMessage: every message
 *                           not yet delivered or given up (bounded per target; expires after
 *                           the longest retention without writes)
 *   {prefix}:told           hash "<target>\n<check>" → JSON { status, incidentId, at }: the
 *                           last state each target was told (expires after 30 days without writes)
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
import type { OutboxStore, PendingMessage, StoredOutbox, Told } from '../notify/outbox';
import type { Redactor } from '../redact';
import { stateRedis } from './state-redis';

/** `Letter`: what the notification side keeps as a dead letter (stored as it is given, JSON) */
export interface StoredHistory<Letter> {
  incidents: Incident[];
  deadLetters: Letter[];
  dropped: number;
  outbox: StoredOutbox;
}

type Key = 'incidents' | 'dead-letters' | 'outbox' | 'told';

/** one pending write; coalesced by its slot (the key, or the key and hash field) */
type Write = { key: Key; field?: undefined; value: string } | { key: Key; field: string; value: string | null; ttlMs: number };

const TOLD_TTL_MS = 30 * 24 * 3600_000;

export interface RedisHistoryOptions<Letter> {
  url: string;
  keyPrefix: string;
  redactor: () => Redactor;
  /** called once with what Redis held (at start, or when Redis first becomes reachable) */
  onLoad: (history: StoredHistory<Letter>) => void;
  log?: (level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string) => void;
  connectTimeoutMs?: number;
}

export class RedisHistory<Letter> implements OutboxStore {
  private readonly redis: Redis;
  private loaded = false;
  private loading: Promise<boolean> | undefined;
  private readonly pending = new Map<string, Write>();
  /** resolved with true once the write of that slot committed, false when it failed */
  private readonly waiters = new Map<string, ((written: boolean) => void)[]>();
  private outboxTtlMs = 0;
  private writing: Promise<void> | undefined;
  private lastError = '';
  private failedLast = false;
  private closed = false;

  constructor(private readonly options: RedisHistoryOptions<Letter>) {
    // a write to a Redis that stopped answering fails (and is retried) instead of hanging shutdown
    this.redis = stateRedis(options.url, { connectTimeoutMs: options.connectTimeoutMs, commandTimeoutMs: 3000 });
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
    this.save('incidents', { key: 'incidents', value: JSON.stringify(incidents) });
  }

  saveDeadLetters(letters: readonly Letter[], dropped: number): void {
    this.save('dead-letters', { key: 'dead-letters', value: JSON.stringify({ letters, dropped }) });
  }

  /** OutboxStore: resolves true once written, false when Redis refused or is not ready (the write is kept and retried) */
  put(target: string, message: PendingMessage, retentionMs: number): Promise<boolean> {
    const field = `${target}\n${message.event.id}`;
    // the hash outlives its longest-kept message by an hour
    this.outboxTtlMs = Math.max(this.outboxTtlMs, retentionMs + 3600_000);
    const slot = `outbox\n${field}`;
    const written = new Promise<boolean>((resolve) => {
      const list = this.waiters.get(slot) ?? [];
      list.push(resolve);
      this.waiters.set(slot, list);
    });
    this.save(slot, { key: 'outbox', field, value: JSON.stringify(message), ttlMs: this.outboxTtlMs });
    if (this.redis.status !== 'ready' || !this.loaded) this.settle(slot, false);
    return written;
  }

  remove(target: string, id: string): void {
    const field = `${target}\n${id}`;
    this.save(`outbox\n${field}`, { key: 'outbox', field, value: null, ttlMs: this.outboxTtlMs });
  }

  tell(target: string, check: string, told: Told): void {
    const field = `${target}\n${check}`;
    this.save(`told\n${field}`, { key: 'told', field, value: JSON.stringify(told), ttlMs: TOLD_TTL_MS });
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
      const keys = [...new Set(unwritten.map((slot) => this.key(this.pending.get(slot)?.key ?? (slot.split('\n')[0] as Key))))];
      this.options.log?.('error', { keys, error: this.lastError || 'Redis not ready' }, `state.redis: ${keys.join(', ')} not written before shutdown (${this.lastError || 'Redis not ready'}); the newest values are lost`);
    }
    this.closed = true;
    this.redis.disconnect();
  }

  private save(slot: string, write: Write): void {
    this.pending.set(slot, write);
    this.flushSoon();
  }

  private settle(slot: string, written: boolean): void {
    const list = this.waiters.get(slot);
    if (!list) return;
    this.waiters.delete(slot);
    for (const resolve of list) resolve(written);
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
      const expire = new Map<Key, number>();
      for (const [, write] of batch) {
        if (write.field === undefined) multi.set(this.key(write.key), write.value);
        else {
          if (write.value === null) multi.hdel(this.key(write.key), write.field);
          else multi.hset(this.key(write.key), write.field, write.value);
          expire.set(write.key, Math.max(expire.get(write.key) ?? 0, write.ttlMs));
        }
      }
      for (const [key, ttlMs] of expire) if (ttlMs > 0) multi.pexpire(this.key(key), ttlMs);
      const results = await multi.exec();
      const failed = results?.find(([error]) => error)?.[0];
      if (!results || failed) throw failed ?? new Error('transaction aborted');
      this.failedLast = false;
      for (const [slot] of batch) this.settle(slot, true);
    } catch (err) {
      this.failedLast = true;
      // keep the values unless newer ones arrived meanwhile; written when Redis is ready again
      for (const [slot, write] of batch) {
        if (!this.pending.has(slot)) this.pending.set(slot, write);
        this.settle(slot, false);
      }
      this.report(err as Error);
    }
  }

  private load(): Promise<boolean> {
    if (this.loaded) return Promise.resolve(true);
    this.loading ??= (async () => {
      try {
        const [incidents, dead] = await this.redis.mget(this.key('incidents'), this.key('dead-letters'));
        const [outbox, told] = await Promise.all([this.redis.hgetall(this.key('outbox')), this.redis.hgetall(this.key('told'))]);
        const letters = parse<{ letters?: Letter[]; dropped?: number }>(dead) ?? {};
        const history: StoredHistory<Letter> = {
          incidents: Array.isArray(parse(incidents)) ? (parse(incidents) as Incident[]) : [],
          deadLetters: Array.isArray(letters.letters) ? letters.letters : [],
          dropped: typeof letters.dropped === 'number' ? letters.dropped : 0,
          outbox: { pending: Object.fromEntries(Object.entries(byTarget<PendingMessage>(outbox)).map(([target, byId]) => [target, Object.values(byId)])), told: byTarget<Told>(told) },
        };
        this.loaded = true;
        this.options.onLoad(history);
        const waiting = Object.values(history.outbox.pending).reduce((n, list) => n + list.length, 0);
        this.options.log?.('info', { incidents: history.incidents.length, deadLetters: history.deadLetters.length, pendingNotifications: waiting }, `history loaded from Redis: ${history.incidents.length} incident(s), ${history.deadLetters.length} dead letter(s), ${waiting} notification(s) to resume`);
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

/** hash fields "<target>\n<rest>" → per target, per <rest>, the parsed value (unparsable entries skipped) */
function byTarget<T>(hash: Record<string, string>): Record<string, Record<string, T>> {
  const out: Record<string, Record<string, T>> = {};
  for (const [field, text] of Object.entries(hash)) {
    const cut = field.indexOf('\n');
    const value = parse<T>(text);
    if (cut > 0 && value !== undefined) (out[field.slice(0, cut)] ??= {})[field.slice(cut + 1)] = value;
  }
  return out;
}

function parse<T = unknown>(text: string | null): T | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
