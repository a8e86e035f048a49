/**
 * Where the uptime history of checks is kept across restarts, rolling
 * updates and shard hand-overs. Small on purpose, so a store is easy to add
 * (Redis today: uptime-redis.ts; PostgreSQL for the monitors API):
 *
 *  - `add` receives per-minute deltas (what runs added since the last
 *    write). A store adds them to what it holds — incrementally, never
 *    rewriting a bucket whole — so two writers (an old and a new pod during
 *    a rolling update) add up instead of overwriting each other. It also
 *    keeps hour sums (for 30 days) and lets minutes go after 24 hours.
 *  - `load` returns what it holds of one check: the minute buckets of the
 *    last 24 hours and the hour buckets of the last 30 days.
 *
 * Both may reject (store unreachable); the recorder (uptime-recorder.ts)
 * keeps the deltas and tries again.
 */
import type { Counts, StoredHistory } from '../health/history';

export interface MinuteDelta {
  check: string;
  /** minute index: floor(ms / 60 s), UTC */
  minute: number;
  counts: Counts;
}

export interface UptimeStore {
  /** add the deltas (one call may carry several checks and minutes) */
  add(deltas: readonly MinuteDelta[]): Promise<void>;
  /** what the store holds of `check` around `now` */
  load(check: string, now: number): Promise<StoredHistory>;
  close(): Promise<void>;
}
