/**
 * Latency and success statistics per check over sliding windows (1 m, 5 m,
 * 1 h), from a bounded ring buffer per check: one slot per run, sized for an
 * hour at the check's interval (plus slack for on-demand runs), never more
 * than MAX_SAMPLES. Memory is fixed per check whatever the traffic.
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

/** Fixed-size ring of samples, oldest overwritten first. */
export class SampleRing {
  private readonly at: Float64Array;
  private readonly latency: Float64Array;
  private readonly outcome: Uint8Array;
  private next = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.at = new Float64Array(capacity);
    this.latency = new Float64Array(capacity);
    this.outcome = new Uint8Array(capacity);
  }

  get length(): number {
    return this.size;
  }

  push(sample: Sample): void {
    this.at[this.next] = sample.at;
    this.latency[this.next] = sample.latencyMs;
    this.outcome[this.next] = OUTCOMES.indexOf(sample.outcome);
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** newest first */
  *newest(): Generator<Sample> {
    for (let i = 0; i < this.size; i++) {
      const slot = (this.next - 1 - i + this.capacity) % this.capacity;
      const outcome = OUTCOMES[this.outcome[slot]!]!;
      yield { at: this.at[slot]!, latencyMs: this.latency[slot]!, ok: outcome === 'success', outcome };
    }
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
