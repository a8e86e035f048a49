/**
 * The uptime history of the running sidecar: one History (health/history.ts)
 * fed by every finished run, and — with `state.redis` — an UptimeRecorder
 * that writes its per-minute deltas to Redis and merges what Redis holds at
 * start (uptime-recorder.ts, uptime-redis.ts). Without `state.redis` the
 * history lives in memory only and starts empty after a restart.
 *
 * The composition root calls `start` with the checks this process probes,
 * `setChecks` after a reload or a shard hand-over, `record` for every run and
 * `close` at shutdown (a last write). Readers use `history` (windows, series).
 */
import { History, type HistoryRun } from '../health/history';
import { UptimeRecorder } from './uptime-recorder';
import { RedisUptimeStore } from './uptime-redis';
import type { UptimeStore } from './uptime-store';

export interface UptimeTrackerOptions {
  /** state.redis: persist the history there (keys under `{keyPrefix}:uptime:`) */
  redis?: { url: string; keyPrefix: string };
  /** a store other than Redis (the monitor store, tests); wins over `redis` */
  store?: UptimeStore;
  /** how messages name `store` (e.g. store.postgres) */
  storeName?: string;
  /** ms between writes to the store (default 5 s) */
  flushMs?: number;
  now?: () => number;
  log?: (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;
}

export class UptimeTracker {
  readonly history: History;
  private readonly recorder: UptimeRecorder | undefined;
  private tracked = new Set<string>();

  constructor(options: UptimeTrackerOptions = {}) {
    const now = options.now ?? Date.now;
    this.history = new History(now);
    const store = options.store ?? (options.redis ? new RedisUptimeStore({ url: options.redis.url, keyPrefix: options.redis.keyPrefix }) : undefined);
    const log = options.log;
    const where = options.store ? (options.storeName ?? 'its store') : 'state.redis';
    this.recorder = store
      ? new UptimeRecorder({
          store,
          history: this.history,
          flushMs: options.flushMs,
          now,
          onError: (message) => log?.('warn', { error: message }, `uptime history: ${where} failed (${message}); runs are kept in memory and written when it answers`),
          onRecovered: () => log?.('info', {}, `uptime history: ${where} answers again; buffered runs written`),
        })
      : undefined;
  }

  /** persisted (state.redis) or memory only */
  get persisted(): boolean {
    return this.recorder !== undefined;
  }

  /** begin recording `checks` (and, with a store, load what it holds of them) */
  start(checks: readonly string[]): void {
    this.tracked = new Set(checks);
    this.recorder?.start(checks);
  }

  /** the checks this process probes now (reload, shard hand-over): gone ones are forgotten */
  setChecks(checks: readonly string[]): void {
    const next = new Set(checks);
    if (this.recorder) this.recorder.setChecks(checks);
    else for (const name of this.tracked) if (!next.has(name)) this.history.remove(name);
    this.tracked = next;
  }

  /** a finished run (all its attempts) of a check */
  record(check: string, run: HistoryRun): void {
    if (this.recorder) this.recorder.record(check, run);
    else if (this.tracked.has(check)) this.history.record(check, run);
  }

  /** load what is missing and write what is buffered, now (tests, shutdown) */
  flush(): Promise<void> {
    return this.recorder?.flush() ?? Promise.resolve();
  }

  /** a last write, then stop */
  close(): Promise<void> {
    return this.recorder?.close() ?? Promise.resolve();
  }
}
