/**
 * A real Prometheus (the Debian package's /usr/bin/prometheus) scrapes a real
 * sidecar (the compiled CLI) every second; queries through its HTTP API then
 * return, for every check, the probe histogram (with our buckets), the status
 * gauge and the breaker gauge with the expected labels, plus the group gauge
 * and target_info. Missing prometheus fails the test (it does not skip).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { DATABASE_URL, REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { PROBE_DURATION_BUCKETS } from '../../src/telemetry/semconv';
import { VERSION } from '../../src/version';
import { PROMETHEUS, startCli, startScrapingPrometheus, type CliProcess, type ScrapingPrometheus } from './support';
import { ensureBuilt } from '../helpers/paths';


interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

describe('a real Prometheus scraping the sidecar', () => {
  let cli: CliProcess | undefined;
  let prometheus: ScrapingPrometheus | undefined;
  let web: TestHttpServer;
  let down: FaultProxy;

  async function query(expr: string): Promise<VectorSample[]> {
    const response = await fetch(`http://127.0.0.1:${prometheus!.port}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; data: { resultType: string; result: VectorSample[] } };
    assert.equal(body.status, 'success', JSON.stringify(body));
    return body.data.result;
  }

  before(async () => {
    assert.ok(existsSync(PROMETHEUS), `${PROMETHEUS} is missing: install the Debian package "prometheus" (CI=${process.env.CI ?? 'unset'}); this test does not skip`);
    ensureBuilt();
    web = await startHttpServer((_req, res) => res.writeHead(200).end('ok'));
    down = await startFaultProxy({ host: '127.0.0.1', port: web.port });
    down.setMode('refuse');
    cli = await startCli(
      `
server: { port: 0, host: 127.0.0.1, drainDelay: 0ms, auth: { anonymousRateLimit: 10000/1m } }
telemetry: { serviceName: prom-test }
# a timeout no busy machine reaches for the checks that must succeed; down is refused at once
defaults: { interval: 2s, timeout: 2s, retry: { attempts: 1 }, breaker: { failures: 2, halfOpenAfter: 1m } }
checks:
  - { name: cache, kind: redis, url: "${REDIS_URL}" }
  - { name: db, kind: postgres, url: "${DATABASE_URL}" }
  - { name: web, kind: http, url: "${web.url}/" }
  - { name: down, kind: http, url: "http://127.0.0.1:${down.port}/", critical: false, interval: 300ms, timeout: 250ms }
`,
      { K8S_POD_NAME: 'pod-p' },
    );
    prometheus = await startScrapingPrometheus(cli.port);
    // until a scrape has seen the open breaker of `down` and a result for every check
    await waitFor(
      async () => {
        if (prometheus!.exitCode() !== null) throw new Error(`prometheus exited: ${prometheus!.log()}`);
        const breaker = await query('healthcheck_breaker_state{healthcheck_name="down"}');
        const status = await query('healthcheck_status');
        return breaker[0]?.value[1] === '2' && status.length === 4 && status.filter((s) => s.value[1] === '1').length === 3;
      },
      { timeoutMs: 45_000, intervalMs: 250, what: `Prometheus to scrape the open breaker and three checks UP (log: ${prometheus!.log()})` },
    );
  });

  after(async () => {
    await prometheus?.stop();
    if (cli) await cli.stop();
    await down?.close();
    await web?.close();
  });

  it('the scrape target is up and its samples were accepted', async () => {
    const up = await query('up{job="health-sidecar"}');
    assert.deepEqual(up.map((s) => s.value[1]), ['1']);
    const targets = (await (await fetch(`http://127.0.0.1:${prometheus!.port}/api/v1/targets`)).json()) as { data: { activeTargets: { health: string; lastError: string }[] } };
    assert.deepEqual(targets.data.activeTargets.map((t) => ({ health: t.health, lastError: t.lastError })), [{ health: 'up', lastError: '' }]);
  });

  it('healthcheck_status per check with name, kind and critical labels', async () => {
    const rows = (await query('healthcheck_status')).map((s) => ({
      name: s.metric.healthcheck_name,
      kind: s.metric.healthcheck_kind,
      critical: s.metric.healthcheck_critical,
      value: s.value[1],
      job: s.metric.job,
    }));
    assert.deepEqual(
      rows.sort((a, b) => a.name!.localeCompare(b.name!)),
      [
        { name: 'cache', kind: 'redis', critical: 'true', value: '1', job: 'health-sidecar' },
        { name: 'db', kind: 'postgres', critical: 'true', value: '1', job: 'health-sidecar' },
        { name: 'down', kind: 'http', critical: 'false', value: '0', job: 'health-sidecar' },
        { name: 'web', kind: 'http', critical: 'true', value: '1', job: 'health-sidecar' },
      ],
    );
  });

  it('healthcheck_breaker_state per check: closed 0, open 2', async () => {
    const rows = Object.fromEntries((await query('healthcheck_breaker_state')).map((s) => [s.metric.healthcheck_name, s.value[1]]));
    assert.deepEqual(rows, { cache: '0', db: '0', web: '0', down: '2' });
  });

  it('the probe histogram: our buckets for every check and outcome, usable by histogram_quantile', async () => {
    const buckets = await query('healthcheck_probe_duration_seconds_bucket{healthcheck_name="cache",healthcheck_outcome="success"}');
    assert.deepEqual(
      buckets.map((s) => s.metric.le).sort((a, b) => Number(a === '+Inf' ? Infinity : a) - Number(b === '+Inf' ? Infinity : b)),
      [...PROBE_DURATION_BUCKETS.map(String), '+Inf'],
    );
    const series = await query('sum by (healthcheck_name, healthcheck_kind, healthcheck_outcome) (healthcheck_probe_duration_seconds_count)');
    assert.deepEqual(
      series.map((s) => `${s.metric.healthcheck_name}/${s.metric.healthcheck_kind}/${s.metric.healthcheck_outcome}`).sort(),
      ['cache/redis/success', 'db/postgres/success', 'down/http/failure', 'down/http/rejected', 'web/http/success'],
    );
    const p99 = await query('histogram_quantile(0.99, sum by (le, healthcheck_name) (healthcheck_probe_duration_seconds_bucket{healthcheck_outcome="success"}))');
    assert.deepEqual(p99.map((s) => s.metric.healthcheck_name).sort(), ['cache', 'db', 'web']);
    for (const sample of p99) assert.ok(Number(sample.value[1]) > 0 && Number(sample.value[1]) <= 10, `p99 ${sample.value[1]}`);
  });

  it('group status and target_info (service and k8s labels) are there too', async () => {
    const groups = Object.fromEntries((await query('healthcheck_group_status')).map((s) => [s.metric.healthcheck_group, s.value[1]]));
    assert.deepEqual(groups, { live: '2', ready: '1', startup: '2' });
    const [info] = await query('target_info');
    assert.deepEqual({ service: info!.metric.service_name, version: info!.metric.service_version, pod: info!.metric.k8s_pod_name }, { service: 'prom-test', version: VERSION, pod: 'pod-p' });
  });
});
