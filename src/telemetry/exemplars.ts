/**
 * Exemplars for the probe duration histogram, kept by us because the JS
 * metrics SDK (2.x) records none: its exemplar reservoirs exist in the source
 * but are not wired into aggregation, not exported and not in the collected
 * DataPoints (open-telemetry/opentelemetry-js#5147), and the Prometheus
 * exporter has no OpenMetrics output at all.
 *
 * Per attribute set (check name, kind, outcome) and per bucket: the latest
 * measurement made while a SAMPLED span was active — its trace id, span id,
 * value and time. Nothing is kept when tracing is off (no span, or a
 * non-recording one with an invalid context) or the span was not sampled, so
 * an exemplar always points at a trace that was exported.
 *
 * Memory is bounded: at most `maxSeries` attribute sets (least recently
 * updated dropped first), each at most one exemplar per bucket
 * (boundaries + 1). OpenMetrics rendering (openmetrics.ts) reads a snapshot.
 */
import { isSpanContextValid, TraceFlags, type Attributes, type SpanContext } from '@opentelemetry/api';

export interface Exemplar {
  /** 32 lowercase hex */
  readonly traceId: string;
  /** 16 lowercase hex */
  readonly spanId: string;
  /** the measurement (seconds for the probe histogram) */
  readonly value: number;
  /** unix time in milliseconds */
  readonly timeMs: number;
}

/** series key → exemplars (the latest one per bucket, any order) */
export type ExemplarSnapshot = ReadonlyMap<string, readonly Exemplar[]>;

/**
 * One stable key for an attribute set, whatever the key order: the same
 * function is applied to recorded attributes and to collected data points.
 */
export function seriesKey(attributes: Attributes): string {
  return JSON.stringify(
    Object.keys(attributes)
      .sort()
      .map((k) => [k, attributes[k]]),
  );
}

/** OTel explicit-bucket semantics (same as Prometheus `le`): bucket i holds (b[i-1], b[i]]. */
export function bucketIndex(boundaries: readonly number[], value: number): number {
  let lo = 0;
  let hi = boundaries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (value <= boundaries[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function isSampled(span: SpanContext | undefined): span is SpanContext {
  return span !== undefined && isSpanContextValid(span) && (span.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;
}

export interface ExemplarStoreOptions {
  /** bucket boundaries of the histogram (the View's) */
  boundaries: readonly number[];
  /** attribute sets kept at most; default 1024 */
  maxSeries?: number;
  now?: () => number;
}

export class ExemplarStore {
  private readonly series = new Map<string, (Exemplar | undefined)[]>();
  /** a frozen attribute set cannot change: its key is computed once (the metrics' per-check sets are frozen) */
  private readonly frozenKeys = new WeakMap<Attributes, string>();
  private readonly boundaries: readonly number[];
  private readonly maxSeries: number;
  private readonly now: () => number;

  constructor(options: ExemplarStoreOptions) {
    this.boundaries = [...options.boundaries];
    this.maxSeries = Math.max(1, options.maxSeries ?? 1024);
    this.now = options.now ?? Date.now;
  }

  /** Keep `value` as its bucket's exemplar when `span` is valid and sampled; returns whether it was kept. */
  offer(value: number, attributes: Attributes, span: SpanContext | undefined): boolean {
    if (!isSampled(span) || !Number.isFinite(value)) return false;
    const key = this.keyOf(attributes);
    let buckets = this.series.get(key);
    if (buckets) this.series.delete(key); // re-inserted below: Map order = least recently updated first
    else {
      buckets = new Array<Exemplar | undefined>(this.boundaries.length + 1);
      while (this.series.size >= this.maxSeries) this.series.delete(this.series.keys().next().value!);
    }
    buckets[bucketIndex(this.boundaries, value)] = { traceId: span.traceId, spanId: span.spanId, value, timeMs: this.now() };
    this.series.set(key, buckets);
    return true;
  }

  private keyOf(attributes: Attributes): string {
    if (!Object.isFrozen(attributes)) return seriesKey(attributes);
    let key = this.frozenKeys.get(attributes);
    if (key === undefined) {
      key = seriesKey(attributes);
      // only when no value is itself mutable (an array of a frozen set still could change)
      if (Object.values(attributes).every((v) => typeof v !== 'object' || v === null)) this.frozenKeys.set(attributes, key);
    }
    return key;
  }

  /** A copy: what a scrape renders (taken before collection, so every exemplar is already counted). */
  snapshot(): ExemplarSnapshot {
    const out = new Map<string, Exemplar[]>();
    for (const [key, buckets] of this.series) out.set(key, buckets.filter((e): e is Exemplar => e !== undefined));
    return out;
  }

  get size(): number {
    return this.series.size;
  }

  clear(): void {
    this.series.clear();
  }
}

