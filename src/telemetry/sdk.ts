/**
 * OpenTelemetry SDK setup, in two steps.
 *
 * 1. On import (cli.ts imports this module FIRST, before anything that loads
 *    http, ioredis or pg): the instrumentations are constructed, which enables
 *    them and installs their require hooks. Nothing else happens yet, and no
 *    config is needed: the instrumentations' settings are fixed. Their tracer
 *    is the API's proxy tracer, so spans start flowing once a TracerProvider
 *    is registered in step 2.
 * 2. `startTelemetry(config, logger)` (after the config is loaded): the
 *    providers, registered globally: context manager (AsyncLocalStorage),
 *    propagator (W3C trace context + baggage, or OTEL_PROPAGATORS), a
 *    MeterProvider with the resource, the Prometheus reader and the
 *    probe-duration View, a TracerProvider with the OTLP span pipeline when
 *    traces are on; the same instrumentation objects get the MeterProvider
 *    (they are not enabled twice). This is what NodeSDK.start() does for this
 *    configuration, without NodeSDK itself: its index loads every exporter it
 *    could pick from the environment (zipkin, OTLP logs and metrics over
 *    gRPC/HTTP/proto, b3, jaeger, @grpc/grpc-js), ~9 MiB of RSS we never use.
 *
 * OTEL_SDK_DISABLED=true turns all of it off (no hooks, no providers, no /metrics route).
 */
import { hostname } from 'node:os';
import { context, diag, DiagConsoleLogger, metrics, propagation, trace, type TextMapPropagator } from '@opentelemetry/api';
import { CompositePropagator, diagLogLevelFromString, getBooleanFromEnv, getStringFromEnv, getStringListFromEnv, isTracingSuppressed, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { RuntimeNodeInstrumentation } from '@opentelemetry/instrumentation-runtime-node';
import type { Resource } from '@opentelemetry/resources';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Logger } from 'pino';
import type { SidecarConfig } from '../config/types';
import { publicServiceName } from '../config/secrets';
import { Redactor } from '../redact';
import type { SidecarHooks, TelemetryOwner } from './hooks';
import { VERSION } from '../version';
import type { ReloadMetrics } from '../config/reload';
import { notifyMetrics, probeMetrics, reloadMetrics, serverInstruments } from './instruments';
import type { HealthMetrics } from './metrics';
import { readOtelEnv, type SamplerChoice } from './otel-env';
import type { ExportGuard, ExportSignal } from './otlp-signals';
import { K8S_RESOURCE_ENV, SCOPE } from './semconv';
import type { BatchSettings, GuardedSpanExporter, TracesDecision } from './tracing';

// The SDK itself (providers, exporters, resources) is loaded only by startTelemetry:
// `validate`, `schema` and `check` pay for the instrumentations' hooks, not for it.
/* eslint-disable @typescript-eslint/no-require-imports */
const lazy = {
  sdkMetrics: () => require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics'),
  sdkTrace: () => require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base'),
  contextManager: () => require('@opentelemetry/context-async-hooks') as { AsyncLocalStorageContextManager: new () => { enable(): unknown } & Parameters<typeof context.setGlobalContextManager>[0] },
  prometheus: () => require('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus'),
  resources: () => require('@opentelemetry/resources') as typeof import('@opentelemetry/resources'),
  semconv: () => require('@opentelemetry/semantic-conventions') as typeof import('@opentelemetry/semantic-conventions'),
  metrics: () => require('./metrics') as typeof import('./metrics'),
  sloMetrics: () => require('./slo-metrics') as typeof import('./slo-metrics'),
  serverMetrics: () => require('./server-metrics') as typeof import('./server-metrics'),
  tracing: () => require('./tracing') as typeof import('./tracing'),
  otlpSignals: () => require('./otlp-signals') as typeof import('./otlp-signals'),
  sdkLogs: () => require('@opentelemetry/sdk-logs') as typeof import('@opentelemetry/sdk-logs'),
  apiLogs: () => require('@opentelemetry/api-logs') as typeof import('@opentelemetry/api-logs'),
  pino: () => require('@opentelemetry/instrumentation-pino') as typeof import('@opentelemetry/instrumentation-pino'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

const disabled = getBooleanFromEnv('OTEL_SDK_DISABLED');

/**
 * The instrumentations we want, and only those (no fs/dns/net noise):
 * - http: outgoing requests of HTTP probes only. Incoming requests are not
 *   instrumented at all (our own endpoints make no spans and no http.server
 *   metrics); an outgoing request needs a parent span (a probe attempt) and
 *   requests made with tracing suppressed (the OTLP export itself) are ignored.
 * - ioredis, pg: only inside a probe (requireParentSpan); pg without query
 *   parameters (enhancedDatabaseReporting off).
 * - runtime-node: event loop, GC and heap metrics.
 * - pino, only when OTEL_LOGS_EXPORTER asks for otlp: its log sending adds a
 *   stream beside stdout that hands every (already redacted) record to the
 *   OTel Logs API; its log correlation is off (log.ts writes trace_id/span_id).
 */
function createInstrumentations(env: NodeJS.ProcessEnv): Instrumentation[] {
  const logsOverOtlp = readOtelEnv(env).logs.otlp !== undefined;
  return [
    ...(logsOverOtlp ? [new (lazy.pino().PinoInstrumentation)({ disableLogCorrelation: true })] : []),
    new HttpInstrumentation({
      disableIncomingRequestInstrumentation: true,
      ignoreIncomingRequestHook: () => true,
      requireParentforOutgoingSpans: true,
      ignoreOutgoingRequestHook: () => isTracingSuppressed(context.active()),
    }),
    new IORedisInstrumentation({ requireParentSpan: true }),
    new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false }),
    new RuntimeNodeInstrumentation(),
  ];
}

/** Enabled on import: their require hooks must be in place before http/ioredis/pg are loaded. */
export const instrumentations: Instrumentation[] = disabled ? [] : createInstrumentations(process.env);

/**
 * OTEL_PROPAGATORS as NodeSDK reads it: unset → W3C trace context + baggage;
 * `none` → no propagator; otherwise the named ones (b3, b3multi, jaeger are
 * loaded only when named). Unknown names are skipped with a diag warning.
 */
function propagatorFromEnv(): TextMapPropagator | undefined {
  const names = getStringListFromEnv('OTEL_PROPAGATORS');
  if (names === undefined) return new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });
  if (names.includes('none')) return undefined;
  type B3 = { B3Propagator: new (c?: { injectEncoding: number }) => TextMapPropagator; B3InjectEncoding: { MULTI_HEADER: number } };
  const factories: Record<string, () => TextMapPropagator> = {
    tracecontext: () => new W3CTraceContextPropagator(),
    baggage: () => new W3CBaggagePropagator(),
    b3: () => new (require('@opentelemetry/propagator-b3') as B3).B3Propagator(),
    b3multi: () => {
      const b3 = require('@opentelemetry/propagator-b3') as B3;
      return new b3.B3Propagator({ injectEncoding: b3.B3InjectEncoding.MULTI_HEADER });
    },
    jaeger: () => new (require('@opentelemetry/propagator-jaeger') as { JaegerPropagator: new () => TextMapPropagator }).JaegerPropagator(),
  };
  const propagators = [...new Set(names)].flatMap((name) => {
    const make = factories[name];
    if (!make) diag.warn(`Propagator "${name}" requested through environment variable is unavailable.`);
    return make ? [make()] : [];
  });
  return new CompositePropagator({ propagators });
}

/**
 * service.name (config; OTEL_SERVICE_NAME wins), service.version, k8s.* from the
 * downward API env; processAttributes() and OTEL_RESOURCE_ATTRIBUTES are merged
 * over this, so the environment has the last word.
 */
export function baseResource(serviceName: string, env: NodeJS.ProcessEnv = process.env): Resource {
  const { defaultResource, resourceFromAttributes } = lazy.resources();
  const { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } = lazy.semconv();
  const attributes: Record<string, string> = { [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: VERSION };
  for (const [variable, attribute] of Object.entries(K8S_RESOURCE_ENV)) {
    const value = env[variable]?.trim();
    if (value) attributes[attribute] = value;
  }
  return defaultResource().merge(resourceFromAttributes(attributes));
}

/** The sampler OTEL_TRACES_SAMPLER(_ARG) name (otel-env.ts has checked them). */
export function createSampler(choice: SamplerChoice): import('@opentelemetry/sdk-trace-base').Sampler {
  const { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler } = lazy.sdkTrace();
  switch (choice.name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(choice.ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(choice.ratio) });
  }
}

/**
 * The process and host attributes on every metric (/metrics `target_info`,
 * often anonymous) and span — chosen on purpose instead of the SDK's process
 * and host detectors, which add the command line (`process.command_args`:
 * the config path and any argument), `process.command`, the executable path,
 * the process owner and `host.id` (the machine id). Anything else an
 * operator wants goes in OTEL_RESOURCE_ATTRIBUTES. docs/security.md lists
 * what /metrics reveals.
 */
export function processAttributes(): Record<string, string | number> {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm32', ia32: 'x86', ppc64: 'ppc64', s390x: 's390x' };
  return {
    'host.name': hostname(),
    'host.arch': arch[process.arch] ?? process.arch,
    'process.pid': process.pid,
    'process.executable.name': 'node',
    'process.runtime.name': 'nodejs',
    'process.runtime.version': process.versions.node,
    'process.runtime.description': 'Node.js',
  };
}

export interface Telemetry {
  /** pass to `new Sidecar(config, logger, telemetry.hooks)` (wiring) */
  readonly hooks: SidecarHooks;
  readonly metrics: HealthMetrics | undefined;
  readonly traces: TracesDecision;
  readonly exporter: GuardedSpanExporter | undefined;
  /** the config reload counters (telemetry/instruments.ts), made when called; undefined when no metrics are exported */
  reloadMetrics(): ReloadMetrics | undefined;
  /** the OTLP metrics and logs exporters' guards (failures, deliveries), when those signals are pushed */
  readonly guards: Partial<Record<ExportSignal, ExportGuard>>;
  /** flush pending spans and stop; never takes longer than timeoutMs */
  shutdown(timeoutMs?: number): Promise<{ flushed: boolean }>;
}

export interface TelemetryOptions {
  /** the current Redactor (changes on reload); spans and export logs pass through it */
  redactor?: () => Redactor;
  env?: NodeJS.ProcessEnv;
  batch?: Partial<BatchSettings>;
  /** log line interval for export trouble; default 60 s */
  exportLogIntervalMs?: number;
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 5_000;

// The one module-level mutable binding allowed in src/ (test/structure/module-state.test.ts):
// the SDK bootstrap registers the OTel API's process-global providers, so whether telemetry
// is started is a fact about the process, not about an instance; shutdown() clears it.
let active: Telemetry | undefined;

/** Configure and register the providers. Once per process (until shutdown). */
export function startTelemetry(config: SidecarConfig, logger: Logger, options: TelemetryOptions = {}): Telemetry {
  if (active) throw new Error('telemetry already started');
  const env = options.env ?? process.env;
  if (disabled) {
    logger.info('OTEL_SDK_DISABLED is true: no metrics endpoint, no traces');
    const off: Telemetry = { hooks: {}, metrics: undefined, reloadMetrics: () => undefined, traces: { enabled: false, reason: 'OTEL_SDK_DISABLED' }, exporter: undefined, guards: {}, shutdown: async () => ({ flushed: true }) };
    return off;
  }
  const { PrometheusExporter } = lazy.prometheus();
  const { HealthMetrics, metricViews, PrometheusRenderer } = lazy.metrics();
  const { batchSettings, createOtlpExporter, createSpanProcessor, decideTraces, GuardedSpanExporter } = lazy.tracing();
  const { envDetector, detectResources, resourceFromAttributes } = lazy.resources();
  // the sidecar's Redactor once it exists (it is replaced on every reload)
  let sidecar: TelemetryOwner | undefined;
  const fallback = new Redactor();
  const redactor = options.redactor ?? (() => sidecar?.redactor ?? fallback);

  // OTEL_METRICS_EXPORTER, OTEL_LOGS_EXPORTER, sampler, limits: unknown values are one line each, then the default
  const otelEnv = readOtelEnv(env);
  for (const warning of otelEnv.warnings) logger.warn({ setting: warning.slice(0, warning.indexOf('=')) }, warning);
  const prometheusEnabled = config.telemetry.prometheus.enabled && otelEnv.metrics.prometheus;
  // the sidecar's own http.server.request.duration: pre-bound accumulators collected with the SDK's metrics
  // (server-metrics.ts) by every reader, the Prometheus one and the OTLP one
  const serverMetrics = prometheusEnabled || otelEnv.metrics.otlp ? new (lazy.serverMetrics().HttpServerMetrics)() : undefined;
  const prometheus = prometheusEnabled ? new PrometheusExporter({ preventServerStart: true, metricProducers: serverMetrics ? [serverMetrics] : [] }) : undefined;

  const traces = decideTraces(config.telemetry.traces.enabled, env);
  let exporter: GuardedSpanExporter | undefined;
  const spanProcessors: SpanProcessor[] = [];
  let healthMetrics: HealthMetrics | undefined;
  if (traces.enabled) {
    if (traces.warning) logger.warn(traces.warning);
    exporter = new GuardedSpanExporter(createOtlpExporter(traces.protocol), {
      logger,
      redactor,
      endpoint: traces.endpoint,
      onFailure: () => healthMetrics?.exportFailed(),
      logIntervalMs: options.exportLogIntervalMs,
    });
    const settings = { ...batchSettings(env), ...options.batch };
    spanProcessors.push(createSpanProcessor(exporter, settings));
    logger.info({ endpoint: redactor().url(traces.endpoint), protocol: traces.protocol, ...settings }, `traces: OTLP ${traces.protocol} to ${redactor().url(traces.endpoint)}`);
  } else {
    logger.info({ reason: traces.reason }, `traces disabled: ${traces.reason}`);
  }

  // a serviceName from a secret source (${file:…}) is never exported: the default instead (config/secrets.ts)
  const shownName = publicServiceName(config);
  if (shownName !== config.telemetry.serviceName && !env.OTEL_SERVICE_NAME?.trim()) {
    logger.warn({ serviceName: shownName }, `telemetry.serviceName comes from a secret source (\${file:…}): shown and exported as "${shownName}"; write it plainly or set OTEL_SERVICE_NAME`);
  }
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || shownName;
  // What NodeSDK.start() did for this configuration (see the header). No OTel log
  // pipeline: pino writes our logs.
  const logLevel = getStringFromEnv('OTEL_LOG_LEVEL');
  if (logLevel != null) diag.setLogger(new DiagConsoleLogger(), { logLevel: diagLogLevelFromString(logLevel) });
  // registerInstrumentations(): the current global (proxy) providers; after a shutdown the API has new proxies
  for (const instrumentation of instrumentations) {
    instrumentation.setTracerProvider(trace.getTracerProvider());
    instrumentation.setMeterProvider(metrics.getMeterProvider());
    if (!instrumentation.getConfig().enabled) instrumentation.enable();
  }
  const contextManager = new (lazy.contextManager().AsyncLocalStorageContextManager)();
  contextManager.enable();
  context.setGlobalContextManager(contextManager);
  const propagator = propagatorFromEnv();
  if (propagator) propagation.setGlobalPropagator(propagator);
  // chosen process/host attributes (processAttributes), then OTEL_RESOURCE_ATTRIBUTES over ours: the environment has the last word
  const resource = baseResource(serviceName, env).merge(resourceFromAttributes(processAttributes())).merge(detectResources({ detectors: [envDetector] }));
  const providers: { shutdown(): Promise<void> }[] = [];
  const guards: Partial<Record<ExportSignal, ExportGuard>> = {};
  const guardContext = { logger, redactor, onFailure: (signal: ExportSignal) => healthMetrics?.exportFailed(signal), logIntervalMs: options.exportLogIntervalMs };
  const readers: import('@opentelemetry/sdk-metrics').MetricReader[] = prometheus ? [prometheus] : [];
  const { metrics: metricsDecision, logs: logsDecision } = otelEnv;
  if (metricsDecision.otlp) {
    // the series of checks that are gone (a reload, a deleted monitor) are not exported, as on /metrics
    const filterMetrics = (collected: import('@opentelemetry/sdk-metrics').ResourceMetrics) => lazy.metrics().withoutGoneChecks(collected, (name) => sidecar?.store.get(name) !== undefined);
    const { reader, guard } = lazy.otlpSignals().createOtlpMetricReader(metricsDecision.otlp, { ...guardContext, filterMetrics }, serverMetrics ? [serverMetrics] : []);
    readers.push(reader);
    guards.metrics = guard;
    const { protocol, endpoint: to, intervalMs, timeoutMs, temporality } = metricsDecision.otlp;
    logger.info({ endpoint: redactor().url(to), protocol, intervalMs, timeoutMs, temporality }, `metrics: OTLP ${protocol} to ${redactor().url(to)} every ${intervalMs} ms (${temporality})`);
  }
  if (!prometheus) logger.info(`metrics: no Prometheus endpoint (${config.telemetry.prometheus.enabled ? 'OTEL_METRICS_EXPORTER does not name prometheus' : 'telemetry.prometheus.enabled is false'})`);
  if (logsDecision.otlp) {
    const { processor, guard } = lazy.otlpSignals().createOtlpLogProcessor(logsDecision.otlp, guardContext);
    guards.logs = guard;
    const limits = logsDecision.attributeValueLengthLimit === undefined ? {} : { attributeValueLengthLimit: logsDecision.attributeValueLengthLimit };
    const loggerProvider = new (lazy.sdkLogs().LoggerProvider)({ resource, processors: [processor], logRecordLimits: limits });
    lazy.apiLogs().logs.setGlobalLoggerProvider(loggerProvider);
    providers.push(loggerProvider);
    const { protocol, endpoint: to } = logsDecision.otlp;
    logger.info({ endpoint: redactor().url(to), protocol }, `logs: OTLP ${protocol} to ${redactor().url(to)} (and stdout)`);
  }
  if (readers.length > 0) {
    const meterProvider = new (lazy.sdkMetrics().MeterProvider)({ resource, views: metricViews(), readers });
    metrics.setGlobalMeterProvider(meterProvider);
    for (const instrumentation of instrumentations) instrumentation.setMeterProvider(metrics.getMeterProvider());
    providers.push(meterProvider);
  }
  if (spanProcessors.length > 0) {
    // the sampler from OTEL_TRACES_SAMPLER(_ARG), checked in otel-env.ts; BasicTracerProvider reads the span limits from the environment
    const tracerProvider = new (lazy.sdkTrace().BasicTracerProvider)({ resource, spanProcessors, sampler: createSampler(otelEnv.sampler) });
    trace.setGlobalTracerProvider(tracerProvider);
    providers.push(tracerProvider);
  }
  // every provider flushes to the end: one signal's failed flush (its collector refuses) must not cut the others short
  const sdk = {
    shutdown: () =>
      Promise.allSettled(providers.map((p) => p.shutdown())).then((results) => {
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      }),
  };
  // after start: the global MeterProvider exists, so the instruments are real. This is the one
  // place a Meter is taken (test/structure/instruments.test.ts): every instrument is made from it
  // by instruments.ts, and the modules that record are handed recorders (hooks, reloadMetrics)
  const meter = readers.length > 0 ? metrics.getMeter(SCOPE) : undefined;
  healthMetrics = meter ? new HealthMetrics(meter) : undefined;
  if (meter) serverMetrics?.useCounters(serverInstruments(meter));
  const probes = meter ? probeMetrics(meter) : undefined;
  const notify = meter ? notifyMetrics(meter) : undefined;
  if (metricsDecision.otlp) healthMetrics?.countExportFailures('metrics');
  if (logsDecision.otlp) healthMetrics?.countExportFailures('logs');
  const metricsRef = healthMetrics;

  let stopObserving: (() => void) | undefined;
  let stopSlo: (() => void) | undefined;
  const hooks: SidecarHooks = {
    observer: metricsRef,
    requestMetrics: serverMetrics,
    ...(probes ? { probeMetrics: probes } : {}),
    ...(notify ? { notifyMetrics: notify } : {}),
    attach: (owner: TelemetryOwner) => {
      sidecar = owner;
      if (metricsRef && meter) {
        stopObserving = metricsRef.observe(owner);
        // runs by outcome and the SLO gauges (docs/uptime.md)
        stopSlo = new (lazy.sloMetrics().SloMetrics)(meter).observe({
          store: owner.store,
          history: owner.uptime.history,
          sloChecks: () => owner.config.checks.flatMap((c) => (c.slo ? [{ name: c.name, slo: c.slo }] : [])),
        });
      }
    },
    // served by server/metrics-route.ts; telemetry.prometheus.requireKey: scrapes need a valid key
    ...(metricsRef && prometheus
      ? { metricsEndpoint: { renderer: new PrometheusRenderer(prometheus, logger, () => metricsRef.exemplars, (name) => sidecar?.store.get(name) !== undefined), path: config.telemetry.prometheus.path, requireKey: config.telemetry.prometheus.requireKey, logger } }
      : {}),
  };

  let stopping: Promise<{ flushed: boolean }> | undefined;
  const telemetry: Telemetry = {
    hooks,
    metrics: healthMetrics,
    reloadMetrics: () => (meter ? reloadMetrics(meter) : undefined),
    traces,
    exporter,
    guards,
    shutdown(timeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS) {
      stopping ??= (async () => {
        stopObserving?.();
        stopSlo?.();
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          sdk.shutdown().then(
            () => 'done' as const,
            (err: unknown) => {
              logger.warn({ err }, 'telemetry shutdown reported an error; pending spans may be lost');
              return 'error' as const;
            },
          ),
          new Promise<'timeout'>((resolve) => {
            timer = setTimeout(() => resolve('timeout'), timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        if (outcome === 'timeout') logger.warn({ timeoutMs }, 'telemetry shutdown did not finish in time; pending spans dropped');
        const flushed = outcome === 'done';
        // allow a later startTelemetry in the same process (tests)
        metrics.disable();
        if (logsDecision.otlp) lazy.apiLogs().logs.disable();
        trace.disable();
        propagation.disable();
        context.disable();
        active = undefined;
        return { flushed };
      })();
      return stopping;
    },
  };
  active = telemetry;
  return telemetry;
}
