/**
 * Every instrument of the sidecar is created here, and nowhere else
 * (test/structure/instruments.test.ts), from a Meter that is handed in: the
 * SDK bootstrap (sdk.ts) takes it from the MeterProvider it registered, tests
 * from a private MeterProvider. The modules that record get typed recorders,
 * not a Meter:
 *
 *  - telemetry's own classes (HealthMetrics, SloMetrics, HttpServerMetrics)
 *    get their instruments from `healthInstruments`, `sloInstruments` and
 *    `serverInstruments`;
 *  - the lower layers declare the port they record through and get an
 *    implementation from here: probes/instruments.ts `ProbeMetrics`
 *    (`probeMetrics`), notify/service.ts `NotifyMetrics` (`notifyMetrics`),
 *    config/reload.ts `ReloadMetrics` (`reloadMetrics`). Without one they
 *    record nothing (OTEL_SDK_DISABLED, or no metrics reader).
 *
 * Names, units and descriptions are the tables below (names from semconv.ts).
 * An instrument is created when its recorder is made, in the order of its
 * table: the order of the series in /metrics is the order of creation.
 */
import type { Attributes, Counter, Histogram, Meter, MetricOptions, ObservableGauge, ObservableResult, ObservableUpDownCounter } from '@opentelemetry/api';
import type { ReloadMetrics } from '../config/reload';
import type { NotifyMetrics } from '../notify/service';
import type { ProbeMetrics } from '../probes/instruments';
import { ATTR, ATTR_EXTRA, HTTP_PHASE_BUCKETS, METRIC, NOTIFY_METRIC, SELF_METRIC, SEMCONV } from './semconv';

interface InstrumentTypes {
  counter: Counter;
  histogram: Histogram;
  gauge: ObservableGauge;
  /** an observable up-down counter: the semantic conventions' instrument for a count (a Prometheus gauge) */
  count: ObservableUpDownCounter;
}

interface Declaration extends MetricOptions {
  readonly kind: keyof InstrumentTypes;
  readonly name: string;
}

type Declarations = Readonly<Record<string, Declaration>>;
type Instruments<T extends Declarations> = { readonly [K in keyof T]: InstrumentTypes[T[K]['kind']] };

const CREATE: { readonly [K in keyof InstrumentTypes]: (meter: Meter, name: string, options: MetricOptions) => InstrumentTypes[K] } = {
  counter: (meter, name, options) => meter.createCounter(name, options),
  histogram: (meter, name, options) => meter.createHistogram(name, options),
  gauge: (meter, name, options) => meter.createObservableGauge(name, options),
  count: (meter, name, options) => meter.createObservableUpDownCounter(name, options),
};

function instrument<D extends Declaration>(meter: Meter, declaration: D): InstrumentTypes[D['kind']] {
  const { kind, name, ...options } = declaration;
  return CREATE[kind](meter, name, options) as InstrumentTypes[D['kind']];
}

/** one instrument per entry of `table`, created in its order */
function instruments<T extends Declarations>(meter: Meter, table: T): Instruments<T> {
  return Object.fromEntries(Object.entries(table).map(([key, declaration]) => [key, instrument(meter, declaration)])) as Instruments<T>;
}

// ---- the tables -------------------------------------------------------------

/** SPEC §5: per attempt, per check, per group (metrics.ts HealthMetrics) */
const HEALTH = {
  probeDuration: {
    kind: 'histogram',
    name: METRIC.probeDuration,
    unit: 's',
    description: 'duration of one probe attempt; outcome success, failure, timeout or rejected (breaker open, no attempt made)',
  },
  probeAttempts: {
    kind: 'counter',
    name: METRIC.probeAttempts,
    unit: '{attempt}',
    description: 'probe attempts made against the dependency (retries included, breaker rejections not)',
  },
  breakerTransitions: {
    kind: 'counter',
    name: METRIC.breakerTransitions,
    unit: '{transition}',
    description: 'circuit breaker state changes per check: from/to closed, open, half-open',
  },
  transitions: {
    kind: 'counter',
    name: METRIC.transitions,
    unit: '{transition}',
    description: 'check status changes after hysteresis (UNKNOWN, UP, DOWN)',
  },
  exportFailures: {
    kind: 'counter',
    name: SELF_METRIC.exportFailures,
    unit: '{batch}',
    description: 'batches an OTLP exporter failed to deliver (collector down, slow or refusing), by signal (traces, metrics, logs); the batch is dropped',
  },
  status: {
    kind: 'gauge',
    name: METRIC.status,
    description: 'check status: 1 up, 0 down; no sample until the first result (UNKNOWN)',
  },
  groupStatus: {
    kind: 'gauge',
    name: METRIC.groupStatus,
    description: 'group status: 2 up, 1 degraded, 0 down or unknown (the probe endpoint answers 503)',
  },
  breakerState: {
    kind: 'gauge',
    name: METRIC.breakerState,
    description: 'circuit breaker state: 0 closed, 1 half-open, 2 open',
  },
  consecutiveFailures: {
    kind: 'gauge',
    name: METRIC.consecutiveFailures,
    unit: '{failure}',
    description: 'failed runs in a row (0 after a success)',
  },
  lastSuccess: {
    kind: 'gauge',
    name: METRIC.lastSuccess,
    unit: 's',
    description: 'unix time of the last successful run; no sample before the first success',
  },
  certExpiry: {
    kind: 'gauge',
    name: METRIC.certExpiry,
    unit: 's',
    description: 'notAfter of the TLS certificate a check last saw (leaf, and the earliest in the chain), unix seconds',
  },
} as const satisfies Declarations;

/** docs/uptime.md, "Metrics" (slo-metrics.ts SloMetrics) */
const SLO = {
  runs: {
    kind: 'counter',
    name: METRIC.runs,
    unit: '{run}',
    description: 'finished runs of a check (all attempts of one) by outcome: success, failure, timeout, rejected (breaker open); SLO burn rates divide the non-success ones by all',
  },
  objective: {
    kind: 'gauge',
    name: METRIC.sloObjective,
    unit: '1',
    description: 'SLO objective of a check: the share of runs that must succeed over slo.window',
  },
  availability: {
    kind: 'gauge',
    name: METRIC.sloAvailability,
    unit: '1',
    description: 'successful runs / runs over the window (rejected runs count as failed); no sample without runs; refreshed at most once a minute',
  },
  budgetRemaining: {
    kind: 'gauge',
    name: METRIC.sloErrorBudgetRemaining,
    unit: '1',
    description: 'share of the error budget of the SLO window left (1 untouched, 0 spent, negative overspent); refreshed at most once a minute',
  },
} as const satisfies Declarations;

/** the sidecar's own HTTP server, besides its request histogram (server-metrics.ts HttpServerMetrics) */
const SERVER = {
  authFailures: {
    kind: 'counter',
    name: METRIC.authFailures,
    unit: '{request}',
    description: 'requests refused for authentication: reason missing (no key), wrong_key (a key that matches none), rate_limited (429)',
  },
  shed: {
    kind: 'counter',
    name: METRIC.shed,
    unit: '{request}',
    description: 'requests answered 503 overloaded without running their handler (server/overload.ts), by route; the kubelet paths are never shed',
  },
} as const satisfies Declarations;

/** notifications, attribute notification.target (notify/service.ts) */
const NOTIFY = {
  sent: {
    kind: 'counter',
    name: NOTIFY_METRIC.sent,
    description: 'notification messages delivered',
  },
  failed: {
    kind: 'counter',
    name: NOTIFY_METRIC.failed,
    description: 'failed notification delivery attempts',
  },
  dead: {
    kind: 'counter',
    name: NOTIFY_METRIC.dead,
    description: 'notification messages given up (dead letters)',
  },
  attempts: {
    kind: 'counter',
    name: METRIC.notificationAttempts,
    unit: '{attempt}',
    description: 'notification delivery attempts by target and outcome: success, failure, timeout (breaker rejections make no attempt)',
  },
  redeliveries: {
    kind: 'counter',
    name: NOTIFY_METRIC.redeliveries,
    unit: '{message}',
    description: 'rounds of attempts that failed and were scheduled again (the message waits, it is not lost)',
  },
  folded: {
    kind: 'counter',
    name: NOTIFY_METRIC.folded,
    unit: '{message}',
    description: 'undelivered messages folded into a newer message of the same check',
  },
  duplicates: {
    kind: 'counter',
    name: NOTIFY_METRIC.duplicatesSuppressed,
    unit: '{message}',
    description: 'messages not sent because the target was already told that state (restart or reset during an incident)',
  },
  queueDepth: {
    kind: 'gauge',
    name: NOTIFY_METRIC.queueDepth,
    unit: '{message}',
    description: 'messages waiting for delivery (incl. the one in flight), per target',
  },
  oldestAge: {
    kind: 'gauge',
    name: NOTIFY_METRIC.oldestAge,
    unit: 's',
    description: 'age of the oldest undelivered message, per target (0: none waiting)',
  },
} as const satisfies Declarations;

/** hot reload (config/reload.ts) */
const RELOAD = {
  failures: {
    kind: 'counter',
    name: METRIC.configReloadFailures,
    description: 'config reloads refused because the new config was invalid (the old config stays)',
  },
  reloads: {
    kind: 'counter',
    name: METRIC.configReloads,
    description: 'config reloads applied',
  },
} as const satisfies Declarations;

/** what a probe feeds from its own state (probes/instruments.ts); each made when the first check that needs it starts */
const PROBE = {
  postgresConnections: {
    kind: 'count',
    name: SEMCONV.dbConnectionCount,
    unit: '{connection}',
    description: 'connections a postgres check holds (pool name = check name), by state: idle between runs, used during one',
  },
  connections: {
    kind: 'count',
    name: METRIC.connections,
    unit: '{connection}',
    description: 'connections a redis or http check holds (http: sockets of its keep-alive agents), by state: idle or used',
  },
  httpPhase: {
    kind: 'histogram',
    name: METRIC.httpPhaseDuration,
    unit: 's',
    description: 'http checks: time spent per request phase (dns, connect, tls, ttfb, transfer), summed over the redirects of a run; a reused connection has no dns, connect or tls',
    advice: { explicitBucketBoundaries: HTTP_PHASE_BUCKETS },
  },
} as const satisfies Declarations;

// ---- the recorders ------------------------------------------------------------

/** A counter's `add`, for the per-probe counters (deferredCounter). */
export interface CounterAdd {
  add(value: number, attributes: Attributes): void;
}

/**
 * A counter whose increments are summed here, per attribute object, and handed
 * to the SDK at collection time, just before it reads its sync instruments (a
 * batch callback on `hook`, an observable of the same Meter: the SDK runs the
 * Meter's callbacks first, then collects). The SDK hashes the attribute set of
 * every add (keys sorted, a JSON string, an array per key): a probe's counter
 * increments then cost a Map update instead. The sums exported are the same:
 * what was added before a collection is in it. Frozen attribute objects only
 * (the per-check sets, reused by every record); any other add goes straight to
 * the counter. Series a collection creates keep the order of their first add.
 */
export function deferredCounter(meter: Meter, counter: Counter, hook: ObservableGauge): CounterAdd {
  const pending = new Map<Attributes, number>();
  meter.addBatchObservableCallback(() => {
    if (pending.size === 0) return;
    for (const [attributes, value] of pending) counter.add(value, attributes);
    pending.clear();
  }, [hook]);
  return {
    add(value, attributes) {
      if (!Object.isFrozen(attributes)) {
        counter.add(value, attributes);
        return;
      }
      pending.set(attributes, (pending.get(attributes) ?? 0) + value);
    },
  };
}

export type HealthInstruments = Instruments<typeof HEALTH>;
export type SloInstruments = Instruments<typeof SLO>;
export type ServerInstruments = Instruments<typeof SERVER>;

export const healthInstruments = (meter: Meter): HealthInstruments => instruments(meter, HEALTH);
export const sloInstruments = (meter: Meter): SloInstruments => instruments(meter, SLO);
export const serverInstruments = (meter: Meter): ServerInstruments => instruments(meter, SERVER);

/** notify/service.ts NotifyMetrics: the counters and queue gauges of notification delivery */
export function notifyMetrics(meter: Meter): NotifyMetrics {
  const made = instruments(meter, NOTIFY);
  const target = (name: string) => ({ [ATTR_EXTRA.notificationTarget]: name });
  return {
    sent: (name) => made.sent.add(1, target(name)),
    failed: (name) => made.failed.add(1, target(name)),
    dead: (name) => made.dead.add(1, target(name)),
    attempt: (name, outcome) => made.attempts.add(1, { ...target(name), [ATTR.outcome]: outcome }),
    redelivered: (name) => made.redeliveries.add(1, target(name)),
    folded: (name, count) => made.folded.add(count, target(name)),
    duplicate: (name) => made.duplicates.add(1, target(name)),
    observeQueues(read) {
      made.queueDepth.addCallback((result) => {
        for (const queue of read()) result.observe(queue.pending, target(queue.target));
      });
      made.oldestAge.addCallback((result) => {
        for (const queue of read()) result.observe(queue.oldestAgeMs / 1000, target(queue.target));
      });
    },
  };
}

/** config/reload.ts ReloadMetrics; both series are exported from the start (value 0) so alerts can use increase() */
export function reloadMetrics(meter: Meter): ReloadMetrics {
  const made = instruments(meter, RELOAD);
  made.failures.add(0);
  made.reloads.add(0);
  return {
    applied: (trigger) => made.reloads.add(1, { [ATTR_EXTRA.reloadTrigger]: trigger }),
    rejected: (trigger) => made.failures.add(1, { [ATTR_EXTRA.reloadTrigger]: trigger }),
  };
}

/**
 * probes/instruments.ts ProbeMetrics. Postgres connection series carry
 * `db.client.connection.pool.name` and `db.client.connection.state`; redis and
 * http series carry `healthcheck.name`, `healthcheck.kind` and
 * `db.client.connection.state`; phase records `healthcheck.name` and
 * `healthcheck.http.phase`.
 */
export function probeMetrics(meter: Meter): ProbeMetrics {
  const made: { -readonly [K in keyof typeof PROBE]?: InstrumentTypes[(typeof PROBE)[K]['kind']] } = {};
  const postgresConnections = () => (made.postgresConnections ??= instrument(meter, PROBE.postgresConnections));
  const connections = () => (made.connections ??= instrument(meter, PROBE.connections));
  const httpPhase = () => (made.httpPhase ??= instrument(meter, PROBE.httpPhase));
  return {
    register(check, read) {
      const postgres = check.kind === 'postgres';
      const base: Attributes = postgres ? { [SEMCONV.dbConnectionPool]: check.name } : { [ATTR.name]: check.name, [ATTR.kind]: check.kind };
      const idle = Object.freeze({ ...base, [SEMCONV.dbConnectionState]: 'idle' });
      const used = Object.freeze({ ...base, [SEMCONV.dbConnectionState]: 'used' });
      const gauge = read ? (postgres ? postgresConnections() : connections()) : undefined;
      const callback = (result: ObservableResult) => {
        const counts = read!();
        result.observe(counts.idle, idle);
        result.observe(counts.used, used);
      };
      gauge?.addCallback(callback);
      const histogram = check.kind === 'http' ? httpPhase() : undefined;
      const phaseAttributes = new Map<string, Attributes>();
      let closed = false;
      return {
        recordPhase(phase, seconds) {
          if (!histogram || closed) return;
          let attributes = phaseAttributes.get(phase);
          if (!attributes) {
            attributes = Object.freeze({ [ATTR.name]: check.name, [ATTR_EXTRA.httpPhase]: phase });
            phaseAttributes.set(phase, attributes);
          }
          histogram.record(seconds, attributes);
        },
        /**
         * A closed probe holds no connections, and says so: a cumulative reader keeps
         * reporting a series' last value after its callback is gone, so a callback
         * stays for one more collection and observes 0 before it leaves (the series
         * then stays at 0).
         */
        close() {
          if (closed) return;
          closed = true;
          if (!gauge) return;
          const farewell = (result: ObservableResult) => {
            result.observe(0, idle);
            result.observe(0, used);
            setImmediate(() => gauge.removeCallback(farewell));
          };
          gauge.removeCallback(callback);
          gauge.addCallback(farewell);
        },
      };
    },
  };
}
