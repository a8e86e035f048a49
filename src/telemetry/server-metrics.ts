/**
 * The sidecar's own HTTP server metrics (issue 21.7, 21.6):
 *
 * - `http.server.request.duration` (OTel semantic conventions: attributes
 *   http.request.method, http.route, http.response.status_code) for every
 *   answer: kubelet fast path, routed endpoints and refusals (401, 429, 503).
 *   Recording must cost the fast path next to nothing, and the SDK's
 *   `histogram.record()` hashes its attribute set on every call (a few µs).
 *   So each (method, route, status) gets a pre-bound accumulator — count, sum,
 *   min, max and bucket counts in a typed array, bound once — and this class
 *   is a MetricProducer that the Prometheus reader collects alongside the SDK:
 *   the histogram appears in /metrics exactly as an SDK one would.
 * - `healthcheck.server.auth_failures{healthcheck.auth.reason}`: missing,
 *   wrong_key, rate_limited. Never the key (there is no attribute for it).
 * - `healthcheck.server.shed{http.route}`: requests shed under overload
 *   (issue 14.2, server/overload.ts).
 */
import { ValueType } from '@opentelemetry/api';
import { millisToHrTime, type InstrumentationScope } from '@opentelemetry/core';
import { AggregationTemporality, DataPointType, type CollectionResult, type MetricProducer } from '@opentelemetry/sdk-metrics';
import type { HrTime } from '@opentelemetry/api';
import { VERSION } from '../version';
import type { ServerInstruments } from './instruments';
import { ATTR_EXTRA, HTTP_SERVER_DURATION_BUCKETS, SCOPE, SEMCONV } from './semconv';

/** Methods kept as they are; anything else is `_OTHER` (semantic conventions: bounded cardinality). */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT']);
/** At most this many (method, route, status) series; later ones share one `_OTHER` series. */
export const MAX_SERIES = 512;

const AUTH_REASON: Readonly<Record<string, string>> = { missing_key: 'missing', invalid_key: 'wrong_key', rate_limited: 'rate_limited' };

/** A recorder bound to one (method, route, status): server/app.ts `BoundRecorder`, by shape. */
export interface BoundRecorder {
  record(seconds: number): void;
}

class Accumulator implements BoundRecorder {
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  readonly counts = new Float64Array(HTTP_SERVER_DURATION_BUCKETS.length + 1);

  constructor(
    readonly attributes: Readonly<Record<string, string | number>>,
    readonly startTime: HrTime,
  ) {}

  record(seconds: number): void {
    this.count++;
    this.sum += seconds;
    if (seconds < this.min) this.min = seconds;
    if (seconds > this.max) this.max = seconds;
    let i = 0;
    while (i < HTTP_SERVER_DURATION_BUCKETS.length && seconds > HTTP_SERVER_DURATION_BUCKETS[i]!) i++;
    this.counts[i]!++;
  }
}

/** server/app.ts `RequestMetrics` by shape (telemetry does not import server/; the wiring passes it on) */
export class HttpServerMetrics implements MetricProducer {
  private readonly series = new Map<string, Accumulator>();
  private counters: ServerInstruments | undefined;
  private readonly scope: InstrumentationScope = { name: SCOPE, version: VERSION };

  /** The counters (instruments.ts serverInstruments) need the MeterProvider, which is built after the reader this producer is given to. */
  useCounters(counters: ServerInstruments): void {
    this.counters = counters;
    // exported from the first scrape (value 0), so increase() works from the start
    for (const reason of Object.values(AUTH_REASON)) counters.authFailures.add(0, { [ATTR_EXTRA.authReason]: reason });
  }

  shed(route: string | undefined): void {
    this.counters?.shed.add(1, route === undefined ? {} : { [SEMCONV.httpRoute]: route });
  }

  bind(method: string | undefined, route: string | undefined, status: number): BoundRecorder {
    const m = method !== undefined && KNOWN_METHODS.has(method) ? method : '_OTHER';
    const key = `${m} ${status} ${route ?? ''}`;
    let bound = this.series.get(key);
    if (bound === undefined) {
      const overflow = this.series.size >= MAX_SERIES;
      const attributes: Record<string, string | number> = { [SEMCONV.httpMethod]: overflow ? '_OTHER' : m, [SEMCONV.httpStatus]: overflow ? 0 : status };
      if (route !== undefined && !overflow) attributes[SEMCONV.httpRoute] = route;
      const overflowKey = '_OTHER 0 ';
      bound = overflow ? this.series.get(overflowKey) : undefined;
      if (!bound) {
        bound = new Accumulator(Object.freeze(attributes), millisToHrTime(Date.now()));
        this.series.set(overflow ? overflowKey : key, bound);
      }
    }
    return bound;
  }

  refused(code: string): void {
    const reason = AUTH_REASON[code];
    if (reason) this.counters?.authFailures.add(1, { [ATTR_EXTRA.authReason]: reason });
  }

  async collect(): Promise<CollectionResult> {
    const endTime = millisToHrTime(Date.now());
    // a series bound in advance (the kubelet paths bind every answer at start)
    // is exported from its first request on, as an SDK histogram would be:
    // dozens of never-seen (method, route, status) rows cost every scrape
    const dataPoints = [...this.series.values()].filter((s) => s.count > 0).map((s) => ({
      startTime: s.startTime,
      endTime,
      attributes: s.attributes,
      value: {
        buckets: { boundaries: HTTP_SERVER_DURATION_BUCKETS, counts: Array.from(s.counts) },
        count: s.count,
        sum: s.sum,
        ...(s.count > 0 ? { min: s.min, max: s.max } : {}),
      },
    }));
    return {
      // the reader keeps the SDK's resource; this one is not used
      resourceMetrics: {
        resource: undefined as never,
        scopeMetrics: dataPoints.length
          ? [
              {
                scope: this.scope,
                metrics: [
                  {
                    descriptor: { name: SEMCONV.httpServerDuration, description: 'Duration of HTTP server requests.', unit: 's', valueType: ValueType.DOUBLE },
                    aggregationTemporality: AggregationTemporality.CUMULATIVE,
                    dataPointType: DataPointType.HISTOGRAM,
                    dataPoints,
                  },
                ],
              },
            ]
          : [],
      },
      errors: [],
    };
  }
}
