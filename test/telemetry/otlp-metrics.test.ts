/**
 * Metrics pushed over OTLP by the compiled CLI (OTEL_METRICS_EXPORTER=prometheus,otlp),
 * in each protocol (http/protobuf, http/json, grpc), decoded by the test
 * receiver: healthcheck.probe.duration as a histogram with the Prometheus
 * path's bounds, healthcheck.status, healthcheck.breaker.state, the resource;
 * every healthcheck.* value agrees with a Prometheus scrape of the same
 * process (the checks run once an hour, so nothing moves between the scrape
 * and the next export). Delta temporality when asked; OTEL_METRICS_EXPORTER=otlp
 * alone serves no /metrics; an unknown value is one log line.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpReceiver, TEMPORALITY, type OtlpReceiver, type ReceivedMetric } from '../helpers/otlp-receiver';
import { freePort, startHttpServer, type TestHttpServer } from '../helpers/servers';
import { PROBE_DURATION_BUCKETS } from '../../src/telemetry/semconv';
import { VERSION } from '../../src/version';
import { parsePrometheus, startCli, type CliProcess, type Family } from './support';
import { ensureBuilt } from '../helpers/paths';
import { get } from '../helpers/http';

const yaml = (webUrl: string, closedPort: number, interval = '1h', timeout = '500ms') => `
server: { port: 0, host: 127.0.0.1, drainDelay: 0ms }
telemetry: { serviceName: otlp-metrics-test }
defaults: { interval: ${interval}, timeout: ${timeout}, retry: { attempts: 1 } }
checks:
  - { name: web, kind: http, url: "${webUrl}/" }
  - { name: gone, kind: tcp, url: "tcp://127.0.0.1:${closedPort}", critical: false, breaker: { failures: 1, halfOpenAfter: 1h } }
`;

/** the metrics of the newest export request from the run tagged `run` */
function latestExport(receiver: OtlpReceiver, run: string): Map<string, ReceivedMetric> {
  const ours = receiver.metrics.filter((m) => m.resource['test.run'] === run);
  const last = ours.at(-1);
  if (!last) return new Map();
  return new Map(ours.filter((m) => m.request === last.request).map((m) => [m.name, m]));
}

const byName = (metric: ReceivedMetric | undefined, check: string) => metric?.points.filter((p) => p.attributes['healthcheck.name'] === check) ?? [];
const promValue = (family: Family | undefined, labels: Record<string, string>, sample?: string) =>
  family?.samples.filter((s) => (sample === undefined || s.name === sample) && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) ?? [];

describe('OTLP metrics push: each protocol, same data as the Prometheus scrape', () => {
  let receiver: OtlpReceiver;
  let web: TestHttpServer;
  let closedPort: number;
  const clis: CliProcess[] = [];

  before(async () => {
    ensureBuilt();
    receiver = await startOtlpReceiver({ grpc: true });
    web = await startHttpServer((_req, res) => res.writeHead(200).end('ok'));
    closedPort = await freePort();
  });

  after(async () => {
    for (const cli of clis) cli.kill();
    await receiver?.close();
    await web?.close();
  });

  for (const protocol of ['http/protobuf', 'http/json', 'grpc'] as const) {
    it(`${protocol}: histogram, status, breaker state and resource agree with /metrics`, async () => {
      const run = `metrics-${protocol}`;
      const cli = await startCli(yaml(web.url, closedPort), {
        OTEL_METRICS_EXPORTER: 'prometheus,otlp',
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT: protocol === 'grpc' ? receiver.grpcUrl! : receiver.url,
        OTEL_METRIC_EXPORT_INTERVAL: '200',
        OTEL_RESOURCE_ATTRIBUTES: `test.run=${run}`,
        K8S_POD_NAME: 'pod-7',
      });
      clis.push(cli);
      // both checks have run once (web UP, gone DOWN with its breaker open) and an export after that arrived
      await receiver.until(() => {
        const latest = latestExport(receiver, run);
        return byName(latest.get('healthcheck.status'), 'web').length === 1 && byName(latest.get('healthcheck.breaker.state'), 'gone')[0]?.value === 2;
      }, `${protocol}: status of web and open breaker of gone`);
      const scraped = parsePrometheus((await get(cli.port, '/metrics')).body);
      const after = receiver.metrics.length;
      await receiver.until(() => receiver.metrics.slice(after).some((m) => m.resource['test.run'] === run && m.name === 'healthcheck.probe.duration'), `${protocol}: an export after the scrape`);
      const otlp = latestExport(receiver, run);
      assert.deepEqual(receiver.errors, []);

      // the histogram: same bounds, same counts and sum per series
      const duration = otlp.get('healthcheck.probe.duration');
      assert.ok(duration, `no healthcheck.probe.duration in ${[...otlp.keys()].join(', ')}`);
      assert.deepEqual({ type: duration.type, unit: duration.unit, temporality: duration.temporality }, { type: 'histogram', unit: 's', temporality: TEMPORALITY.cumulative });
      const promDuration = scraped.get('healthcheck_probe_duration_seconds');
      for (const check of ['web', 'gone']) {
        const [point, ...rest] = byName(duration, check);
        assert.ok(point && rest.length === 0, `${check}: one duration series`);
        assert.deepEqual(point.bounds, PROBE_DURATION_BUCKETS);
        const labels = { healthcheck_name: check, healthcheck_outcome: String(point.attributes['healthcheck.outcome']) };
        let cumulative = 0;
        const buckets = point.bucketCounts!.map((n, i) => [PROBE_DURATION_BUCKETS[i] ?? Infinity, (cumulative += n)] as const);
        for (const [le, count] of buckets) {
          const sample = promValue(promDuration, { ...labels, le: le === Infinity ? '+Inf' : String(le) }, 'healthcheck_probe_duration_seconds_bucket');
          assert.equal(sample[0]?.value, count, `${check} bucket le=${le}`);
        }
        assert.equal(promValue(promDuration, labels, 'healthcheck_probe_duration_seconds_count')[0]?.value, point.count);
        assert.ok(Math.abs(promValue(promDuration, labels, 'healthcheck_probe_duration_seconds_sum')[0]!.value - point.sum!) < 1e-9, `${check}: sum`);
      }

      // gauges: status and breaker state, value for value
      for (const [name, family] of [
        ['healthcheck.status', 'healthcheck_status'],
        ['healthcheck.breaker.state', 'healthcheck_breaker_state'],
        ['healthcheck.consecutive_failures', 'healthcheck_consecutive_failures'],
      ] as const) {
        const metric = otlp.get(name);
        assert.equal(metric?.type, 'gauge', name);
        for (const check of ['web', 'gone']) {
          const points = byName(metric, check);
          const samples = promValue(scraped.get(family), { healthcheck_name: check });
          assert.deepEqual(
            points.map((p) => p.value),
            samples.map((s) => s.value),
            `${name} of ${check}`,
          );
        }
      }
      assert.deepEqual(byName(otlp.get('healthcheck.status'), 'web')[0]?.attributes, { 'healthcheck.name': 'web', 'healthcheck.kind': 'http', 'healthcheck.critical': true });
      assert.equal(byName(otlp.get('healthcheck.breaker.state'), 'gone')[0]?.value, 2);
      // the attempts counter: a monotonic cumulative sum, equal to the _total series
      const attempts = otlp.get('healthcheck.probe.attempts');
      assert.deepEqual({ type: attempts?.type, monotonic: attempts?.monotonic, temporality: attempts?.temporality }, { type: 'sum', monotonic: true, temporality: TEMPORALITY.cumulative });
      for (const check of ['web', 'gone']) {
        assert.equal(byName(attempts, check)[0]?.value, promValue(scraped.get('healthcheck_probe_attempts_total'), { healthcheck_name: check })[0]?.value, `attempts of ${check}`);
      }

      // the resource: the one target_info carries
      const resource = duration.resource;
      const info = scraped.get('target_info')?.samples[0]?.labels ?? {};
      assert.equal(resource['service.name'], 'otlp-metrics-test');
      assert.equal(resource['service.version'], VERSION);
      assert.equal(resource['k8s.pod.name'], 'pod-7');
      assert.deepEqual([info.service_name, info.service_version, info.k8s_pod_name], [resource['service.name'], resource['service.version'], resource['k8s.pod.name']]);
      assert.equal(duration.scope.name, 'otel-health-sidecar');

      // the sidecar's own server metrics go over OTLP too: the scrape above is a request of the export after it
      const serverDuration = otlp.get('http.server.request.duration');
      assert.deepEqual({ type: serverDuration?.type, unit: serverDuration?.unit }, { type: 'histogram', unit: 's' });
      assert.ok(serverDuration?.points.some((p) => p.attributes['http.route'] === '/metrics' && p.attributes['http.response.status_code'] === 200 && p.count! >= 1), JSON.stringify(serverDuration?.points.map((p) => p.attributes)));
      assert.deepEqual(otlp.get('healthcheck.server.auth_failures')?.points.map((p) => p.attributes['healthcheck.auth.reason']).sort(), ['missing', 'rate_limited', 'wrong_key']);

      const exit = await cli.stop('SIGTERM');
      assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });
    });
  }

  it('delta temporality when asked: windows follow each other, counts per window', async () => {
    const run = 'metrics-delta';
    const cli = await startCli(yaml(web.url, closedPort, '100ms', '90ms'), {
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'delta',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_METRIC_EXPORT_INTERVAL: '200',
      OTEL_RESOURCE_ATTRIBUTES: `test.run=${run}`,
    });
    clis.push(cli);
    // OTLP alone (no Prometheus reader): the sidecar's own server metrics are exported all the same
    await get(cli.port, '/readyz');
    await receiver.until(
      () => receiver.metrics.some((m) => m.resource['test.run'] === run && m.name === 'http.server.request.duration' && m.points.some((p) => p.attributes['http.route'] === '/readyz')),
      'http.server.request.duration of the /readyz request over OTLP alone',
    );
    const webDurations = () => receiver.metrics.filter((m) => m.resource['test.run'] === run && m.name === 'healthcheck.probe.duration').flatMap((m) => byName(m, 'web').map((p) => ({ ...p, temporality: m.temporality })));
    const seriesOf = <T extends { attributes: Record<string, unknown> }>(list: T[]) => {
      const map = new Map<string, T[]>();
      for (const p of list) map.set(String(p.attributes['healthcheck.outcome']), [...(map.get(String(p.attributes['healthcheck.outcome'])) ?? []), p]);
      return map;
    };
    await receiver.until(() => [...seriesOf(webDurations()).values()].some((list) => list.length >= 3), 'three delta exports of one web histogram series');
    const points = webDurations();
    assert.ok(points.every((p) => p.temporality === TEMPORALITY.delta), 'every histogram point is delta');
    // per series (outcome), each window starts at or after the end of the one before (cumulative would keep one start)
    const series = seriesOf(points);
    assert.ok([...series.values()].some((list) => list.length >= 2), 'a series exported twice');
    for (const [outcome, list] of series) {
      for (let i = 1; i < list.length; i++) assert.ok(list[i]!.startTimeUnixNano >= list[i - 1]!.timeUnixNano, `${outcome}: window ${i} overlaps window ${i - 1}`);
    }
    const attempts = receiver.metrics.filter((m) => m.resource['test.run'] === run && m.name === 'healthcheck.probe.attempts');
    assert.ok(attempts.length > 0 && attempts.every((m) => m.temporality === TEMPORALITY.delta && m.monotonic));
    // OTEL_METRICS_EXPORTER=otlp alone: no Prometheus endpoint
    assert.equal((await get(cli.port, '/metrics')).status, 404);
    const exit = await cli.stop('SIGTERM');
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });
  });

  it('an unknown value of a known variable is one clear log line, and the default is used', async () => {
    const cli = await startCli(yaml(web.url, closedPort), {
      OTEL_METRICS_EXPORTER: 'prometheus',
      OTEL_TRACES_SAMPLER: 'sometimes',
      OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'sideways',
      OTEL_LOGS_EXPORTER: 'carrier-pigeon',
    });
    clis.push(cli);
    const warnings = cli.records().filter((r) => r.level === 'warn' && typeof r.msg === 'string' && r.msg.startsWith('OTEL_'));
    assert.deepEqual(
      warnings.map((r) => r.msg),
      [
        'OTEL_LOGS_EXPORTER="carrier-pigeon": unknown exporter "carrier-pigeon" ignored (known: otlp, none); using none',
        'OTEL_TRACES_SAMPLER="sometimes": unknown sampler (known: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio); using parentbased_always_on',
      ],
    );
    assert.equal((await get(cli.port, '/metrics')).status, 200);
    const exit = await cli.stop('SIGTERM');
    assert.equal(exit.code, 0);
  });
});
