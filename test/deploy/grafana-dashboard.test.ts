/**
 * deploy/grafana/dashboard.json against reality: the compiled sidecar runs
 * with checks against real Redis, PostgreSQL, an HTTP server and a TCP port
 * behind the fault proxy (flipped to refuse and back, so transitions, retries,
 * failures and an open breaker exist); a real Prometheus scrapes it every
 * second; then every panel query and every template variable query, with the
 * dashboard's variables substituted, goes through the Prometheus HTTP API and
 * must be valid PromQL that returns data. The metric names used by the alert
 * rules must exist in the same scrape. The JSON must be what the generator
 * script produces.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { DATABASE_URL, freePort, REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { DEPLOY, run, startChild, type Child } from './support';
import { ROOT } from '../helpers/paths';

type Target = { expr: string; refId: string; instant?: boolean };
type Panel = { id: number; type: string; title: string; targets?: Target[]; panels?: Panel[]; datasource?: { uid: string }; gridPos: { h: number; w: number; x: number; y: number } };
type Variable = { name: string; type: string; query: string | { query: string }; allValue?: string };
const dashboardText = readFileSync(join(DEPLOY, 'grafana/dashboard.json'), 'utf8');
const dashboard = JSON.parse(dashboardText) as { uid: string; title: string; panels: Panel[]; templating: { list: Variable[] } };
const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
const JOB = 'health-sidecar';

/** Grafana's variables as the dashboard would resolve them with "All" selected. */
function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '15s')
    .replaceAll('$__range', '5m')
    .replaceAll('$job', JOB)
    .replaceAll('$instance', '.+')
    .replaceAll('$check', '.+');
}

describe('Grafana dashboard', () => {
  test('structure: unique ids, every panel has a datasource and queries, the required views exist', () => {
    const ids = dashboard.panels.flatMap((p) => [p.id, ...(p.panels ?? []).map((c) => c.id)]);
    assert.equal(new Set(ids).size, ids.length, 'panel ids unique');
    assert.equal(dashboard.uid, 'otel-health-sidecar');
    for (const p of allPanels) {
      assert.equal(p.datasource?.uid, '${datasource}', `${p.title}: uses the datasource variable`);
      assert.ok(p.targets?.length, `${p.title}: has queries`);
      assert.ok(p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title}: fits the grid`);
    }
    const exprs = allPanels.flatMap((p) => p.targets!.map((t) => t.expr)).join('\n');
    for (const q of ['0.5', '0.95', '0.99']) assert.ok(exprs.includes(`histogram_quantile(${q}, sum by (le, healthcheck_name) (rate(healthcheck_probe_duration_seconds_bucket`), `p${q} from the histogram`);
    // the SLO row: availability vs objective, budget remaining, burn rates from the run counter
    for (const metric of ['healthcheck_slo_availability_ratio', 'healthcheck_slo_objective_ratio', 'healthcheck_slo_error_budget_remaining_ratio', 'healthcheck_runs_total']) assert.ok(exprs.includes(metric), `a panel shows ${metric}`);
    assert.ok(dashboard.panels.some((p) => p.type === 'row' && p.title === 'SLO'), 'an SLO row');
    for (const metric of ['healthcheck_status', 'healthcheck_group_status', 'healthcheck_breaker_state', 'healthcheck_transitions_total', 'healthcheck_probe_attempts_total', 'nodejs_eventloop_delay_p99_seconds', 'v8js_memory_heap_used_bytes']) {
      assert.ok(exprs.includes(metric), `a panel shows ${metric}`);
    }
    assert.deepEqual(dashboard.templating.list.map((v) => v.name), ['datasource', 'job', 'instance', 'check']);
  });

  test('dashboard.json is exactly what generate-dashboard.mjs writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-'));
    try {
      const result = spawnSync(process.execPath, [join(DEPLOY, 'grafana/generate-dashboard.mjs'), join(dir, 'out.json')], { encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(readFileSync(join(dir, 'out.json'), 'utf8'), dashboardText);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('every query returns data from a real Prometheus scraping a real sidecar', () => {
    let work: string;
    let app: TestHttpServer;
    let proxy: FaultProxy;
    let sidecar: Child | undefined;
    let prometheus: Child | undefined;
    let promUrl: string;

    async function query(expr: string): Promise<{ status: string; data?: { resultType: string; result: unknown[] }; error?: string }> {
      const res = await fetch(`${promUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`);
      return (await res.json()) as { status: string; data?: { resultType: string; result: unknown[] }; error?: string };
    }

    before(async () => {
      const found = spawnSync('prometheus', ['--version'], { encoding: 'utf8' });
      assert.equal(found.error, undefined, `the prometheus binary is required (apt-get install prometheus): ${String(found.error)}`);
      work = mkdtempSync(join(tmpdir(), 'grafana-e2e-'));
      app = await startHttpServer((_req, res) => res.end('ok'));
      proxy = await startFaultProxy({ host: '127.0.0.1', port: app.port });
      const port = await freePort();
      writeFileSync(
        join(work, 'sidecar.yaml'),
        `server: { port: ${port}, host: 127.0.0.1, drainDelay: 0s }
telemetry: { serviceName: dashboard-test, traces: { enabled: false } }
defaults: { interval: 250ms, timeout: 200ms, retry: { attempts: 2, backoff: { initial: 10ms, max: 20ms } }, thresholds: { failure: 1, success: 1 }, slo: { objective: 99%, window: 7d } }
checks:
  - { name: web, kind: http, url: '${app.url}/healthz', groups: [live, ready, startup] }
  - { name: cache, kind: redis, url: '${REDIS_URL}' }
  - { name: db, kind: postgres, url: '${DATABASE_URL}' }
  - { name: flaky, kind: tcp, url: 'tcp://127.0.0.1:${proxy.port}', critical: false, breaker: { failures: 2, halfOpenAfter: 1s } }
`,
      );
      sidecar = startChild(process.execPath, [join(ROOT, 'dist/cli.js'), 'run', '--config', join(work, 'sidecar.yaml')], { env: { ...process.env, LOG_LEVEL: 'warn', OTEL_TRACES_EXPORTER: 'none' } });
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined))?.status === 200, { timeoutMs: 30_000, what: 'sidecar /metrics' });

      const promPort = await freePort();
      promUrl = `http://127.0.0.1:${promPort}`;
      writeFileSync(join(work, 'prometheus.yml'), `global: { scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: ${JOB}\n    static_configs: [{ targets: ['127.0.0.1:${port}'] }]\n`);
      prometheus = startChild('prometheus', [`--config.file=${join(work, 'prometheus.yml')}`, `--storage.tsdb.path=${join(work, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { cwd: work });
      await waitFor(async () => (await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.status === 200, { timeoutMs: 30_000, what: 'prometheus ready' });

      // make things happen: the flaky dependency refuses (failures, retries, breaker opens, DOWN), then recovers
      await waitFor(async () => ((await query(`healthcheck_status{healthcheck_name="flaky"} == 1`)).data?.result.length ?? 0) > 0, { timeoutMs: 30_000, what: 'flaky UP scraped' });
      proxy.setMode('refuse');
      await waitFor(async () => ((await query(`healthcheck_breaker_state{healthcheck_name="flaky"} == 2`)).data?.result.length ?? 0) > 0, { timeoutMs: 30_000, what: 'open breaker scraped' });
      await waitFor(async () => ((await query(`healthcheck_status{healthcheck_name="flaky"} == 0`)).data?.result.length ?? 0) > 0, { timeoutMs: 30_000, what: 'flaky DOWN scraped' });
      proxy.setMode('pass');
      await proxy.ready();
      await waitFor(async () => ((await query(`healthcheck_status{healthcheck_name="flaky"} == 1 and on () count(healthcheck_transitions_total{healthcheck_name="flaky", healthcheck_from="DOWN", healthcheck_to="UP"}) > 0`)).data?.result.length ?? 0) > 0, { timeoutMs: 30_000, what: 'flaky back UP' });
      // enough scrapes for rate() windows and a GC for the runtime panels
      await waitFor(async () => ((await query(`count_over_time(up{job="${JOB}"}[1m]) >= 10`)).data?.result.length ?? 0) > 0, { timeoutMs: 30_000, what: '10 scrapes' });
      await waitFor(async () => ((await query('v8js_gc_duration_seconds_count')).data?.result.length ?? 0) > 0, { timeoutMs: 30_000, what: 'a GC recorded' });
    });

    after(async () => {
      await prometheus?.kill();
      await sidecar?.kill();
      await proxy?.close();
      await app?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    test('every panel query is valid PromQL and returns data', { timeout: 300_000 }, async () => {
      const empty: string[] = [];
      let count = 0;
      for (const panel of allPanels) {
        for (const target of panel.targets!) {
          const expr = substitute(target.expr);
          assert.doesNotMatch(expr, /\$/, `${panel.title}/${target.refId}: every variable substituted`);
          const result = await query(expr);
          assert.equal(result.status, 'success', `${panel.title}/${target.refId}: ${expr}\n${result.error ?? ''}`);
          count++;
          if (!result.data!.result.length) empty.push(`${panel.title}/${target.refId}: ${expr}`);
        }
      }
      assert.deepEqual(empty, [], 'queries that returned no data');
      assert.ok(count >= 20, `${count} queries ran`);
      // the checker itself rejects bad PromQL and notices empty results
      assert.equal((await query('sum by (le (rate(x[1m]))')).status, 'error');
      assert.equal((await query('healthcheck_status{healthcheck_name="no-such-check"}')).data!.result.length, 0);
    });

    test('template variables resolve to the running job, instance and checks', async () => {
      const values = async (label: string, match: string) => {
        const res = await fetch(`${promUrl}/api/v1/label/${label}/values?${new URLSearchParams({ 'match[]': match })}`);
        return ((await res.json()) as { data: string[] }).data;
      };
      for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
        const q = typeof variable.query === 'string' ? variable.query : variable.query.query;
        const m = /^label_values\((.+), (\w+)\)$/.exec(q);
        assert.ok(m, `${variable.name}: label_values(selector, label)`);
        const got = await values(m[2]!, substitute(m[1]!));
        assert.ok(got.length > 0, `${variable.name} has values`);
        if (variable.name === 'job') assert.deepEqual(got, [JOB]);
        if (variable.name === 'check') assert.deepEqual(got, ['cache', 'db', 'flaky', 'web']);
        if (variable.allValue) assert.equal(variable.allValue, '.+');
      }
    });

    test('every metric the alert rules use exists in the real scrape', async () => {
      const rules = parse(readFileSync(join(DEPLOY, 'prometheus/rules.yaml'), 'utf8')) as { groups: { rules: { expr: string; record?: string }[] }[] };
      const recorded = new Set(rules.groups.flatMap((g) => g.rules.map((r) => r.record).filter(Boolean)));
      // metric names: identifiers left after removing label matchers, grouping clauses, strings, ranges and function calls
      const metricNames = (expr: string) =>
        expr
          .replace(/\{[^}]*\}/g, ' ')
          .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
          .replace(/"[^"]*"|\[[^\]]*\]/g, ' ')
          .replace(/\b[a-z_]+\s*\(/g, ' (')
          .match(/\b[a-zA-Z_:][a-zA-Z0-9_:]*\b/g)
          ?.filter((t) => !['and', 'or', 'unless', 'bool', 'offset'].includes(t)) ?? [];
      const names = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => metricNames(r.expr))));
      const missing: string[] = [];
      for (const name of names) {
        if (recorded.has(name)) continue;
        if (!(await query(`count(${name}{job="${JOB}"})`)).data?.result.length) missing.push(name);
      }
      assert.deepEqual(missing, []);
      assert.deepEqual([...names].filter((n) => !recorded.has(n)).sort(), [
        'healthcheck_breaker_state',
        'healthcheck_config_reload_failures_total',
        'healthcheck_probe_duration_seconds_bucket',
        'healthcheck_probe_duration_seconds_count',
        'healthcheck_runs_total',
        'healthcheck_slo_objective_ratio',
        'healthcheck_status',
        'healthcheck_transitions_total',
        'up',
      ]);
      // and the rules evaluate to something against real data (the SLO ratio exists for every check)
      const ratio = await query(rules.groups[0]!.rules[0]!.expr.replace(/\n/g, ' '));
      assert.equal(ratio.status, 'success');
      assert.equal(ratio.data!.result.length, 4);
    });

    test('promtool check metrics accepts the sidecar output the dashboard reads', async () => {
      const res = await fetch(`${promUrl}/api/v1/targets`);
      const targets = ((await res.json()) as { data: { activeTargets: { health: string; scrapeUrl: string }[] } }).data.activeTargets;
      assert.deepEqual(targets.map((t) => t.health), ['up']);
      const text = await (await fetch(targets[0]!.scrapeUrl)).text();
      writeFileSync(join(work, 'metrics.txt'), text);
      const lint = await run('sh', ['-c', `promtool check metrics < ${join(work, 'metrics.txt')}`]);
      // db.client.connection.count is the semantic conventions' name (the Collector writes it the same
      // way); promtool's lint dislikes "_count" on a gauge: that one line (exit 3) is expected (issue 21.7)
      const SEMCONV_NAME = 'db_client_connection_count non-histogram and non-summary metrics should not have "_count" suffix\n';
      const output = lint.stdout + lint.stderr;
      assert.equal(output.replace(SEMCONV_NAME, ''), '');
      assert.equal(lint.code, output === SEMCONV_NAME ? 3 : 0, output);
    });
  });
});
