/**
 * Span export: OTLP (protocol from OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL,
 * default http/protobuf as the OTel spec says) behind a batch processor with
 * a bounded queue, wrapped so that
 *   - every span leaves the process redacted (attributes, events, status
 *     message, name pass through the config's Redactor: a password in a URL
 *     or a secret from `${VAR}` never reaches the collector), and
 *   - a dead, refusing or black-holed collector costs a counter and at most
 *     one log line a minute, never a probe's time: spans go to the queue, the
 *     queue drops when full, and at most one export is in flight.
 *
 * Traces are off (one log line says why) when neither
 * OTEL_EXPORTER_OTLP_ENDPOINT nor OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
 * when OTEL_TRACES_EXPORTER=none, or when telemetry.traces.enabled is false.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Attributes, AttributeValue } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { Redactor } from '../redact';

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

export type TracesDecision =
  | { enabled: true; endpoint: string; protocol: OtlpProtocol; warning?: string }
  | { enabled: false; reason: string };

const nonEmpty = (value: string | undefined): string | undefined => (value !== undefined && value.trim() !== '' ? value.trim() : undefined);

/** Whether to export traces, where to and how; pure (env and config in, decision out). */
export function decideTraces(configEnabled: boolean, env: NodeJS.ProcessEnv = process.env): TracesDecision {
  if (!configEnabled) return { enabled: false, reason: 'telemetry.traces.enabled is false' };
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim());
  if (exporters[0] === 'none') return { enabled: false, reason: 'OTEL_TRACES_EXPORTER=none' };
  const specific = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const generic = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (!specific && !generic) return { enabled: false, reason: 'no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set' };
  const raw = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) ?? nonEmpty(env.OTEL_EXPORTER_OTLP_PROTOCOL) ?? 'http/protobuf';
  const known: OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];
  const protocol = known.includes(raw as OtlpProtocol) ? (raw as OtlpProtocol) : 'http/protobuf';
  const warning = protocol === raw ? undefined : `unsupported OTLP protocol "${raw}"; using http/protobuf`;
  // the same rule the exporter applies: the generic endpoint gets /v1/traces appended
  const endpoint = specific ?? (grpcOrGeneric(protocol, generic!));
  return { enabled: true, endpoint, protocol, ...(warning ? { warning } : {}) };
}

function grpcOrGeneric(protocol: OtlpProtocol, generic: string): string {
  return protocol === 'grpc' ? generic : `${generic.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * The OTLP exporter for a protocol, configured from the OTEL_EXPORTER_OTLP_*
 * environment by the exporter itself (endpoint, headers, timeout,
 * compression, certificates). Each protocol's exporter package is loaded
 * only when that protocol is chosen.
 */
export function createOtlpExporter(protocol: OtlpProtocol): SpanExporter {
  type ExporterModule = { OTLPTraceExporter: new () => SpanExporter };
  if (protocol === 'http/json') return new (require('@opentelemetry/exporter-trace-otlp-http') as ExporterModule).OTLPTraceExporter();
  if (protocol === 'grpc') return new (require('@opentelemetry/exporter-trace-otlp-grpc') as ExporterModule).OTLPTraceExporter();
  return new (require('@opentelemetry/exporter-trace-otlp-proto') as ExporterModule).OTLPTraceExporter();
}

/** At most one line per interval; the next line says how many were held back. */
export class RateLimitedLog {
  private last = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(fields: Record<string, unknown>, message: string): boolean {
    const at = this.now();
    if (at - this.last < this.intervalMs) {
      this.suppressed++;
      return false;
    }
    this.last = at;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
    return true;
  }
}

/**
 * The reason an export failed, as the warning shows it: redacted by each of
 * `redactors` in turn, and trimmed (an OpenSSL error, e.g. a refused client
 * certificate, ends its message with a newline).
 */
export function exportFailureReason(error: Error | undefined, ...redactors: Redactor[]): string {
  return redactors.reduce((text, redactor) => redactor.text(text), String(error?.message ?? error ?? 'unknown error')).trim();
}

function redactValue(redactor: Redactor, value: AttributeValue | undefined): AttributeValue | undefined {
  if (typeof value === 'string') return redactor.text(value);
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item !== 'string') continue;
      const clean = redactor.text(item);
      if (clean !== item) (out ??= [...value])[i] = clean;
    }
    return (out ?? value) as AttributeValue;
  }
  return value;
}

/** `attributes` redacted: the same object when nothing in it needed redacting (the usual case), else a copy. */
export function redactAttributes(redactor: Redactor, attributes: Attributes): Attributes {
  let out: Attributes | undefined;
  for (const key in attributes) {
    const value = attributes[key];
    const clean = redactValue(redactor, value);
    if (clean !== value) (out ??= { ...attributes })[key] = clean;
  }
  return out ?? attributes;
}

/**
 * A finished span with every string that could carry a secret redacted: the span itself when
 * none did (most spans: no allocation per exported span), else a redacted copy.
 */
export function redactSpan(redactor: Redactor, span: ReadableSpan): ReadableSpan {
  const name = redactor.text(span.name);
  const status = span.status.message === undefined ? span.status : redactStatus(redactor, span.status);
  const attributes = redactAttributes(redactor, span.attributes);
  const links = sameOrMapped(span.links, (link) => (link.attributes ? withAttributes(link, redactAttributes(redactor, link.attributes)) : link));
  const events = sameOrMapped(span.events, (event) => (event.attributes ? withAttributes(event, redactAttributes(redactor, event.attributes)) : event));
  if (name === span.name && status === span.status && attributes === span.attributes && links === span.links && events === span.events) return span;
  return {
    name,
    kind: span.kind,
    spanContext: () => span.spanContext(),
    parentSpanContext: span.parentSpanContext,
    startTime: span.startTime,
    endTime: span.endTime,
    status,
    attributes,
    links,
    events,
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

function redactStatus(redactor: Redactor, status: ReadableSpan['status']): ReadableSpan['status'] {
  const message = redactor.text(status.message!);
  return message === status.message ? status : { ...status, message };
}

function withAttributes<T extends { attributes?: Attributes }>(item: T, attributes: Attributes): T {
  return attributes === item.attributes ? item : { ...item, attributes };
}

/** `items` mapped, or `items` itself when the map changed none of them */
function sameOrMapped<T>(items: T[], map: (item: T) => T): T[] {
  let out: T[] | undefined;
  for (let i = 0; i < items.length; i++) {
    const mapped = map(items[i]!);
    if (mapped !== items[i]) (out ??= items.slice())[i] = mapped;
  }
  return out ?? items;
}

/** Header values of OTEL_EXPORTER_OTLP_[TRACES_|METRICS_|LOGS_]HEADERS (API keys for hosted collectors): never logged. */
export function otlpHeaderSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const raw of [env.OTEL_EXPORTER_OTLP_HEADERS, env.OTEL_EXPORTER_OTLP_TRACES_HEADERS, env.OTEL_EXPORTER_OTLP_METRICS_HEADERS, env.OTEL_EXPORTER_OTLP_LOGS_HEADERS]) {
    for (const pair of (raw ?? '').split(',')) {
      const eq = pair.indexOf('=');
      if (eq > 0) {
        const value = pair.slice(eq + 1).trim();
        out.push(value);
        try {
          out.push(decodeURIComponent(value));
        } catch {
          // not percent-encoded
        }
      }
    }
  }
  return out;
}

export interface GuardedExporterOptions {
  logger: Logger;
  /** the current config's Redactor (it changes on reload) */
  redactor: () => Redactor;
  /** one failed export (a batch of spans dropped) */
  onFailure?: () => void;
  /** where spans go, for the log line (credentials removed) */
  endpoint: string;
  logIntervalMs?: number;
}

/**
 * Redacts every span, counts failed exports, logs at most once a minute, and
 * keeps at most one export in flight (the batch processor gives up waiting
 * after its export timeout and would otherwise start the next batch while a
 * black-holed request still holds the previous one).
 */
export class GuardedSpanExporter implements SpanExporter {
  private inFlight = 0;
  private readonly log: RateLimitedLog;
  private readonly logRedactor: Redactor;
  private failures = 0;
  private delivered = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly options: GuardedExporterOptions,
  ) {
    this.log = new RateLimitedLog(options.logger, options.logIntervalMs ?? 60_000);
    this.logRedactor = new Redactor(otlpHeaderSecrets());
  }

  get stats(): { failures: number; delivered: number; inFlight: number } {
    return { failures: this.failures, delivered: this.delivered, inFlight: this.inFlight };
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.inFlight > 0) {
      this.failed(spans.length, new Error('previous export still pending (collector slow or unreachable)'));
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('previous export still pending') });
      return;
    }
    const redactor = this.options.redactor();
    let redacted: ReadableSpan[];
    try {
      redacted = spans.map((span) => redactSpan(redactor, span));
    } catch (err) {
      // never export what could not be redacted
      this.failed(spans.length, err as Error);
      resultCallback({ code: ExportResultCode.FAILED, error: err as Error });
      return;
    }
    this.inFlight++;
    let settled = false;
    try {
      this.inner.export(redacted, (result) => {
        if (settled) return;
        settled = true;
        this.inFlight--;
        if (result.code === ExportResultCode.SUCCESS) this.delivered += spans.length;
        else this.failed(spans.length, result.error);
        resultCallback(result);
      });
    } catch (err) {
      if (!settled) {
        settled = true;
        this.inFlight--;
        this.failed(spans.length, err as Error);
        resultCallback({ code: ExportResultCode.FAILED, error: err as Error });
      }
    }
  }

  private failed(spans: number, error: Error | undefined): void {
    this.failures++;
    this.options.onFailure?.();
    const reason = exportFailureReason(error, this.options.redactor(), this.logRedactor);
    this.log.warn(
      { endpoint: this.options.redactor().url(this.options.endpoint), spans, failures: this.failures, reason },
      `trace export to ${this.options.redactor().url(this.options.endpoint)} failed: ${reason}; spans dropped (logged at most once a minute)`,
    );
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function envInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  return Number.isInteger(value) && value >= 0 ? value : fallback;
}

export interface BatchSettings {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
}

/** OTEL_BSP_* honoured; our defaults bound the queue and the wait for a slow collector. */
export function batchSettings(env: NodeJS.ProcessEnv = process.env): BatchSettings {
  const maxQueueSize = Math.max(1, envInt(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 2048));
  return {
    maxQueueSize,
    maxExportBatchSize: Math.min(maxQueueSize, Math.max(1, envInt(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512))),
    scheduledDelayMillis: envInt(env, 'OTEL_BSP_SCHEDULE_DELAY', 5000),
    exportTimeoutMillis: Math.max(1, envInt(env, 'OTEL_BSP_EXPORT_TIMEOUT', 10_000)),
  };
}

export function createSpanProcessor(exporter: SpanExporter, settings: BatchSettings = batchSettings()): BatchSpanProcessor {
  return new BatchSpanProcessor(exporter, settings);
}
