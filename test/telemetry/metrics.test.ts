/**
 * /metrics: the whole exposition checked against the expected families (name,
 * type, label sets) after real runs against Redis, PostgreSQL and HTTP (one
 * check kept failing behind the fault proxy so its breaker opens), then fed to
 * `promtool check metrics`. Plus the pure parts: Prometheus naming, the
 * traces on/off decision, span redaction, the rate-limited log.
 */
// FIRST, as in cli.ts: the instrumentations hook require before ioredis/pg load
import { startTelemetry, type Telemetry } from '../../src/telemetry/sdk';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { DataPointType } from '@opentelemetry/sdk-metrics';
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { loadConfigFile, parseConfig } from '../../src/probes/registry';
import { Sidecar } from '../../src/sidecar';
import { Redactor } from '../../src/redact';
import { createLogger } from '../../src/telemetry/log';
import { PROMETHEUS_CONTENT_TYPE } from '../../src/telemetry/metrics';
import { prometheusBaseName } from '../../src/telemetry/prometheus-names';
import { decideTraces, RateLimitedLog, redactSpan, batchSettings } from '../../src/telemetry/tracing';
import { PROBE_DURATION_BUCKETS } from '../../src/telemetry/semconv';
import { VERSION } from '../../src/version';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { DATABASE_URL, REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { captureLog } from '../server/helpers';
import { labelSets, parsePrometheus, tempDir, type Family } from './support';
import { ConfigReloader } from '../../src/config/reload';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { get, request } from '../helpers/http';

export const PROMTOOL = '/usr/bin/promtool';

/** promtool is part of the suite's toolchain (.ci/run installs the Debian package): missing means failing, in CI and locally. */
export function promtoolCheckMetrics(text: string): { status: number | null; output: string } {
  assert.ok(existsSync(PROMTOOL), `${PROMTOOL} is missing: install the Debian package "prometheus" (CI=${process.env.CI ?? 'unset'}); this test does not skip`);
  const result = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const SCOPE = 'otel_scope_name';

/** label sets (sorted label names joined by ',', `le` left out) per family, and the type */
const EXPECTED: Record<string, { type: string; labels: string[] }> = {
  // ours (SPEC §5); every series also carries otel_scope_name
  healthcheck_probe_duration_seconds: { type: 'histogram', labels: [`healthcheck_kind,healthcheck_name,healthcheck_outcome,${SCOPE}`] },
  healthcheck_probe_attempts_total: { type: 'counter', labels: [`healthcheck_kind,healthcheck_name,${SCOPE}`] },
  healthcheck_status: { type: 'gauge', labels: [`healthcheck_critical,healthcheck_kind,healthcheck_name,${SCOPE}`] },
  healthcheck_group_status: { type: 'gauge', labels: [`healthcheck_group,${SCOPE}`] },
  healthcheck_breaker_state: { type: 'gauge', labels: [`healthcheck_name,${SCOPE}`] },
  healthcheck_transitions_total: { type: 'counter', labels: [`healthcheck_from,healthcheck_name,healthcheck_to,${SCOPE}`] },
  healthcheck_consecutive_failures: { type: 'gauge', labels: [`healthcheck_name,${SCOPE}`] },
  healthcheck_last_success_seconds: { type: 'gauge', labels: [`healthcheck_name,${SCOPE}`] },
  // runs by outcome and the SLO gauges (web has an SLO)
  healthcheck_runs_total: { type: 'counter', labels: [`healthcheck_name,healthcheck_outcome,${SCOPE}`] },
  healthcheck_slo_objective_ratio: { type: 'gauge', labels: [`healthcheck_name,healthcheck_slo_window,${SCOPE}`] },
  healthcheck_slo_availability_ratio: { type: 'gauge', labels: [`healthcheck_name,healthcheck_slo_window,healthcheck_window,${SCOPE}`] },
  healthcheck_slo_error_budget_remaining_ratio: { type: 'gauge', labels: [`healthcheck_name,healthcheck_slo_window,${SCOPE}`] },
  healthcheck_telemetry_export_failures_total: { type: 'counter', labels: [`healthcheck_telemetry_signal,${SCOPE}`] },
  healthcheck_config_reload_failures_total: { type: 'counter', labels: [SCOPE] },
  healthcheck_config_reloads_total: { type: 'counter', labels: [SCOPE] },
  healthcheck_breaker_transitions_total: { type: 'counter', labels: [`healthcheck_from,healthcheck_name,healthcheck_to,${SCOPE}`] },
  healthcheck_server_auth_failures_total: { type: 'counter', labels: [`healthcheck_auth_reason,${SCOPE}`] },
  // per check, from the probes (probes/instruments.ts): http phases, connections held (issue 21.7, 21.9)
  healthcheck_http_phase_duration_seconds: { type: 'histogram', labels: [`healthcheck_http_phase,healthcheck_name,${SCOPE}`] },
  healthcheck_connections: { type: 'gauge', labels: [`db_client_connection_state,healthcheck_kind,healthcheck_name,${SCOPE}`] },
  db_client_connection_count: { type: 'gauge', labels: [`db_client_connection_pool_name,db_client_connection_state,${SCOPE}`] },
  // the sidecar's own HTTP server (server-metrics.ts; semantic conventions)
  http_server_request_duration_seconds: { type: 'histogram', labels: ['http_request_method,http_response_status_code,http_route,otel_scope_name,otel_scope_version'] },
  // client instrumentations (stable semantic conventions)
  http_client_request_duration_seconds: {
    type: 'histogram',
    labels: [
      `error_type,http_request_method,otel_scope_name,otel_scope_version,server_address,server_port`,
      `http_request_method,http_response_status_code,network_protocol_version,otel_scope_name,otel_scope_version,server_address,server_port`,
    ],
  },
  db_client_operation_duration_seconds: {
    type: 'histogram',
    labels: [`db_namespace,db_operation_name,db_system_name,otel_scope_name,otel_scope_version,server_address,server_port`],
  },
  // runtime-node
  nodejs_eventloop_utilization_ratio: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version'] },
  nodejs_eventloop_time_seconds_total: { type: 'counter', labels: ['nodejs_eventloop_state,otel_scope_name,otel_scope_version'] },
  nodejs_eventloop_delay_min_seconds: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version'] },
  nodejs_eventloop_delay_max_seconds: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version'] },
  nodejs_eventloop_delay_mean_seconds: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version'] },
  nodejs_eventloop_delay_stddev_seconds: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version'] },
  nodejs_eventloop_delay_p50_seconds: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version'] },
  nodejs_eventloop_delay_p90_seconds: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version'] },
  nodejs_eventloop_delay_p99_seconds: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version'] },
  v8js_gc_duration_seconds: { type: 'histogram', labels: ['otel_scope_name,otel_scope_version,v8js_gc_type'] },
  v8js_memory_heap_space_size_bytes: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version,v8js_heap_space_name'] },
  v8js_memory_heap_used_bytes: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version,v8js_heap_space_name'] },
  v8js_memory_heap_space_available_size_bytes: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version,v8js_heap_space_name'] },
  v8js_memory_heap_space_physical_size_bytes: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version,v8js_heap_space_name'] },
  v8js_resource_active: { type: 'gauge', labels: ['otel_scope_name,otel_scope_version,v8js_resource_type'] },
  target_info: { type: 'gauge', labels: ['<resource>'] },
};

describe('/metrics: the whole exposition after real probes', () => {
  let telemetry: Telemetry;
  let sidecar: Sidecar;
  let web: TestHttpServer;
  let proxy: FaultProxy;
  let port: number;
  let text: string;
  let reloader: ConfigReloader | undefined;
  let configDir: { path: string; remove(): void } | undefined;
  let families: Map<string, Family>;
  const redactor = () => sidecar.redactor;
  const { log, destination } = captureLog();

  before(async () => {
    web = await startHttpServer((_req, res) => res.writeHead(200).end('ok'));
    proxy = await startFaultProxy({ host: '127.0.0.1', port: web.port });
    proxy.setMode('refuse');
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment.name=test,team=sre';
    const yaml = `
server: { port: 0, host: 127.0.0.1, drainDelay: 0ms }
telemetry: { serviceName: metrics-test }
defaults: { interval: 400ms, timeout: 350ms, retry: { attempts: 1 }, breaker: { failures: 2, halfOpenAfter: 1m } }
checks:
  - { name: cache, kind: redis, url: "${REDIS_URL}", groups: [ready, startup] }
  - { name: db, kind: postgres, url: "${DATABASE_URL}" }
  - { name: web, kind: http, url: "${web.url}/healthz?token=\${WEB_TOKEN}", groups: [live, ready], slo: { objective: 99.5%, window: 7d } }
  - { name: flaky, kind: http, url: "${proxy.url('http')}/", critical: false }
`;
    const config = parseConfig(yaml, 'metrics-test.yaml', { env: { WEB_TOKEN: 'tok3n-canary-value' } });
    const logger = createLogger({ level: 'info', destination });
    telemetry = startTelemetry(config, logger, { env: { ...process.env, K8S_POD_NAME: 'pod-1', K8S_NAMESPACE_NAME: 'shop', K8S_NODE_NAME: 'node-a' } });
    sidecar = new Sidecar(config, logger, telemetry.hooks);
    port = await sidecar.start();
    // as cli.ts does: the reloader's counters are part of the exposition
    configDir = tempDir('metrics-test-');
    const file = join(configDir.path, 'sidecar.yaml');
    writeFileSync(file, yaml);
    const reloadMetrics = telemetry.reloadMetrics();
    assert.ok(reloadMetrics, 'the SDK bootstrap makes the reload counters when metrics are exported');
    reloader = new ConfigReloader({ file, target: sidecar, logger, watch: false, sighup: false, load: (f) => loadConfigFile(f), metrics: reloadMetrics }).start();
    await waitFor(() => sidecar.store.all().every((s) => (s.consecutiveFailures + s.consecutiveSuccesses >= 3) && (s.name !== 'flaky' || s.breaker === 'open')), {
      timeoutMs: 30_000,
      what: 'three runs of every check and the open breaker of flaky',
    });
    // enough garbage for scavenges, so the GC histogram has data
    let junk: number[][] = [];
    for (let i = 0; i < 200_000; i++) junk.push([i, i + 1, i + 2]);
    junk = [];
    await new Promise((r) => setTimeout(r, 50));
    // http.server.request.duration has a series from its first request on
    await get(port, '/readyz');
    const reply = await get(port, '/metrics');
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['content-type'], PROMETHEUS_CONTENT_TYPE);
    assert.equal(reply.headers['cache-control'], 'no-store');
    text = reply.body;
    families = parsePrometheus(text);
  });

  after(async () => {
    reloader?.stop();
    configDir?.remove();
    await sidecar?.shutdown({ drain: false });
    await telemetry?.shutdown(2000);
    await proxy?.close();
    await web?.close();
  });

  it('has exactly the expected families, types and label sets', () => {
    const actual: Record<string, { type: string; labels: string[] }> = {};
    for (const [name, family] of families) actual[name] = { type: family.type, labels: name === 'target_info' ? ['<resource>'] : labelSets(family) };
    assert.deepEqual(actual, EXPECTED, `families were:\n${JSON.stringify(actual, null, 1)}`);
  });

  it('passes promtool check metrics', () => {
    const { status, output } = promtoolCheckMetrics(text);
    // db.client.connection.count is the semantic conventions' name, and the Collector's prometheus
    // exporter writes it the same way; promtool's lint dislikes "_count" on a gauge (issue 21.7)
    const SEMCONV_NAME = 'db_client_connection_count non-histogram and non-summary metrics should not have "_count" suffix\n';
    assert.equal(output.replace(SEMCONV_NAME, ''), '');
    assert.equal(status, output === SEMCONV_NAME ? 3 : 0);
  });

  it('target_info carries the resource: service name and version, k8s.* from the downward API env, OTEL_RESOURCE_ATTRIBUTES', () => {
    const [sample] = families.get('target_info')!.samples;
    const pick = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, sample!.labels[k]]));
    assert.deepEqual(pick(['service_name', 'service_version', 'k8s_pod_name', 'k8s_namespace_name', 'k8s_node_name', 'deployment_environment_name', 'team', 'telemetry_sdk_language']), {
      service_name: 'metrics-test',
      service_version: VERSION,
      k8s_pod_name: 'pod-1',
      k8s_namespace_name: 'shop',
      k8s_node_name: 'node-a',
      deployment_environment_name: 'test',
      team: 'sre',
      telemetry_sdk_language: 'nodejs',
    });
    assert.equal(families.get('target_info')!.samples.length, 1);
  });

  it('target_info carries the chosen process/host attributes only: no command line, command, executable path, owner or host id (issue 14.5)', () => {
    const [sample] = families.get('target_info')!.samples;
    const labels = Object.keys(sample!.labels).sort();
    const processAndHost = labels.filter((k) => k.startsWith('process_') || k.startsWith('host_'));
    assert.deepEqual(processAndHost, ['host_arch', 'host_name', 'process_executable_name', 'process_pid', 'process_runtime_description', 'process_runtime_name', 'process_runtime_version']);
    assert.equal(sample!.labels.process_pid, String(process.pid));
    for (const hidden of [process.argv[1] ?? 'argv', 'metrics-test.yaml']) assert.ok(!text.includes(hidden), `${hidden} not in /metrics`);
  });

  it('gauges read the state: status per check (critical label), groups 2/1/0, breaker 0/2, failures, last success', () => {
    const values = (family: string, label: string) =>
      Object.fromEntries(families.get(family)!.samples.map((s) => [s.labels[label], s.value]));
    assert.deepEqual(
      families.get('healthcheck_status')!.samples.map((s): Record<string, string | number> => ({ ...s.labels, value: s.value })).sort((a, b) => String(a.healthcheck_name).localeCompare(String(b.healthcheck_name))),
      [
        { healthcheck_name: 'cache', healthcheck_kind: 'redis', healthcheck_critical: 'true', otel_scope_name: 'otel-health-sidecar', value: 1 },
        { healthcheck_name: 'db', healthcheck_kind: 'postgres', healthcheck_critical: 'true', otel_scope_name: 'otel-health-sidecar', value: 1 },
        { healthcheck_name: 'flaky', healthcheck_kind: 'http', healthcheck_critical: 'false', otel_scope_name: 'otel-health-sidecar', value: 0 },
        { healthcheck_name: 'web', healthcheck_kind: 'http', healthcheck_critical: 'true', otel_scope_name: 'otel-health-sidecar', value: 1 },
      ],
    );
    // ready: flaky (non-critical) is DOWN → DEGRADED; live and startup: all members UP
    assert.deepEqual(values('healthcheck_group_status', 'healthcheck_group'), { live: 2, ready: 1, startup: 2 });
    assert.deepEqual(values('healthcheck_breaker_state', 'healthcheck_name'), { cache: 0, db: 0, web: 0, flaky: 2 });
    const failures = values('healthcheck_consecutive_failures', 'healthcheck_name');
    assert.deepEqual({ ...failures, flaky: failures.flaky! >= 3 }, { cache: 0, db: 0, web: 0, flaky: true });
    const lastSuccess = values('healthcheck_last_success_seconds', 'healthcheck_name');
    assert.deepEqual(Object.keys(lastSuccess).sort(), ['cache', 'db', 'web'], 'no sample for a check that never succeeded');
    for (const at of Object.values(lastSuccess)) assert.ok(Math.abs(at! - Date.now() / 1000) < 60, `last success ${at} is a unix time in seconds`);
  });

  it('the probe histogram uses the 1 ms … 10 s buckets and counts rejections separately; attempts exclude rejections', () => {
    const histogram = families.get('healthcheck_probe_duration_seconds')!;
    const series = (name: string, outcome: string) => histogram.samples.filter((s) => s.labels.healthcheck_name === name && s.labels.healthcheck_outcome === outcome);
    const buckets = series('cache', 'success').filter((s) => s.name.endsWith('_bucket')).map((s) => s.labels.le);
    assert.deepEqual(buckets, [...PROBE_DURATION_BUCKETS.map(String), '+Inf']);
    const count = (name: string, outcome: string) => series(name, outcome).find((s) => s.name.endsWith('_count'))?.value ?? 0;
    assert.ok(count('flaky', 'failure') >= 2, 'failed attempts counted');
    assert.ok(count('flaky', 'rejected') >= 1, 'rejections while open counted');
    const outcomes = new Set(histogram.samples.map((s) => `${s.labels.healthcheck_name}:${s.labels.healthcheck_outcome}`));
    assert.deepEqual([...outcomes].sort(), ['cache:success', 'db:success', 'flaky:failure', 'flaky:rejected', 'web:success']);
    const attempts = Object.fromEntries(families.get('healthcheck_probe_attempts_total')!.samples.map((s) => [s.labels.healthcheck_name, s.value]));
    assert.equal(attempts.flaky, count('flaky', 'failure'), 'rejections are not attempts');
    assert.equal(attempts.cache, count('cache', 'success'));
  });

  it('counts transitions with from/to', () => {
    const transitions = families.get('healthcheck_transitions_total')!.samples.map((s) => `${s.labels.healthcheck_name}:${s.labels.healthcheck_from}->${s.labels.healthcheck_to}=${s.value}`);
    assert.deepEqual(transitions.sort(), ['cache:UNKNOWN->UP=1', 'db:UNKNOWN->UP=1', 'flaky:UNKNOWN->DOWN=1', 'web:UNKNOWN->UP=1']);
  });

  it('no secret reaches /metrics (a ${VAR} in a probe URL query)', () => {
    assert.ok(!text.includes('tok3n-canary-value'));
    assert.ok(!log.text().includes('tok3n-canary-value'));
  });

  it('HEAD works and other methods are refused', async () => {
    const head = await request(port, '/metrics', { method: 'HEAD' });
    assert.deepEqual({ status: head.status, body: head.body, type: head.headers['content-type'] }, { status: 200, body: '', type: PROMETHEUS_CONTENT_TYPE });
    const post = await request(port, '/metrics', { method: 'POST' });
    assert.deepEqual({ status: post.status, allow: post.headers.allow }, { status: 405, allow: 'GET, HEAD' });
  });
});

describe('Prometheus names from OTel names and units', () => {
  const gauge = { dataPointType: DataPointType.GAUGE };
  const sum = { dataPointType: DataPointType.SUM };
  const histogram = { dataPointType: DataPointType.HISTOGRAM };
  const cases: [string, string, { dataPointType: DataPointType }, string][] = [
    ['healthcheck.probe.duration', 's', histogram, 'healthcheck_probe_duration_seconds'],
    ['healthcheck.probe.attempts', '{attempt}', sum, 'healthcheck_probe_attempts'],
    ['healthcheck.last_success', 's', gauge, 'healthcheck_last_success_seconds'],
    ['healthcheck.runs', '{run}', sum, 'healthcheck_runs'],
    ['healthcheck.slo.availability', '1', gauge, 'healthcheck_slo_availability_ratio'],
    ['healthcheck.slo.error_budget_remaining', '1', gauge, 'healthcheck_slo_error_budget_remaining_ratio'],
    ['healthcheck.status', '', gauge, 'healthcheck_status'],
    ['nodejs.eventloop.utilization', '1', gauge, 'nodejs_eventloop_utilization_ratio'],
    ['some.ratio.counter', '1', sum, 'some_ratio_counter'],
    ['v8js.memory.heap.used', 'By', gauge, 'v8js_memory_heap_used_bytes'],
    ['already_seconds', 's', gauge, 'already_seconds'],
    ['requests', '{request}/s', gauge, 'requests_per_second'],
    ['throughput', 'By/s', gauge, 'throughput_bytes_per_second'],
    ['http.client.duration', 'ms', histogram, 'http_client_duration_milliseconds'],
  ];
  for (const [name, unit, kind, expected] of cases) {
    it(`${name} [${unit}] → ${expected}`, () => assert.equal(prometheusBaseName(name, unit, kind), expected));
  }
});

describe('traces on or off', () => {
  it('off without an endpoint, with OTEL_TRACES_EXPORTER=none, or by config; endpoint and protocol from env', () => {
    assert.deepEqual(decideTraces(true, {}), { enabled: false, reason: 'no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set' });
    assert.deepEqual(decideTraces(true, { OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }), { enabled: false, reason: 'no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set' });
    assert.deepEqual(decideTraces(false, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), { enabled: false, reason: 'telemetry.traces.enabled is false' });
    assert.deepEqual(decideTraces(true, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }), { enabled: false, reason: 'OTEL_TRACES_EXPORTER=none' });
    assert.deepEqual(decideTraces(true, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }), { enabled: true, endpoint: 'http://c:4318/v1/traces', protocol: 'http/protobuf' });
    assert.deepEqual(decideTraces(true, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:9/x', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }), {
      enabled: true,
      endpoint: 'http://t:9/x',
      protocol: 'http/json',
    });
    assert.deepEqual(decideTraces(true, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'thrift' }), {
      enabled: true,
      endpoint: 'http://c:4318/v1/traces',
      protocol: 'http/protobuf',
      warning: 'unsupported OTLP protocol "thrift"; using http/protobuf',
    });
  });

  it('batch settings: bounded defaults, OTEL_BSP_* honoured, batch never larger than the queue', () => {
    assert.deepEqual(batchSettings({}), { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMillis: 5000, exportTimeoutMillis: 10_000 });
    assert.deepEqual(batchSettings({ OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '500', OTEL_BSP_SCHEDULE_DELAY: '0', OTEL_BSP_EXPORT_TIMEOUT: 'soon' }), {
      maxQueueSize: 100,
      maxExportBatchSize: 100,
      scheduledDelayMillis: 0,
      exportTimeoutMillis: 10_000,
    });
  });
});

/** a finished span as the SDK hands it to an exporter: `fields` over fixed ids, times and counts */
function fakeSpan(fields: { name: string; kind: SpanKind; status: object; attributes: object; links?: object[]; events: object[] }, context: object): ReadableSpan {
  return {
    links: [],
    ...fields,
    spanContext: () => context,
    parentSpanContext: undefined,
    startTime: [1, 0],
    endTime: [2, 0],
    duration: [1, 0],
    ended: true,
    resource: {},
    instrumentationScope: { name: 'x' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  } as unknown as ReadableSpan;
}

describe('span redaction and the rate-limited log', () => {
  it('redacts attributes, event attributes, status message and name, keeps everything else', () => {
    const redactor = new Redactor(['hunter2-secret']);
    const context = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.SAMPLED };
    const span = fakeSpan(
      {
        name: 'GET hunter2-secret',
        kind: SpanKind.CLIENT,
        status: { code: SpanStatusCode.ERROR, message: 'auth failed for redis://:hunter2-secret@h:6379' },
        attributes: { 'url.full': 'http://u:pw@h/x?token=hunter2-secret', 'server.port': 80, list: ['hunter2-secret', 'ok'] },
        events: [{ name: 'exception', time: [1, 5], attributes: { 'exception.message': 'password=hunter2-secret' } }],
      },
      context,
    );
    const out = redactSpan(redactor, span);
    assert.deepEqual(
      { name: out.name, status: out.status, attributes: out.attributes, events: out.events, context: out.spanContext(), kind: out.kind, start: out.startTime },
      {
        name: 'GET ***',
        status: { code: SpanStatusCode.ERROR, message: 'auth failed for redis://:***@h:6379' },
        attributes: { 'url.full': 'http://u:***@h/x?token=***', 'server.port': 80, list: ['***', 'ok'] },
        events: [{ name: 'exception', time: [1, 5], attributes: { 'exception.message': 'password=***' } }],
        context,
        kind: SpanKind.CLIENT,
        start: [1, 0],
      },
    );
  });

  it('a span with nothing to redact is exported as it is; a redacted copy leaves the span itself untouched', () => {
    const redactor = new Redactor(['hunter2-secret']);
    const context = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.SAMPLED };
    const spanWith = (eventMessage: string) =>
      fakeSpan(
        {
          name: 'healthcheck api attempt',
          kind: SpanKind.INTERNAL,
          status: { code: SpanStatusCode.ERROR, message: 'HTTP 503' },
          attributes: { 'healthcheck.name': 'api', 'healthcheck.attempt': 1, tags: ['a', 'b'] },
          links: [{ context, attributes: { 'link.note': 'plain' } }],
          events: [{ name: 'retry', time: [1, 5], attributes: { 'healthcheck.retry.reason': eventMessage } }],
        },
        context,
      );
    const clean = spanWith('HTTP 503');
    assert.equal(redactSpan(redactor, clean), clean);

    const secret = spanWith('auth failed: password=hunter2-secret');
    const before = structuredClone({ attributes: secret.attributes, events: secret.events, status: secret.status });
    const out = redactSpan(redactor, secret);
    assert.notEqual(out, secret);
    assert.equal(out.events[0]!.attributes!['healthcheck.retry.reason'], 'auth failed: password=***');
    assert.deepEqual({ name: out.name, attributes: out.attributes, status: out.status, links: out.links, context: out.spanContext() }, { name: secret.name, attributes: secret.attributes, status: secret.status, links: secret.links, context });
    assert.deepEqual({ attributes: secret.attributes, events: secret.events, status: secret.status }, before);
  });

  it('logs at most once per interval and says how many lines it held back', () => {
    const { log, destination } = captureLog();
    let now = 0;
    const limited = new RateLimitedLog(createLogger({ level: 'info', destination }), 60_000, () => now);
    const results: boolean[] = [];
    for (const at of [0, 1000, 59_999, 60_000, 61_000, 200_000]) {
      now = at;
      results.push(limited.warn({ n: at }, 'export failed'));
    }
    assert.deepEqual(results, [true, false, false, true, false, true]);
    assert.deepEqual(
      log.records().map((r) => ({ n: r.n, suppressed: r.suppressed })),
      [{ n: 0, suppressed: undefined }, { n: 60_000, suppressed: 2 }, { n: 200_000, suppressed: 1 }],
    );
  });
});
