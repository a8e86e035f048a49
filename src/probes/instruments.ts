/**
 * The instruments a probe feeds from its own state (docs/telemetry.md,
 * "Per-check connections" and "HTTP phases"):
 *
 *  - the connections the check holds, idle or in use: `db.client.connection.count`
 *    (OTel semantic conventions, pool name = the check's name) for postgres,
 *    `healthcheck.connections` for redis and http — observable up-down counters
 *    (the semantic conventions' instrument for a count; a Prometheus gauge) read
 *    at collection time from a function the probe hands in, so a run pays nothing;
 *  - `healthcheck.http.phase.duration{phase}` for http checks.
 *
 * Each probe registers for itself and unregisters on close: no module state.
 * The metrics API has no proxy provider (a gauge made before the SDK registers
 * its MeterProvider would stay a no-op), so registration follows the global
 * provider: `sync()` (called at the start of every run) registers again with
 * the current one when it changed.
 */
import { metrics, type Attributes, type Histogram, type MeterProvider, type Observable, type ObservableResult } from '@opentelemetry/api';
import { ATTR, ATTR_EXTRA, METRIC, PROBE_DURATION_BUCKETS, SCOPE, SEMCONV } from '../telemetry/semconv';

export interface ConnectionCounts {
  /** open and waiting for the next run */
  idle: number;
  /** open and in use by a run (or connecting) */
  used: number;
}

/** Phase buckets (seconds): 100 µs … 10 s — loopback phases are well under a millisecond. */
export const HTTP_PHASE_BUCKETS = [0.0001, 0.00025, 0.0005, ...PROBE_DURATION_BUCKETS];

export interface ProbeInstruments {
  /** follow the global MeterProvider (cheap when unchanged); call at the start of each run */
  sync(): void;
  /** the phase histogram of the current provider (http checks) */
  recordPhase(phase: string, seconds: number): void;
  /** stop observing (probe closed) */
  close(): void;
  /** a run is in progress: a kind whose kept connections are all in use during a run reports them as `used` */
  readonly busy: boolean;
  /** one run: sync(), then `run` with `busy` set until it settles */
  track<T>(run: () => Promise<T>): Promise<T>;
}

interface Registration {
  provider: MeterProvider;
  gauge: Observable | undefined;
  callback: ((result: ObservableResult) => void) | undefined;
  histogram: Histogram | undefined;
}

/**
 * `connections` is read at each collection (undefined: the kind reports no
 * connection gauge). Postgres series carry `db.client.connection.pool.name` and
 * `db.client.connection.state`; redis and http series carry `healthcheck.name`,
 * `healthcheck.kind` and `db.client.connection.state`.
 */
export function probeInstruments(check: { name: string; kind: string }, connections?: () => ConnectionCounts): ProbeInstruments {
  const postgres = check.kind === 'postgres';
  const base: Attributes = postgres ? { [SEMCONV.dbConnectionPool]: check.name } : { [ATTR.name]: check.name, [ATTR.kind]: check.kind };
  const idle = Object.freeze({ ...base, [SEMCONV.dbConnectionState]: 'idle' });
  const used = Object.freeze({ ...base, [SEMCONV.dbConnectionState]: 'used' });
  const phaseAttributes = new Map<string, Attributes>();
  let current: Registration | undefined;
  let closed = false;
  let busy = false;

  function unregister() {
    if (current?.gauge && current.callback) current.gauge.removeCallback(current.callback);
    current = undefined;
  }

  /**
   * A closed probe holds no connections, and says so: a cumulative reader keeps
   * reporting a series' last value after its callback is gone, so the callback
   * stays for one more collection and observes 0 before it leaves (the series
   * then stays at 0).
   */
  function retire() {
    const last = current;
    current = undefined;
    if (!last?.gauge || !last.callback) return;
    const gauge = last.gauge;
    const callback = last.callback;
    const farewell = (result: ObservableResult) => {
      result.observe(0, idle);
      result.observe(0, used);
      setImmediate(() => gauge.removeCallback(farewell));
    };
    gauge.removeCallback(callback);
    gauge.addCallback(farewell);
  }

  return {
    sync() {
      const provider = metrics.getMeterProvider();
      if (closed || current?.provider === provider) return;
      unregister();
      const meter = provider.getMeter(SCOPE);
      const registration: Registration = { provider, gauge: undefined, callback: undefined, histogram: undefined };
      if (connections) {
        registration.gauge = postgres
          ? meter.createObservableUpDownCounter(SEMCONV.dbConnectionCount, {
              unit: '{connection}',
              description: 'connections a postgres check holds (pool name = check name), by state: idle between runs, used during one',
            })
          : meter.createObservableUpDownCounter(METRIC.connections, {
              unit: '{connection}',
              description: 'connections a redis or http check holds (http: sockets of its keep-alive agents), by state: idle or used',
            });
        registration.callback = (result) => {
          const counts = connections();
          result.observe(counts.idle, idle);
          result.observe(counts.used, used);
        };
        registration.gauge.addCallback(registration.callback);
      }
      if (check.kind === 'http') {
        registration.histogram = meter.createHistogram(METRIC.httpPhaseDuration, {
          unit: 's',
          description: 'http checks: time spent per request phase (dns, connect, tls, ttfb, transfer), summed over the redirects of a run; a reused connection has no dns, connect or tls',
          advice: { explicitBucketBoundaries: HTTP_PHASE_BUCKETS },
        });
      }
      current = registration;
    },
    recordPhase(phase, seconds) {
      if (!current?.histogram) return;
      let attributes = phaseAttributes.get(phase);
      if (!attributes) {
        attributes = Object.freeze({ [ATTR.name]: check.name, [ATTR_EXTRA.httpPhase]: phase });
        phaseAttributes.set(phase, attributes);
      }
      current.histogram.record(seconds, attributes);
    },
    close() {
      closed = true;
      retire();
    },
    get busy() {
      return busy;
    },
    async track(run) {
      this.sync();
      busy = true;
      try {
        return await run();
      } finally {
        busy = false;
      }
    },
  };
}
