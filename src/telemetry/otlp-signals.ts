/**
 * OTLP push of metrics and logs, beside the Prometheus endpoint and stdout:
 *   - metrics: a PeriodicExportingMetricReader (OTEL_METRIC_EXPORT_INTERVAL /
 *     _TIMEOUT) over the official OTLP metric exporter of the configured
 *     protocol, with the configured temporality preference;
 *   - logs: a LoggerProvider with a bounded BatchLogRecordProcessor over the
 *     official OTLP log exporter; pino's records reach it through
 *     @opentelemetry/instrumentation-pino's log sending (sdk.ts).
 * Each exporter sits behind an ExportGuard, as the span exporter does
 * (tracing.ts): a refused or black-holed collector costs a counter and at most
 * one log line a minute, and never more than one export is in flight (a new
 * batch while one is pending is dropped and counted), so memory stays bounded
 * and the probes never wait.
 *
 * The exporter packages are loaded only for the protocol that is configured.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, LogRecordProcessor, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { AggregationOption, AggregationTemporality, InstrumentType, MetricProducer, MetricReader, PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Logger } from 'pino';
import { Redactor } from '../redact';
import type { LogsDecision, MetricsDecision, Temporality } from './otel-env';
import { exportFailureReason, otlpHeaderSecrets, RateLimitedLog, type OtlpProtocol } from './tracing';

export type ExportSignal = 'metrics' | 'logs';

export interface ExportGuardOptions {
  signal: ExportSignal;
  logger: Logger;
  /** the current config's Redactor (changes on reload) */
  redactor: () => Redactor;
  endpoint: string;
  /** one failed (or dropped) export */
  onFailure?: () => void;
  logIntervalMs?: number;
}

/** Counting, rate-limited logging and a single export in flight, for any exporter. */
export class ExportGuard {
  private inFlight = 0;
  private failures = 0;
  private delivered = 0;
  private readonly log: RateLimitedLog;
  private readonly headerRedactor: Redactor;

  constructor(private readonly options: ExportGuardOptions) {
    this.log = new RateLimitedLog(options.logger, options.logIntervalMs ?? 60_000);
    this.headerRedactor = new Redactor(otlpHeaderSecrets(process.env));
  }

  get stats(): { failures: number; delivered: number; inFlight: number } {
    return { failures: this.failures, delivered: this.delivered, inFlight: this.inFlight };
  }

  /** Run one export through `send` unless one is still pending; the callback gets the outcome once. */
  run(items: number, send: (done: (result: ExportResult) => void) => void, resultCallback: (result: ExportResult) => void): void {
    if (this.inFlight > 0) {
      const error = new Error('previous export still pending (collector slow or unreachable)');
      this.failed(items, error);
      resultCallback({ code: ExportResultCode.FAILED, error });
      return;
    }
    this.inFlight++;
    let settled = false;
    const done = (result: ExportResult) => {
      if (settled) return;
      settled = true;
      this.inFlight--;
      if (result.code === ExportResultCode.SUCCESS) this.delivered += items;
      else this.failed(items, result.error);
      resultCallback(result);
    };
    try {
      send(done);
    } catch (err) {
      done({ code: ExportResultCode.FAILED, error: err as Error });
    }
  }

  private failed(items: number, error: Error | undefined): void {
    this.failures++;
    this.options.onFailure?.();
    const redactor = this.options.redactor();
    const endpoint = redactor.url(this.options.endpoint);
    const reason = exportFailureReason(error, redactor, this.headerRedactor);
    const what = this.options.signal === 'metrics' ? 'data points' : 'log records';
    this.log.warn(
      { signal: this.options.signal, endpoint, items, failures: this.failures, reason },
      `${this.options.signal} export to ${endpoint} failed: ${reason}; ${what} dropped (logged at most once a minute)`,
    );
  }
}

// ---- metrics -----------------------------------------------------------------

const countDataPoints = (metrics: ResourceMetrics): number => metrics.scopeMetrics.reduce((n, s) => n + s.metrics.reduce((m, metric) => m + metric.dataPoints.length, 0), 0);

/** A PushMetricExporter behind an ExportGuard; temporality and aggregation as the inner exporter chooses. */
export class GuardedMetricExporter implements PushMetricExporter {
  constructor(
    private readonly inner: PushMetricExporter,
    readonly guard: ExportGuard,
    /** applied to each collection before it is sent (e.g. the series of checks that are gone left out) */
    private readonly filter: (metrics: ResourceMetrics) => ResourceMetrics = (metrics) => metrics,
  ) {}

  export(collected: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    const metrics = this.filter(collected);
    this.guard.run(countDataPoints(metrics), (done) => this.inner.export(metrics, done), resultCallback);
  }

  selectAggregationTemporality(instrumentType: InstrumentType): AggregationTemporality {
    return this.inner.selectAggregationTemporality!(instrumentType);
  }

  selectAggregation(instrumentType: InstrumentType): AggregationOption {
    return this.inner.selectAggregation!(instrumentType);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/* eslint-disable @typescript-eslint/no-require-imports */
function createOtlpMetricExporter(protocol: OtlpProtocol, temporality: Temporality): PushMetricExporter {
  const { AggregationTemporalityPreference } = require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http');
  const temporalityPreference = { cumulative: AggregationTemporalityPreference.CUMULATIVE, delta: AggregationTemporalityPreference.DELTA, lowmemory: AggregationTemporalityPreference.LOWMEMORY }[temporality];
  type Module = { OTLPMetricExporter: new (options: { temporalityPreference: number }) => PushMetricExporter };
  const name = { 'http/json': '@opentelemetry/exporter-metrics-otlp-http', 'http/protobuf': '@opentelemetry/exporter-metrics-otlp-proto', grpc: '@opentelemetry/exporter-metrics-otlp-grpc' }[protocol];
  return new (require(name) as Module).OTLPMetricExporter({ temporalityPreference });
}

function createOtlpLogExporter(protocol: OtlpProtocol): LogRecordExporter {
  type Module = { OTLPLogExporter: new () => LogRecordExporter };
  const name = { 'http/json': '@opentelemetry/exporter-logs-otlp-http', 'http/protobuf': '@opentelemetry/exporter-logs-otlp-proto', grpc: '@opentelemetry/exporter-logs-otlp-grpc' }[protocol];
  return new (require(name) as Module).OTLPLogExporter();
}
/* eslint-enable @typescript-eslint/no-require-imports */

export interface GuardContext {
  /** metrics: applied to each collection before it is exported */
  filterMetrics?: (metrics: ResourceMetrics) => ResourceMetrics;
  logger: Logger;
  redactor: () => Redactor;
  onFailure: (signal: ExportSignal) => void;
  logIntervalMs?: number;
}

/** The OTLP metric reader for `metrics.otlp`; `metricProducers` are collected with the SDK's instruments (server-metrics.ts). */
export function createOtlpMetricReader(otlp: NonNullable<MetricsDecision['otlp']>, context: GuardContext, metricProducers: MetricProducer[] = []): { reader: MetricReader; guard: ExportGuard } {
  const { PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics'); // eslint-disable-line @typescript-eslint/no-require-imports
  const guard = new ExportGuard({ signal: 'metrics', logger: context.logger, redactor: context.redactor, endpoint: otlp.endpoint, onFailure: () => context.onFailure('metrics'), logIntervalMs: context.logIntervalMs });
  const exporter = new GuardedMetricExporter(createOtlpMetricExporter(otlp.protocol, otlp.temporality), guard, context.filterMetrics);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: otlp.intervalMs, exportTimeoutMillis: otlp.timeoutMs, metricProducers });
  return { reader, guard };
}

// ---- logs --------------------------------------------------------------------

/** A LogRecordExporter behind an ExportGuard. */
export class GuardedLogExporter implements LogRecordExporter {
  constructor(
    private readonly inner: LogRecordExporter,
    readonly guard: ExportGuard,
  ) {}

  export(logs: ReadableLogRecord[], resultCallback: (result: ExportResult) => void): void {
    this.guard.run(logs.length, (done) => this.inner.export(logs, done), resultCallback);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/** The batch processor for `logs.otlp` (bounded queue: records beyond it are dropped). */
export function createOtlpLogProcessor(otlp: NonNullable<LogsDecision['otlp']>, context: GuardContext): { processor: LogRecordProcessor; guard: ExportGuard } {
  const { BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs') as typeof import('@opentelemetry/sdk-logs'); // eslint-disable-line @typescript-eslint/no-require-imports
  const guard = new ExportGuard({ signal: 'logs', logger: context.logger, redactor: context.redactor, endpoint: otlp.endpoint, onFailure: () => context.onFailure('logs'), logIntervalMs: context.logIntervalMs });
  const exporter = new GuardedLogExporter(createOtlpLogExporter(otlp.protocol), guard);
  return { processor: new BatchLogRecordProcessor({ exporter, ...otlp.batch }), guard };
}
