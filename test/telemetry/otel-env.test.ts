/**
 * readOtelEnv (src/telemetry/otel-env.ts): the standard OTEL_* variables
 * beyond traces, as decisions, and every unknown value of a known variable
 * as one warning naming the variable, the value and what is used instead.
 * Pure: the environment and the "can this file be read" question are given.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readOtelEnv } from '../../src/telemetry/otel-env';

const none = () => false;
const all = () => true;

describe('OTEL_* decisions', () => {
  it('nothing set: Prometheus only, no OTLP metrics or logs, parentbased_always_on, no warnings', () => {
    assert.deepEqual(readOtelEnv({}, none), { metrics: { prometheus: true }, logs: {}, sampler: { name: 'parentbased_always_on' }, warnings: [] });
  });

  it('the Collector-only setup: metrics and logs over OTLP to the generic endpoint, signal paths appended', () => {
    const env = readOtelEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4318/', OTEL_METRICS_EXPORTER: 'otlp', OTEL_LOGS_EXPORTER: 'otlp' }, all);
    assert.equal(env.metrics.prometheus, false);
    assert.deepEqual(env.metrics.otlp, { protocol: 'http/protobuf', endpoint: 'https://collector:4318/v1/metrics', intervalMs: 60_000, timeoutMs: 30_000, temporality: 'cumulative' });
    assert.deepEqual(env.logs.otlp, { protocol: 'http/protobuf', endpoint: 'https://collector:4318/v1/logs', batch: { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMillis: 1000, exportTimeoutMillis: 30_000 } });
    assert.deepEqual(env.warnings, []);
  });

  it('per-signal protocol and endpoint win over the generic ones; gRPC takes the endpoint as given', () => {
    const env = readOtelEnv(
      {
        OTEL_METRICS_EXPORTER: 'prometheus, otlp',
        OTEL_LOGS_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://metrics:4318/custom',
      },
      all,
    );
    assert.equal(env.metrics.prometheus, true);
    assert.deepEqual([env.metrics.otlp?.protocol, env.metrics.otlp?.endpoint], ['http/json', 'http://metrics:4318/custom']);
    assert.deepEqual([env.logs.otlp?.protocol, env.logs.otlp?.endpoint], ['grpc', 'http://collector:4317']);
  });

  it('interval, timeout (never above the interval), temporality, sampler ratio, length limit', () => {
    const env = readOtelEnv({
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_METRIC_EXPORT_INTERVAL: '5000',
      OTEL_METRIC_EXPORT_TIMEOUT: '9000',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'Delta',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '120',
    }, all);
    assert.deepEqual([env.metrics.otlp?.intervalMs, env.metrics.otlp?.timeoutMs, env.metrics.otlp?.temporality], [5000, 5000, 'delta']);
    assert.deepEqual(env.sampler, { name: 'parentbased_traceidratio', ratio: 0.25 });
    assert.equal(env.logs.attributeValueLengthLimit, 120);
    assert.deepEqual(env.warnings, []);
  });

  it('none turns a signal off; every known value is accepted without a warning', () => {
    const env = readOtelEnv({
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_PROPAGATORS: 'tracecontext,baggage,b3,b3multi,jaeger',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
      OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2000',
      OTEL_EXPORTER_OTLP_CERTIFICATE: '/etc/otel/ca.pem',
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: '/etc/otel/tls.crt',
      OTEL_EXPORTER_OTLP_CLIENT_KEY: '/etc/otel/tls.key',
      OTEL_SDK_DISABLED: 'false',
    }, all);
    assert.deepEqual([env.metrics, env.logs, env.warnings], [{ prometheus: false }, {}, []]);
  });
});

describe('an unknown value of a known variable: one warning each, the default used', () => {
  it('exporters, protocol, temporality, sampler, numbers, compression, OTEL_SDK_DISABLED', () => {
    const env = readOtelEnv({
      OTEL_METRICS_EXPORTER: 'statsd',
      OTEL_LOGS_EXPORTER: 'otlp,syslog',
      OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/xml',
      OTEL_BLRP_SCHEDULE_DELAY: 'soon',
      OTEL_TRACES_SAMPLER: 'traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '2',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd',
      OTEL_SDK_DISABLED: 'yes',
    }, all);
    assert.deepEqual(env.metrics, { prometheus: true });
    assert.equal(env.logs.otlp?.protocol, 'http/protobuf');
    assert.deepEqual(env.sampler, { name: 'traceidratio', ratio: 1 });
    assert.deepEqual(env.warnings, [
      'OTEL_METRICS_EXPORTER="statsd": unknown exporter "statsd" ignored (known: prometheus, otlp, none); using prometheus',
      'OTEL_LOGS_EXPORTER="otlp,syslog": unknown exporter "syslog" ignored (known: otlp, none)',
      'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL="http/xml": unknown OTLP protocol (known: http/protobuf, http/json, grpc); using http/protobuf',
      'OTEL_BLRP_SCHEDULE_DELAY="soon": not a whole number ≥ 0; using 1000',
      'OTEL_TRACES_SAMPLER_ARG="2": not a ratio between 0 and 1; using 1',
      'OTEL_SDK_DISABLED="yes": expected true or false; using false',
      'OTEL_EXPORTER_OTLP_COMPRESSION="zstd": expected gzip or none; using none',
    ]);
  });

  it('the variables the exporters and the SDK read themselves: traces exporter, propagators, timeout, endpoint', () => {
    const env = readOtelEnv({
      OTEL_TRACES_EXPORTER: 'zipkin',
      OTEL_PROPAGATORS: 'tracecontext,xray',
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '10s',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318 ',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://[::1',
    }, all);
    assert.deepEqual(env.warnings, [
      'OTEL_TRACES_EXPORTER="zipkin": unknown exporter "zipkin" ignored (known: otlp, none); using otlp',
      'OTEL_PROPAGATORS="tracecontext,xray": unknown propagator "xray" ignored (known: tracecontext, baggage, b3, b3multi, jaeger, none)',
      'OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="10s": not a whole number ≥ 1; using 10000',
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://[::1": not a URL; the exporter uses its default (http://localhost:4318, gRPC localhost:4317)',
    ]);
  });

  it('TLS files that cannot be read, and a client certificate without its key', () => {
    const readable = (path: string) => path !== '/missing/ca.pem' && path !== 'missing.key';
    const env = readOtelEnv(
      {
        OTEL_EXPORTER_OTLP_CERTIFICATE: '/missing/ca.pem',
        OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY: 'missing.key',
        OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: '/etc/otel/tls.crt',
      },
      readable,
    );
    assert.deepEqual(env.warnings, [
      'OTEL_EXPORTER_OTLP_CERTIFICATE="/missing/ca.pem": file cannot be read; only the system CAs are trusted',
      'OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY="missing.key": file cannot be read; no client certificate is presented',
      'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE="…": mutual TLS needs OTEL_EXPORTER_OTLP_CLIENT_KEY too (traces, logs); no client certificate is presented',
    ]);
  });
});
