/**
 * The SPEC §5 instruments and what the Prometheus endpoint serves (the route
 * itself is server/metrics-route.ts).
 *
 * Per attempt (AttemptObserver): one histogram record and, when the attempt
 * reached the dependency, one counter increment (summed here and handed to the
 * SDK when a collection starts: instruments.ts deferredCounter). Everything else
 * is an observable gauge read from the HealthStore at collection time (a
 * scrape), so a probe pays for nothing but the two records.
 *
 * Prometheus names follow the OpenTelemetry→Prometheus compatibility rules
 * (the same names the Collector's prometheus exporter produces): `.` → `_`,
 * the unit as a suffix (`s` → `_seconds`, `By` → `_bytes`, `1` → `_ratio` for
 * gauges, `{annotations}` dropped), `_total` for counters. The JS exporter
 * does not add unit suffixes itself, so `translateForPrometheus` does it
 * before serialising.
 *
 * Exemplars: each histogram record also offers the active span (a sampled
 * one only) to an ExemplarStore; a scrape that asks for OpenMetrics
 * (`Accept: application/openmetrics-text`) gets them on the bucket lines of
 * healthcheck_probe_duration_seconds (openmetrics.ts). The 0.0.4 text is
 * unchanged.
 */
import { context, trace, type Meter, type ObservableGauge } from '@opentelemetry/api';
import { PrometheusSerializer, type PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { AggregationType, DataPointType, type MetricData, type ResourceMetrics, type ViewOptions } from '@opentelemetry/sdk-metrics';
import type { Logger } from 'pino';
import type { CheckConfig } from '../config/types';
import { GROUP_STATUS_VALUE } from '../health/aggregate';
import type { HealthSnapshots } from '../health/snapshot';
import type { AttemptObserver } from '../health/runner';
import type { HealthStore, Outcome } from '../health/state';
import { BREAKER_STATE_VALUE, type BreakerState } from '../policy/build';
import { ExemplarStore } from './exemplars';
import { prometheusBaseName } from './prometheus-names';
import { negotiateMetricsFormat, OPENMETRICS_CONTENT_TYPE, serializeOpenMetrics, type MetricsFormat } from './openmetrics';
import { deferredCounter, healthInstruments, type CounterAdd, type HealthInstruments } from './instruments';
import { ATTR, ATTR_EXTRA, METRIC, PROBE_DURATION_BUCKETS } from './semconv';

/** The View that gives the probe histogram buckets tuned for 1 ms … 10 s. */
export function metricViews(): ViewOptions[] {
  return [
    {
      instrumentName: METRIC.probeDuration,
      aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: PROBE_DURATION_BUCKETS } },
    },
  ];
}

/** What the observable gauges read at collection time. */
export interface MetricsSource {
  readonly store: HealthStore;
  readonly health: HealthSnapshots;
  /** the certificates the TLS probes saw (probes/tls-expiry.ts CertExpiryRegistry) */
  readonly certExpiry?: { observations(): readonly { value: number; attributes: Record<string, string> }[] };
}

interface AttemptAttributes {
  readonly check: Readonly<Record<string, string>>;
  readonly byOutcome: Readonly<Record<Outcome, Readonly<Record<string, string>>>>;
}

/**
 * The attribute sets of one check's attempt records, built once per CheckConfig
 * (a reload brings a new one) and frozen: the SDK keeps them as series keys and
 * the exemplar store caches their key, so no one may change them. The cache
 * belongs to the HealthMetrics that records with them.
 */
function attemptAttributes(cache: WeakMap<CheckConfig, AttemptAttributes>, check: CheckConfig): AttemptAttributes {
  let cached = cache.get(check);
  if (cached === undefined || cached.check[ATTR.name] !== check.name || cached.check[ATTR.kind] !== check.kind) {
    const of = (outcome: Outcome) => Object.freeze({ [ATTR.name]: check.name, [ATTR.kind]: check.kind, [ATTR.outcome]: outcome });
    cached = {
      check: Object.freeze({ [ATTR.name]: check.name, [ATTR.kind]: check.kind }),
      byOutcome: Object.freeze({ success: of('success'), failure: of('failure'), timeout: of('timeout'), rejected: of('rejected') }),
    };
    cache.set(check, cached);
  }
  return cached;
}

/**
 * The healthcheck.* instruments (made by instruments.ts from the given Meter:
 * the SDK bootstrap's, after it registered the MeterProvider).
 */
export class HealthMetrics implements AttemptObserver {
  private readonly instruments: HealthInstruments;
  /** the last breaker state reported per check (the "from" of the next transition) */
  private readonly breakerStates = new Map<string, BreakerState>();
  /** the latest sampled trace per probe-duration series and bucket (bounded) */
  readonly exemplars = new ExemplarStore({ boundaries: PROBE_DURATION_BUCKETS });
  private readonly attemptAttributeCache = new WeakMap<CheckConfig, AttemptAttributes>();
  /** healthcheck.probe.attempts, summed here and handed to the SDK at collection (instruments.ts deferredCounter) */
  private readonly attempts: CounterAdd;

  constructor(private readonly meter: Meter) {
    this.instruments = healthInstruments(meter);
    this.attempts = deferredCounter(meter, this.instruments.probeAttempts, this.instruments.status);
    // Export the counters from the start (value 0) so increase() and alerts work from the first scrape.
    this.instruments.exportFailures.add(0, { [ATTR_EXTRA.telemetrySignal]: 'traces' });
  }

  attemptFinished(check: CheckConfig, outcome: Outcome, durationMs: number): void {
    const attributes = attemptAttributes(this.attemptAttributeCache, check);
    const seconds = durationMs / 1000;
    const withOutcome = attributes.byOutcome[outcome];
    this.instruments.probeDuration.record(seconds, withOutcome);
    // the runner calls this with the attempt's span active (the run's span for a breaker rejection)
    this.exemplars.offer(seconds, withOutcome, trace.getSpanContext(context.active()));
    if (outcome !== 'rejected') this.attempts.add(1, attributes.check);
  }

  /** A breaker changed state (AttemptObserver); an admin reset reports closed, which counts only when it was not closed. */
  breakerChanged(check: CheckConfig, state: BreakerState): void {
    const from = this.breakerStates.get(check.name) ?? 'closed';
    this.breakerStates.set(check.name, state);
    if (from !== state) this.instruments.breakerTransitions.add(1, { [ATTR.name]: check.name, [ATTR.from]: from, [ATTR.to]: state });
  }

  /** one failed export (called by the exporter guards in tracing.ts and otlp-signals.ts) */
  exportFailed(signal: 'traces' | 'metrics' | 'logs' = 'traces'): void {
    this.instruments.exportFailures.add(1, { [ATTR_EXTRA.telemetrySignal]: signal });
  }

  /** export the failure counter of a signal from the start (value 0) */
  countExportFailures(signal: 'metrics' | 'logs'): void {
    this.instruments.exportFailures.add(0, { [ATTR_EXTRA.telemetrySignal]: signal });
  }

  /**
   * Start reading a sidecar's state: observable gauges (at collection time) and
   * the transitions counter. Returns a function that stops both.
   */
  observe(source: MetricsSource): () => void {
    const { status, groupStatus, breakerState, consecutiveFailures, lastSuccess, certExpiry, transitions } = this.instruments;
    const callback = (result: { observe(gauge: ObservableGauge, value: number, attributes?: Record<string, string | number | boolean>): void }) => {
      const snapshot = source.health.current();
      const states = snapshot.checks;
      for (const state of states) {
        const name = { [ATTR.name]: state.name };
        if (state.status !== 'UNKNOWN') result.observe(status, state.status === 'UP' ? 1 : 0, { ...name, [ATTR.kind]: state.kind, [ATTR.critical]: state.critical });
        result.observe(breakerState, BREAKER_STATE_VALUE[state.breaker], name);
        result.observe(consecutiveFailures, state.consecutiveFailures, name);
        if (state.lastSuccessAt !== null) result.observe(lastSuccess, state.lastSuccessAt / 1000, name);
      }
      for (const [group, view] of Object.entries(snapshot.groups)) {
        result.observe(groupStatus, GROUP_STATUS_VALUE[view.status], { [ATTR.group]: group });
      }
      for (const observation of source.certExpiry?.observations() ?? []) result.observe(certExpiry, observation.value, observation.attributes);
    };
    const observables = [status, groupStatus, breakerState, consecutiveFailures, lastSuccess, certExpiry];
    this.meter.addBatchObservableCallback(callback, observables);
    const stopTransitions = source.store.onTransition((t) => transitions.add(1, { [ATTR.name]: t.check, [ATTR.from]: t.from, [ATTR.to]: t.to }));
    return () => {
      this.meter.removeBatchObservableCallback(callback, observables);
      stopTransitions();
    };
  }
}


// ---- Prometheus text -------------------------------------------------------

/**
 * Names with unit suffixes, units dropped from the descriptor (the 0.0.4 text
 * format has no UNIT line). Pure: the collected data is copied, not changed.
 */
export function translateForPrometheus(resourceMetrics: ResourceMetrics): ResourceMetrics {
  return {
    ...resourceMetrics,
    scopeMetrics: resourceMetrics.scopeMetrics.map((scope) => ({
      ...scope,
      metrics: scope.metrics.map(
        (metric) =>
          ({
            ...metric,
            descriptor: { ...metric.descriptor, name: prometheusBaseName(metric.descriptor.name, metric.descriptor.unit, metric), unit: '' },
          }) as MetricData,
      ),
    })),
  };
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** is a check still there? (a check removed by a reload or the monitors API: its series are no longer exported) */
export type KnownCheck = (name: string) => boolean;

/**
 * The collection without the series of checks that are gone. The SDK keeps a
 * cumulative series for as long as the process lives; a removed check's
 * series would otherwise be scraped, frozen, forever (issue 20: a deleted
 * monitor takes its series with it).
 */
export function withoutGoneChecks(resourceMetrics: ResourceMetrics, known: KnownCheck | undefined): ResourceMetrics {
  if (!known) return resourceMetrics;
  const keep = (point: { attributes: Record<string, unknown> }) => {
    const name = point.attributes[ATTR.name];
    return typeof name !== 'string' || known(name);
  };
  return {
    ...resourceMetrics,
    scopeMetrics: resourceMetrics.scopeMetrics.map((scope) => ({
      ...scope,
      metrics: scope.metrics.map((metric) => ({ ...metric, dataPoints: (metric.dataPoints as { attributes: Record<string, unknown> }[]).filter(keep) }) as typeof metric),
    })),
  };
}

/** Serialise one collection of the exporter (a MetricReader) as Prometheus text. */
export async function renderPrometheus(exporter: PrometheusExporter, logger?: Logger, known?: KnownCheck): Promise<string> {
  const { resourceMetrics, errors } = await exporter.collect();
  if (errors.length) logger?.warn({ errors: errors.map((e) => String((e as Error)?.message ?? e)) }, 'metrics collection reported errors');
  return new PrometheusSerializer('', false).serialize(translateForPrometheus(withoutGoneChecks(resourceMetrics, known)));
}

/**
 * Serialise one collection as OpenMetrics 1.0, with the probe histogram's
 * exemplars. The exemplars are read before collecting, so every one of them
 * is already counted in the buckets written.
 */
export async function renderOpenMetrics(exporter: PrometheusExporter, exemplars: ExemplarStore | undefined, logger?: Logger, known?: KnownCheck): Promise<string> {
  const snapshot = exemplars?.snapshot();
  const { resourceMetrics, errors } = await exporter.collect();
  if (errors.length) logger?.warn({ errors: errors.map((e) => String((e as Error)?.message ?? e)) }, 'metrics collection reported errors');
  return serializeOpenMetrics(withoutGoneChecks(resourceMetrics, known), snapshot ? { exemplars: new Map([[METRIC.probeDuration, snapshot]]) } : {});
}

const FORMATS: Readonly<Record<MetricsFormat, { readonly name: MetricsFormat; readonly contentType: string }>> = {
  prometheus: { name: 'prometheus', contentType: PROMETHEUS_CONTENT_TYPE },
  openmetrics: { name: 'openmetrics', contentType: OPENMETRICS_CONTENT_TYPE },
};

/**
 * What the `/metrics` route of server/metrics-route.ts serves (its
 * MetricsRenderer port, by shape: telemetry does not import server/):
 * OpenMetrics (with exemplars) when the Accept header prefers it, the 0.0.4
 * text otherwise, each a fresh collection of the exporter.
 */
export class PrometheusRenderer {
  constructor(
    private readonly exporter: PrometheusExporter,
    private readonly logger?: Logger,
    /** the store of the HealthMetrics recording the probe histogram (none: OpenMetrics without exemplars) */
    private readonly exemplars: () => ExemplarStore | undefined = () => undefined,
    /** is a check still there? the series of one that is gone (a reload, a deleted monitor) are left out */
    private readonly known?: KnownCheck,
  ) {}

  negotiate(accept: string | string[] | undefined): { readonly name: MetricsFormat; readonly contentType: string } {
    return FORMATS[negotiateMetricsFormat(accept)];
  }

  render(format: { readonly name: string }): Promise<string> {
    return format.name === 'openmetrics' ? renderOpenMetrics(this.exporter, this.exemplars(), this.logger, this.known) : renderPrometheus(this.exporter, this.logger, this.known);
  }
}
