/**
 * Latency and success statistics per check over sliding windows (1 m, 5 m,
 * 1 h), from a bounded ring buffer per check: one slot per run, at most an
 * hour at the check's interval (plus slack for on-demand runs), never more
 * than MAX_SAMPLES. The ring is compact (9 bytes a sample) and grows as
 * samples come, so memory follows what was recorded, bounded per check
 * whatever the traffic.
 *
 * Percentiles use the nearest-rank method: with the n latencies of a window
 * sorted ascending, pN is the value at 1-based rank ceil(N/100 · n). It is
 * always an observed latency (no interpolation). Latency percentiles cover the
 * runs that reached the dependency (success, failure, timeout); a run rejected
 * by an open breaker made no call, so it counts in the success ratio but has
 * no latency.
 */
import type { Outcome, RunResult } from './state';

export const WINDOWS = { '1m': 60_000, '5m': 300_000, '1h': 3_600_000 } as const;
export type WindowName = keyof typeof WINDOWS;
export const MAX_SAMPLES = 3600;
const OUTCOMES: Outcome[] = ['success', 'failure', 'timeout', 'rejected'];

export interface WindowStats {
  /** runs in the window */
  runs: number;
  /** successful runs / runs, null without runs */
  successRatio: number | null;
  /** latency percentiles in ms (nearest rank), null without latency samples */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface Sample {
  at: number;
  latencyMs: number;
  ok: boolean;
  outcome: Outcome;
}

/** Nearest-rank percentile of an ascending array; undefined when empty. */
export function nearestRank(sorted: ArrayLike<number>, percentile: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.max(1, Math.ceil((percentile / 100) * sorted.length));
  return sorted[rank - 1];
}

export function capacityFor(intervalMs: number): number {
  const perHour = Math.ceil(WINDOWS['1h'] / Math.max(1, intervalMs));
  return Math.min(MAX_SAMPLES, Math.max(16, Math.ceil(perHour * 1.25)));
}

/** first allocation of a ring (a minute at 1 s, 576 bytes); it doubles on demand up to its capacity */
const INITIAL_SLOTS = 64;
/** latencies are kept in whole microseconds (the stats print 3 decimals of a ms); clamp at ~71 min */
const MAX_LATENCY_US = 0xffff_ffff;

/**
 * Ring of at most `capacity` samples, oldest overwritten first. Compact and
 * grown on demand, so memory follows what was recorded (a check that has run
 * for a minute holds a minute of samples, not an hour of empty slots):
 *  - latency in whole microseconds (Uint32): the stats round to 3 decimals of
 *    a ms, and rounding is monotonic, so percentiles and the printed values are
 *    exactly those of the unrounded latencies;
 *  - time as the newest sample's `at` plus, per sample, the difference to the
 *    sample before it (Int32 ms); a difference that is not a whole number of
 *    ms within ±24.8 days switches the ring to full Float64 times;
 *  - outcome as a byte.
 * 9 bytes a slot instead of 17, allocated 64, 128, 256 … slots as samples come.
 */
export class SampleRing {
  private delta: Int32Array;
  /** absolute times, only once a difference did not fit `delta` */
  private wide: Float64Array | undefined;
  private latencyUs: Uint32Array;
  private outcome: Uint8Array;
  private next = 0;
  private size = 0;
  private lastAt = 0;

  constructor(readonly capacity: number) {
    const slots = Math.min(capacity, INITIAL_SLOTS);
    this.delta = new Int32Array(slots);
    this.latencyUs = new Uint32Array(slots);
    this.outcome = new Uint8Array(slots);
  }

  get length(): number {
    return this.size;
  }

  /** slots allocated so far (≤ capacity) */
  get allocated(): number {
    return this.outcome.length;
  }

  push(sample: Sample): void {
    if (this.size === this.allocated && this.allocated < this.capacity) this.grow();
    const slot = this.next;
    const d = this.size === 0 ? 0 : sample.at - this.lastAt;
    if (this.wide) this.wide[slot] = sample.at;
    else if (Number.isInteger(d) && d >= -0x8000_0000 && d <= 0x7fff_ffff && (this.size > 0 || Number.isFinite(sample.at))) this.delta[slot] = d;
    else {
      this.widen();
      this.wide![slot] = sample.at;
    }
    this.lastAt = sample.at;
    this.latencyUs[slot] = Math.min(MAX_LATENCY_US, Math.max(0, Math.round(sample.latencyMs * 1000)));
    this.outcome[slot] = OUTCOMES.indexOf(sample.outcome);
    this.next = (this.next + 1) % this.allocated;
    this.size = Math.min(this.size + 1, this.allocated);
  }

  /** newest first */
  *newest(): Generator<Sample> {
    const slots = this.allocated;
    let at = this.lastAt;
    for (let i = 0; i < this.size; i++) {
      const slot = (this.next - 1 - i + slots) % slots;
      if (this.wide) at = this.wide[slot]!;
      const outcome = OUTCOMES[this.outcome[slot]!]!;
      yield { at, latencyMs: this.latencyUs[slot]! / 1000, ok: outcome === 'success', outcome };
      if (!this.wide) at -= this.delta[slot]!;
    }
  }

  /** Double the slots. Only called while the ring has not wrapped yet (size = allocated, next = 0). */
  private grow(): void {
    const slots = Math.min(this.capacity, this.allocated * 2);
    const copy = <T extends Int32Array | Uint32Array | Uint8Array | Float64Array>(from: T, make: (n: number) => T): T => {
      const to = make(slots);
      to.set(from);
      return to;
    };
    this.delta = copy(this.delta, (n) => new Int32Array(n));
    this.latencyUs = copy(this.latencyUs, (n) => new Uint32Array(n));
    this.outcome = copy(this.outcome, (n) => new Uint8Array(n));
    if (this.wide) this.wide = copy(this.wide, (n) => new Float64Array(n));
    this.next = this.size;
  }

  /** switch to absolute Float64 times (a time difference did not fit Int32 ms) */
  private widen(): void {
    const slots = this.allocated;
    const wide = new Float64Array(slots);
    let at = this.lastAt;
    for (let i = 0; i < this.size; i++) {
      const slot = (this.next - 1 - i + slots) % slots;
      wide[slot] = at;
      at -= this.delta[slot]!;
    }
    this.wide = wide;
    this.delta = new Int32Array(0);
  }
}

export function windowStats(samples: Iterable<Sample>, since: number): WindowStats {
  let runs = 0;
  let ok = 0;
  const latencies: number[] = [];
  for (const sample of samples) {
    if (sample.at < since) break; // newest first: everything after is older
    runs++;
    if (sample.ok) ok++;
    if (sample.outcome !== 'rejected') latencies.push(sample.latencyMs);
  }
  latencies.sort((a, b) => a - b);
  const round = (v: number | undefined) => (v === undefined ? null : Math.round(v * 1000) / 1000);
  return {
    runs,
    successRatio: runs === 0 ? null : ok / runs,
    p50: round(nearestRank(latencies, 50)),
    p95: round(nearestRank(latencies, 95)),
    p99: round(nearestRank(latencies, 99)),
  };
}

export interface CheckStats {
  windows: Record<WindowName, WindowStats>;
  samples: number;
  capacity: number;
}

export class LatencyStats {
  private readonly rings = new Map<string, SampleRing>();

  /** @param intervalOf the check's interval (sizes its ring); unknown → 1 s */
  constructor(
    private readonly intervalOf: (name: string) => number | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  record(name: string, run: Pick<RunResult, 'finishedAt' | 'latencyMs' | 'ok' | 'outcome'>): void {
    const capacity = capacityFor(this.intervalOf(name) ?? 1000);
    let ring = this.rings.get(name);
    if (!ring || ring.capacity !== capacity) {
      // interval changed by a reload: keep the newest samples that fit
      const resized = new SampleRing(capacity);
      if (ring) for (const sample of [...ring.newest()].slice(0, capacity).reverse()) resized.push(sample);
      ring = resized;
      this.rings.set(name, ring);
    }
    ring.push({ at: run.finishedAt, latencyMs: run.latencyMs, ok: run.ok, outcome: run.outcome });
  }

  remove(name: string): void {
    this.rings.delete(name);
  }

  names(): string[] {
    return [...this.rings.keys()];
  }

  of(name: string): CheckStats {
    const ring = this.rings.get(name);
    const now = this.now();
    const windows = {} as Record<WindowName, WindowStats>;
    for (const [window, span] of Object.entries(WINDOWS) as [WindowName, number][]) {
      windows[window] = windowStats(ring ? ring.newest() : [], now - span);
    }
    return { windows, samples: ring?.length ?? 0, capacity: ring?.capacity ?? 0 };
  }

  /** the latest `count` samples, oldest first (sparklines) */
  recent(name: string, count: number): Sample[] {
    const ring = this.rings.get(name);
    if (!ring) return [];
    const out: Sample[] = [];
    for (const sample of ring.newest()) {
      if (out.length >= count) break;
      out.push(sample);
    }
    return out.reverse();
  }
}
