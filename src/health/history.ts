/**
 * Uptime history per check: how many runs succeeded, failed or were rejected,
 * and their summed latency, per minute for the last 24 hours and per hour for
 * the last 30 days. Pure (an injected clock, no I/O): persistence feeds it
 * through `restore` and reads the same per-minute deltas (`runDelta`).
 *
 * Storage per check is a pair of typed-array rings, allocated at the first
 * run and never grown (counts interleaved per slot, four arrays in all):
 *   minutes: 1,440 slots × (ok u16, failed u16, rejected u16, latency µs f64) = 20,160 B
 *   hours:     720 slots × (ok u32, failed u32, rejected u32, latency µs f32) = 11,520 B
 * 31,680 bytes a check (≤ 32 KiB). A minute slot saturates at 65,535 runs of
 * each kind (one run a millisecond would need 60,000); an hour at 2³²−1.
 * Latency sums are whole microseconds: exact in the minute slots (f64), and
 * rounded to f32 once when an hour is rolled up — the same rounding a restart
 * applies to the stored hour, so a restored history reads the same numbers.
 *
 * Roll-up: when the newest minute crosses an hour boundary, the 60 minutes of
 * the finished hour are summed into its hour slot. Until then an hour is read
 * from its minutes, so the last day always has minute resolution and older
 * days hour resolution. A run that arrives late (finished in an earlier
 * minute than the newest one) is added where its minute and hour still are.
 *
 * What a run counts as (see docs/uptime.md):
 *   success            → ok
 *   failure, timeout   → failed (the dependency was reached and answered badly or not in time)
 *   rejected           → rejected: an open breaker made no attempt. Availability counts it as
 *                        unavailable (the dependency was unavailable to us a moment ago and is
 *                        being shed); latency leaves it out (no call was made).
 * availability = ok / (ok + failed + rejected); mean latency = latency sum / (ok + failed).
 *
 * Windows end now and cover whole buckets, the current (partial) one included:
 * windows up to 24 h count minutes (the current minute and the N−1 before it),
 * longer windows count hours the same way. A window therefore holds between
 * W − 1 bucket and W of runs.
 */
import type { Outcome } from './state';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
/** minute slots: 24 hours */
export const MINUTE_SLOTS = 1440;
/** hour slots: 30 days */
export const HOUR_SLOTS = 720;

/** The named windows the endpoints, badges and SLOs use. */
export const HISTORY_WINDOWS = {
  '5m': 5 * MINUTE_MS,
  '30m': 30 * MINUTE_MS,
  '1h': HOUR_MS,
  '6h': 6 * HOUR_MS,
  '24h': DAY_MS,
  '3d': 3 * DAY_MS,
  '7d': 7 * DAY_MS,
  '30d': 30 * DAY_MS,
} as const;
export type HistoryWindow = keyof typeof HISTORY_WINDOWS;

const MAX_U16 = 0xffff;
const MAX_U32 = 0xffff_ffff;

/** Counts of one bucket (or of a sum of buckets). */
export interface Counts {
  ok: number;
  failed: number;
  rejected: number;
  /** summed latency in whole µs of the ok and failed runs (rejected runs made no call) */
  latencyUs: number;
}

export const emptyCounts = (): Counts => ({ ok: 0, failed: 0, rejected: 0, latencyUs: 0 });

/** What one run adds to its minute: the unit of recording and of persistence. */
export interface RunDelta {
  /** minute index: floor(finishedAt / 60 s), UTC */
  minute: number;
  counts: Counts;
}

export interface HistoryRun {
  finishedAt: number;
  outcome: Outcome;
  latencyMs: number;
}

export function runDelta(run: HistoryRun): RunDelta {
  const counts = emptyCounts();
  if (run.outcome === 'success') counts.ok = 1;
  else if (run.outcome === 'rejected') counts.rejected = 1;
  else counts.failed = 1;
  if (run.outcome !== 'rejected') counts.latencyUs = Math.max(0, Math.round(run.latencyMs * 1000));
  return { minute: Math.floor(run.finishedAt / MINUTE_MS), counts };
}

export function addCounts(into: Counts, add: Counts): Counts {
  into.ok += add.ok;
  into.failed += add.failed;
  into.rejected += add.rejected;
  into.latencyUs += add.latencyUs;
  return into;
}

/** A sum over a window (or a chart point). */
export interface Summary extends Counts {
  /** ok + failed + rejected */
  runs: number;
  /** ok / runs; null without runs */
  availability: number | null;
  /** mean latency in ms (3 decimals) of the runs that reached the dependency; null without any */
  meanLatencyMs: number | null;
  /** ms epoch: start of the oldest bucket of the window */
  from: number;
  /** buckets of the window that hold at least one run / buckets of the window */
  coverage: number;
}

export function summarize(counts: Counts, from: number, coverage: number): Summary {
  const runs = counts.ok + counts.failed + counts.rejected;
  const reached = counts.ok + counts.failed;
  return {
    ok: counts.ok,
    failed: counts.failed,
    rejected: counts.rejected,
    latencyUs: counts.latencyUs,
    runs,
    availability: runs === 0 ? null : counts.ok / runs,
    meanLatencyMs: reached === 0 ? null : Math.round(counts.latencyUs / reached) / 1000,
    from,
    coverage,
  };
}

/** Buckets persisted for one check (what a HistoryStore returns). */
export interface StoredHistory {
  minutes: RunDelta[];
  /** hour index: floor(ms / 1 h), UTC */
  hours: { hour: number; counts: Counts }[];
}

const hourOfMinute = (minute: number) => Math.floor(minute / 60);

/** The buckets of a window ending at `now`: minutes up to 24 h, hours beyond; the current bucket included. */
export function windowBuckets(windowMs: number, now: number): { byMinute: boolean; size: number; first: number; last: number } {
  const byMinute = windowMs <= DAY_MS;
  const size = byMinute ? MINUTE_MS : HOUR_MS;
  const last = Math.floor(now / size);
  return { byMinute, size, first: last - Math.max(1, Math.ceil(windowMs / size)) + 1, last };
}
const slot = (index: number, size: number) => ((index % size) + size) % size;

/** Start (ms) of each of `points` chart points of `step` buckets, aligned to `step`, the last one containing now; oldest first. */
export function seriesStarts(resolution: 'minute' | 'hour', step: number, points: number, now: number): number[] {
  const size = resolution === 'minute' ? MINUTE_MS : HOUR_MS;
  const current = Math.floor(now / size);
  const lastStart = current - slot(current, step);
  return Array.from({ length: points }, (_, i) => (lastStart - (points - 1 - i) * step) * size);
}

/** The rings of one check: counts interleaved (ok, failed, rejected) per slot, latency sums beside them. */
export class CheckHistory {
  /** minute slot i: [3i] ok, [3i+1] failed, [3i+2] rejected */
  private readonly mCounts = new Uint16Array(MINUTE_SLOTS * 3);
  private readonly mLatencyUs = new Float64Array(MINUTE_SLOTS);
  private readonly hCounts = new Uint32Array(HOUR_SLOTS * 3);
  private readonly hLatencyUs = new Float32Array(HOUR_SLOTS);
  /** the newest minute with a slot; minutes in (head − 1440, head] are valid */
  private minuteHead = Number.NEGATIVE_INFINITY;
  /**
   * the newest hour rolled up into the hour ring; hours in (hourHead − 720, hourHead]
   * are valid. Always the hour before the newest minute's.
   */
  private hourHead = Number.NEGATIVE_INFINITY;

  /** bytes of the typed arrays (the budget: ≤ 32 KiB) */
  get byteLength(): number {
    return this.mCounts.byteLength + this.mLatencyUs.byteLength + this.hCounts.byteLength + this.hLatencyUs.byteLength;
  }

  /** the newest minute recorded (-Infinity before the first run) */
  get newestMinute(): number {
    return this.minuteHead;
  }

  record(delta: RunDelta): void {
    this.advanceTo(delta.minute);
    this.addAt(delta.minute, delta.counts);
  }

  /**
   * Add what a store held (written by this or an earlier process). Minutes go
   * to the minute ring; hours only when already rolled up here (older than the
   * current hour): younger hours are read from their minutes, which the store
   * holds too. Buckets more than an hour ahead of `now` (a wrong clock) are dropped.
   */
  restore(stored: StoredHistory, now: number): void {
    const current = Math.floor(now / MINUTE_MS);
    const newest = stored.minutes.reduce((max, m) => (m.minute <= current + 60 ? Math.max(max, m.minute) : max), current);
    this.advanceTo(newest);
    for (const { minute, counts } of stored.minutes) {
      if (this.minuteValid(minute)) this.addMinute(minute, counts);
    }
    for (const { hour, counts } of stored.hours) {
      if (this.hourValid(hour)) this.addHour(hour, counts);
    }
  }

  /** counts of one minute (zero when outside the minute ring) */
  minute(minute: number, into: Counts = emptyCounts()): Counts {
    this.sumMinutes(minute, minute, into);
    return into;
  }

  /** counts of one hour: its rolled-up slot, or the sum of its minutes while not rolled up yet */
  hour(hour: number, into: Counts = emptyCounts()): Counts {
    this.sumHours(hour, hour, into);
    return into;
  }

  /** the window of `windowMs` ending at `now` (minute buckets up to 24 h, hour buckets beyond) */
  window(windowMs: number, now: number): Summary {
    const { byMinute, size, first, last } = windowBuckets(windowMs, now);
    const counts = emptyCounts();
    const withRuns = byMinute ? this.sumMinutes(first, last, counts) : this.sumHours(first, last, counts);
    return summarize(counts, first * size, withRuns / (last - first + 1));
  }

  /**
   * `points` consecutive sums of `step` buckets each (minutes or hours),
   * aligned to `step`, the last one containing now; oldest first. For charts.
   */
  series(resolution: 'minute' | 'hour', step: number, points: number, now: number): Summary[] {
    const size = resolution === 'minute' ? MINUTE_MS : HOUR_MS;
    return seriesStarts(resolution, step, points, now).map((from) => {
      const start = from / size;
      const counts = emptyCounts();
      const withRuns = resolution === 'minute' ? this.sumMinutes(start, start + step - 1, counts) : this.sumHours(start, start + step - 1, counts);
      return summarize(counts, from, withRuns / step);
    });
  }

  /** add minutes first..last (those still in the ring) into `into`; returns how many of them hold runs */
  private sumMinutes(first: number, last: number, into: Counts): number {
    return sumRing(this.mCounts, this.mLatencyUs, MINUTE_SLOTS, Math.max(first, this.minuteHead - MINUTE_SLOTS + 1), Math.min(last, this.minuteHead), into);
  }

  /** add hours first..last into `into` (rolled-up ones from the hour ring, the newer one from its minutes); returns how many hold runs */
  private sumHours(first: number, last: number, into: Counts): number {
    let withRuns = sumRing(this.hCounts, this.hLatencyUs, HOUR_SLOTS, Math.max(first, this.hourHead - HOUR_SLOTS + 1), Math.min(last, this.hourHead), into);
    // the only hour after hourHead that can hold runs is the newest minute's
    const open = this.hourHead + 1;
    if (open >= first && open <= last && this.sumMinutes(open * 60, open * 60 + 59, into) > 0) withRuns++;
    return withRuns;
  }

  private minuteValid(minute: number): boolean {
    return minute <= this.minuteHead && minute > this.minuteHead - MINUTE_SLOTS;
  }

  private hourValid(hour: number): boolean {
    return hour <= this.hourHead && hour > this.hourHead - HOUR_SLOTS;
  }

  /** a run's counts: into its minute slot, and into its hour slot when that hour is already rolled up */
  private addAt(minute: number, counts: Counts): void {
    if (this.minuteValid(minute)) this.addMinute(minute, counts);
    const hour = hourOfMinute(minute);
    if (this.hourValid(hour)) this.addHour(hour, counts);
  }

  private addMinute(minute: number, c: Counts): void {
    addToRing(this.mCounts, this.mLatencyUs, slot(minute, MINUTE_SLOTS), MAX_U16, c);
  }

  private addHour(hour: number, c: Counts): void {
    addToRing(this.hCounts, this.hLatencyUs, slot(hour, HOUR_SLOTS), MAX_U32, c);
  }

  /** Make `minute` the newest: roll up the hour it leaves behind, clear the slots it reuses. */
  private advanceTo(minute: number): void {
    if (minute <= this.minuteHead) return;
    if (this.minuteHead === Number.NEGATIVE_INFINITY) {
      this.minuteHead = minute;
      this.hourHead = hourOfMinute(minute) - 1;
      return;
    }
    const fromHour = hourOfMinute(this.minuteHead);
    const toHour = hourOfMinute(minute);
    if (toHour > fromHour) {
      const sum = emptyCounts();
      this.sumMinutes(fromHour * 60, fromHour * 60 + 59, sum);
      this.advanceHourRing(toHour - 1);
      if (this.hourValid(fromHour)) this.addHour(fromHour, sum); // its slot was just cleared: this sets it
    }
    clearRing(this.mCounts, this.mLatencyUs, MINUTE_SLOTS, this.minuteHead, minute);
    this.minuteHead = minute;
  }

  /** make `hour` the newest hour slot, clearing the slots of the hours skipped */
  private advanceHourRing(hour: number): void {
    if (hour <= this.hourHead) return;
    clearRing(this.hCounts, this.hLatencyUs, HOUR_SLOTS, this.hourHead, hour);
    this.hourHead = hour;
  }
}

/** The histories of all checks, keyed by check name. */
export class History {
  private readonly checks = new Map<string, CheckHistory>();

  constructor(private readonly now: () => number = Date.now) {}

  record(name: string, run: HistoryRun): RunDelta {
    const delta = runDelta(run);
    this.of(name).record(delta);
    return delta;
  }

  restore(name: string, stored: StoredHistory): void {
    this.of(name).restore(stored, this.now());
  }

  has(name: string): boolean {
    return this.checks.has(name);
  }

  remove(name: string): void {
    this.checks.delete(name);
  }

  names(): string[] {
    return [...this.checks.keys()];
  }

  /** the window of `windowMs` ending now; an empty summary for a check without history */
  window(name: string, windowMs: number): Summary {
    const now = this.now();
    const history = this.checks.get(name);
    if (history) return history.window(windowMs, now);
    const { size, first } = windowBuckets(windowMs, now);
    return summarize(emptyCounts(), first * size, 0);
  }

  series(name: string, resolution: 'minute' | 'hour', step: number, points: number): Summary[] {
    const history = this.checks.get(name);
    if (history) return history.series(resolution, step, points, this.now());
    return seriesStarts(resolution, step, points, this.now()).map((from) => summarize(emptyCounts(), from, 0));
  }

  /** bytes of every check's rings */
  get byteLength(): number {
    let total = 0;
    for (const h of this.checks.values()) total += h.byteLength;
    return total;
  }

  private of(name: string): CheckHistory {
    let h = this.checks.get(name);
    if (!h) {
      h = new CheckHistory();
      this.checks.set(name, h);
    }
    return h;
  }
}

/** Add `c` to slot `i` of one ring, each count capped at `max` (what its array holds). */
function addToRing(counts: Uint16Array | Uint32Array, latency: Float64Array | Float32Array, i: number, max: number, c: Counts): void {
  counts[3 * i] = Math.min(max, counts[3 * i]! + c.ok);
  counts[3 * i + 1] = Math.min(max, counts[3 * i + 1]! + c.failed);
  counts[3 * i + 2] = Math.min(max, counts[3 * i + 2]! + c.rejected);
  latency[i] = latency[i]! + c.latencyUs;
}

/** Clear the slots one ring reuses when its newest position moves from `head` to `to` (all of them at most). */
function clearRing(counts: Uint16Array | Uint32Array, latency: Float64Array | Float32Array, slots: number, head: number, to: number): void {
  for (let p = Math.max(head + 1, to - slots + 1); p <= to; p++) {
    const i = slot(p, slots);
    counts.fill(0, 3 * i, 3 * i + 3);
    latency[i] = 0;
  }
}

/**
 * Add the buckets from..to of one ring (counts ok/failed/rejected at 3·slot,
 * latency per slot) into `into`; returns how many of them hold runs. Locals
 * and an index that wraps instead of a modulo per slot: this loop is what
 * windows cost.
 */
function sumRing(counts: ArrayLike<number>, latency: ArrayLike<number>, slots: number, from: number, to: number, into: Counts): number {
  if (from > to) return 0;
  let i = slot(from, slots);
  let withRuns = 0;
  let ok = 0;
  let failed = 0;
  let rejected = 0;
  let latencyUs = 0;
  for (let n = to - from; n >= 0; n--) {
    const o = counts[3 * i]!;
    const f = counts[3 * i + 1]!;
    const r = counts[3 * i + 2]!;
    if (o + f + r !== 0) {
      withRuns++;
      ok += o;
      failed += f;
      rejected += r;
      latencyUs += latency[i]!;
    }
    if (++i === slots) i = 0;
  }
  into.ok += ok;
  into.failed += failed;
  into.rejected += rejected;
  into.latencyUs += latencyUs;
  return withRuns;
}
