/**
 * The standard OTEL_* configuration the sidecar honours beyond traces
 * (tracing.ts decides those): which metrics and logs exporters run, their
 * OTLP protocol, endpoint, interval, timeout and temporality, the sampler and
 * the attribute length limit. Pure: environment in, decisions and warnings
 * out. An unknown value of a known variable is a warning (one log line at
 * start-up, written by sdk.ts) and the documented default, never a crash.
 *
 * Endpoint, headers, timeout, compression and TLS files
 * (OTEL_EXPORTER_OTLP_[SIGNAL_]{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION,
 * CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY}) are read by the official OTLP
 * exporters themselves; the endpoint is worked out here too, for the log line.
 * The exporters tell only the OTel diagnostic logger (silent unless
 * OTEL_LOG_LEVEL is set) about an endpoint that is no URL, a timeout that is
 * no number or a TLS file they cannot read, so those are checked here too;
 * so are OTEL_TRACES_EXPORTER and OTEL_PROPAGATORS (sdk.ts and tracing.ts
 * apply them). The only I/O: whether a named TLS file can be read.
 */
import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import type { OtlpProtocol } from './tracing';

export type Temporality = 'cumulative' | 'delta' | 'lowmemory';

export interface OtlpTarget {
  protocol: OtlpProtocol;
  /** where the records go (for the log line; the exporter applies the same rule) */
  endpoint: string;
}

export interface MetricsDecision {
  prometheus: boolean;
  otlp?: OtlpTarget & { intervalMs: number; timeoutMs: number; temporality: Temporality };
}

export interface LogsDecision {
  otlp?: OtlpTarget & { batch: LogBatchSettings };
  attributeValueLengthLimit?: number;
}

export interface LogBatchSettings {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
}

export type SamplerChoice =
  | { name: 'always_on' | 'always_off' | 'parentbased_always_on' | 'parentbased_always_off' }
  | { name: 'traceidratio' | 'parentbased_traceidratio'; ratio: number };

export interface OtelEnv {
  metrics: MetricsDecision;
  logs: LogsDecision;
  sampler: SamplerChoice;
  /** one line each: an unknown value and what is used instead */
  warnings: string[];
}

const PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];
const TEMPORALITIES: readonly Temporality[] = ['cumulative', 'delta', 'lowmemory'];
const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;

const value = (env: NodeJS.ProcessEnv, name: string): string | undefined => {
  const raw = env[name]?.trim();
  return raw ? raw : undefined;
};

/** OTEL_{TRACES,METRICS,LOGS}_EXPORTER (or OTEL_PROPAGATORS) as a list; unknown names warned about and left out */
function exporterList(env: NodeJS.ProcessEnv, name: string, known: readonly string[], fallback: string[], warnings: string[], what = 'exporter'): string[] {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  const names = [...new Set(raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))];
  const unknown = names.filter((n) => !known.includes(n));
  const good = names.filter((n) => known.includes(n));
  if (unknown.length > 0) {
    warnings.push(`${name}="${raw}": unknown ${what} ${unknown.map((n) => `"${n}"`).join(', ')} ignored (known: ${known.join(', ')})${good.length ? '' : `; using ${fallback.join(',') || 'none'}`}`);
    if (good.length === 0) return fallback;
  }
  return good.includes('none') ? [] : good;
}

function protocol(env: NodeJS.ProcessEnv, signal: 'METRICS' | 'LOGS', warnings: string[]): OtlpProtocol {
  const specificName = `OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`;
  const name = value(env, specificName) !== undefined ? specificName : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const raw = value(env, name);
  if (raw === undefined) return 'http/protobuf';
  if (PROTOCOLS.includes(raw as OtlpProtocol)) return raw as OtlpProtocol;
  warnings.push(`${name}="${raw}": unknown OTLP protocol (known: ${PROTOCOLS.join(', ')}); using http/protobuf`);
  return 'http/protobuf';
}

/** The exporters' rule: the signal's endpoint as given, or the generic one plus /v1/{signal} (gRPC: as given); the spec default otherwise. */
function endpoint(env: NodeJS.ProcessEnv, signal: 'METRICS' | 'LOGS', proto: OtlpProtocol): string {
  const specific = value(env, `OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`);
  if (specific) return specific;
  const generic = value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') ?? (proto === 'grpc' ? 'http://localhost:4317' : 'http://localhost:4318');
  return proto === 'grpc' ? generic : `${generic.replace(/\/+$/, '')}/v1/${signal.toLowerCase()}`;
}

function millis(env: NodeJS.ProcessEnv, name: string, fallback: number, warnings: string[], min = 1): number {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (Number.isInteger(n) && n >= min) return n;
  warnings.push(`${name}="${raw}": not a whole number ≥ ${min}; using ${fallback}`);
  return fallback;
}

export function readOtelEnv(env: NodeJS.ProcessEnv = process.env, readable: (path: string) => boolean = canRead): OtelEnv {
  const warnings: string[] = [];

  // metrics: prometheus (default, as before), otlp, none, or a list
  const metricExporters = exporterList(env, 'OTEL_METRICS_EXPORTER', ['prometheus', 'otlp', 'none'], ['prometheus'], warnings);
  const metrics: MetricsDecision = { prometheus: metricExporters.includes('prometheus') };
  if (metricExporters.includes('otlp')) {
    const proto = protocol(env, 'METRICS', warnings);
    const intervalMs = millis(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000, warnings);
    let timeoutMs = millis(env, 'OTEL_METRIC_EXPORT_TIMEOUT', 30_000, warnings);
    // the SDK refuses a timeout above the interval: an export never outlives its period
    if (timeoutMs > intervalMs) timeoutMs = intervalMs;
    const rawTemporality = value(env, 'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE')?.toLowerCase();
    let temporality: Temporality = 'cumulative';
    if (rawTemporality !== undefined) {
      if (TEMPORALITIES.includes(rawTemporality as Temporality)) temporality = rawTemporality as Temporality;
      else warnings.push(`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="${rawTemporality}": unknown (known: ${TEMPORALITIES.join(', ')}); using cumulative`);
    }
    metrics.otlp = { protocol: proto, endpoint: endpoint(env, 'METRICS', proto), intervalMs, timeoutMs, temporality };
  }

  // logs: stdout JSON always; OTLP when asked (OTEL_LOGS_EXPORTER=otlp)
  const logExporters = exporterList(env, 'OTEL_LOGS_EXPORTER', ['otlp', 'none'], [], warnings);
  const logs: LogsDecision = {};
  const lengthLimit = value(env, 'OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT') !== undefined ? 'OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT' : 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT';
  if (value(env, lengthLimit) !== undefined) {
    const limit = millis(env, lengthLimit, -1, warnings, 0);
    if (limit >= 0) logs.attributeValueLengthLimit = limit;
  }
  if (value(env, 'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT') !== undefined) millis(env, 'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT', 0, warnings, 0);
  if (logExporters.includes('otlp')) {
    const proto = protocol(env, 'LOGS', warnings);
    const maxQueueSize = millis(env, 'OTEL_BLRP_MAX_QUEUE_SIZE', 2048, warnings);
    const batch: LogBatchSettings = {
      maxQueueSize,
      maxExportBatchSize: Math.min(maxQueueSize, millis(env, 'OTEL_BLRP_MAX_EXPORT_BATCH_SIZE', 512, warnings)),
      scheduledDelayMillis: millis(env, 'OTEL_BLRP_SCHEDULE_DELAY', 1000, warnings, 0),
      exportTimeoutMillis: millis(env, 'OTEL_BLRP_EXPORT_TIMEOUT', 30_000, warnings),
    };
    logs.otlp = { protocol: proto, endpoint: endpoint(env, 'LOGS', proto), batch };
  }

  // sampler: the SDK's default (parentbased_always_on) unless told otherwise
  const rawSampler = value(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase();
  let sampler: SamplerChoice = { name: 'parentbased_always_on' };
  if (rawSampler !== undefined) {
    if (!(SAMPLERS as readonly string[]).includes(rawSampler)) {
      warnings.push(`OTEL_TRACES_SAMPLER="${rawSampler}": unknown sampler (known: ${SAMPLERS.join(', ')}); using parentbased_always_on`);
    } else if (rawSampler === 'traceidratio' || rawSampler === 'parentbased_traceidratio') {
      const rawArg = value(env, 'OTEL_TRACES_SAMPLER_ARG');
      const ratio = rawArg === undefined ? 1 : Number(rawArg);
      if (rawArg !== undefined && !(Number.isFinite(ratio) && ratio >= 0 && ratio <= 1)) {
        warnings.push(`OTEL_TRACES_SAMPLER_ARG="${rawArg}": not a ratio between 0 and 1; using 1`);
        sampler = { name: rawSampler, ratio: 1 };
      } else sampler = { name: rawSampler, ratio };
    } else sampler = { name: rawSampler as 'always_on' };
  }

  const disabled = value(env, 'OTEL_SDK_DISABLED')?.toLowerCase();
  if (disabled !== undefined && disabled !== 'true' && disabled !== 'false') warnings.push(`OTEL_SDK_DISABLED="${disabled}": expected true or false; using false`);

  exporterList(env, 'OTEL_TRACES_EXPORTER', ['otlp', 'none'], ['otlp'], warnings);
  exporterList(env, 'OTEL_PROPAGATORS', PROPAGATORS, [], warnings, 'propagator');
  for (const name of exporterVariables('COMPRESSION')) {
    const raw = value(env, name);
    if (raw !== undefined && raw !== 'gzip' && raw !== 'none') warnings.push(`${name}="${raw}": expected gzip or none; using none`);
  }
  for (const name of exporterVariables('TIMEOUT')) millis(env, name, 10_000, warnings);
  for (const name of exporterVariables('ENDPOINT')) {
    const raw = value(env, name);
    if (raw !== undefined && !URL.canParse(raw)) warnings.push(`${name}="${raw}": not a URL; the exporter uses its default (http://localhost:4318, gRPC localhost:4317)`);
  }
  warnings.push(...tlsWarnings(env, readable));
  return { metrics, logs, sampler, warnings };
}

const PROPAGATORS = ['tracecontext', 'baggage', 'b3', 'b3multi', 'jaeger', 'none'];
const SIGNALS = ['TRACES', 'METRICS', 'LOGS'] as const;

/** OTEL_EXPORTER_OTLP_{setting} and its per-signal variants */
const exporterVariables = (setting: string): string[] => [`OTEL_EXPORTER_OTLP_${setting}`, ...SIGNALS.map((signal) => `OTEL_EXPORTER_OTLP_${signal}_${setting}`)];

function canRead(path: string): boolean {
  try {
    // the exporters resolve the path against the working directory, as here
    accessSync(resolve(process.cwd(), path), constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** TLS files that cannot be read, and a client certificate without its key (or the reverse) */
function tlsWarnings(env: NodeJS.ProcessEnv, readable: (path: string) => boolean): string[] {
  const warnings: string[] = [];
  for (const setting of ['CERTIFICATE', 'CLIENT_CERTIFICATE', 'CLIENT_KEY']) {
    for (const name of exporterVariables(setting)) {
      const path = value(env, name);
      if (path === undefined || readable(path)) continue;
      warnings.push(`${name}="${path}": file cannot be read; ${setting === 'CERTIFICATE' ? 'only the system CAs are trusted' : 'no client certificate is presented'}`);
    }
  }
  // per signal, the specific variable or else the generic one
  const either = (signal: string, setting: string) => value(env, `OTEL_EXPORTER_OTLP_${signal}_${setting}`) ?? value(env, `OTEL_EXPORTER_OTLP_${setting}`);
  const lopsided = SIGNALS.filter((signal) => (either(signal, 'CLIENT_CERTIFICATE') === undefined) !== (either(signal, 'CLIENT_KEY') === undefined));
  if (lopsided.length > 0) {
    const missing = either(lopsided[0]!, 'CLIENT_KEY') === undefined ? 'CLIENT_KEY' : 'CLIENT_CERTIFICATE';
    warnings.push(`OTEL_EXPORTER_OTLP_${missing === 'CLIENT_KEY' ? 'CLIENT_CERTIFICATE' : 'CLIENT_KEY'}="…": mutual TLS needs OTEL_EXPORTER_OTLP_${missing} too (${lopsided.map((s) => s.toLowerCase()).join(', ')}); no client certificate is presented`);
  }
  return warnings;
}
