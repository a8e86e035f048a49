/**
 * deploy/prometheus rules and scrape config, checked by the real promtool:
 * `promtool check rules`, `promtool test rules` on tests/rules.test.yaml (every
 * alert has a firing and a silent case), a mutated copy must fail those tests,
 * the PrometheusRule carries exactly the same groups, and prometheus.yml passes
 * `promtool check config`. promtool is required (Debian package "prometheus").
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { DEPLOY, run } from './support';

const PROM = join(DEPLOY, 'prometheus');
type RuleGroup = { name: string; interval?: string; rules: { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] };
const rulesFile = parse(readFileSync(join(PROM, 'rules.yaml'), 'utf8')) as { groups: RuleGroup[] };
const alerts = rulesFile.groups.flatMap((g) => g.rules).filter((r) => r.alert);
const records = rulesFile.groups.flatMap((g) => g.rules).filter((r) => r.record);

async function promtool(args: string[], cwd = PROM) {
  return run('promtool', args, { cwd });
}

describe('Prometheus rules (promtool)', () => {
  let work: string;
  before(() => {
    const found = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    assert.equal(found.error, undefined, `promtool is required for these tests (apt-get install prometheus): ${String(found.error)}`);
    work = mkdtempSync(join(tmpdir(), 'promrules-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('promtool check rules: rules.yaml is valid', async () => {
    const result = await promtool(['check', 'rules', 'rules.yaml']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, new RegExp(`SUCCESS: ${alerts.length + records.length} rules found`));
  });

  test('an alert reads recording rules of its own group only, recorded before it (groups are evaluated concurrently)', () => {
    for (const group of rulesFile.groups) {
      group.rules.forEach((rule, index) => {
        if (!rule.alert) return;
        for (const record of records) {
          if (!rule.expr.includes(record.record!)) continue;
          const at = group.rules.findIndex((r) => r.record === record.record);
          assert.ok(at >= 0 && at < index, `${rule.alert} (group ${group.name}) reads ${record.record}, which must be recorded earlier in the same group`);
        }
      });
    }
  });

  test('promtool test rules: every alert fires when it should and stays silent when it should not', async () => {
    const result = await promtool(['test', 'rules', 'tests/rules.test.yaml']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS/);
    // coverage: each alert has at least one firing and one silent expectation
    const tests = parse(readFileSync(join(PROM, 'tests/rules.test.yaml'), 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[]; promql_expr_test?: { expr: string }[] }[] };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of alerts) {
      assert.ok(cases.some((c) => c.alertname === alert.alert && c.exp_alerts.length > 0), `${alert.alert} has a firing case`);
      assert.ok(cases.some((c) => c.alertname === alert.alert && c.exp_alerts.length === 0), `${alert.alert} has a silent case`);
    }
    // every recording rule feeds an alert
    for (const record of records) assert.ok(alerts.some((a) => a.expr.includes(record.record!)), `${record.record} is used by an alert`);
    // the burn-rate alerts sit in the group of the records they read, after them (rules of one group
    // run in order; groups run concurrently, so an alert elsewhere could read a record one step off)
    assert.deepEqual(alerts.map((a) => a.alert), [
      'HealthCheckLatencyBudgetBurn',
      'HealthCheckLatencyBudgetBurnSlow',
      'HealthCheckErrorBudgetBurnFast',
      'HealthCheckErrorBudgetBurn',
      'HealthCheckErrorBudgetBurnSlow',
      'HealthCheckDown',
      'HealthCheckDegraded',
      'HealthCheckBreakerOpen',
      'HealthCheckFlapping',
      'HealthSidecarAbsent',
      'HealthSidecarConfigReloadFailed',
    ]);
  });

  test('the rule tests catch a wrong rule (a mutated copy fails)', async () => {
    const mutations: [string, string, string][] = [
      ['HealthCheckDown', 'for: 5m', 'for: 1m'],
      ['HealthCheckBreakerOpen', 'healthcheck_breaker_state == 2', 'healthcheck_breaker_state >= 1'],
      ['HealthCheckLatencyBudgetBurn', 'le="0.25", healthcheck_outcome!="rejected"}[5m]', 'le="0.25"}[5m]'],
      // availability SLO: the 6x page at the 14.4x threshold; rejected runs left out of the 1 h ratio
      ['HealthCheckErrorBudgetBurn', '(6 * healthcheck:slo_error_budget:ratio)', '(14.4 * healthcheck:slo_error_budget:ratio)'],
      ['HealthCheckErrorBudgetBurnFast', 'rate(healthcheck_runs_total[1h])', 'rate(healthcheck_runs_total{healthcheck_outcome!="rejected"}[1h])'],
    ];
    for (const [alert, from, to] of mutations) {
      cpSync(join(PROM, 'tests'), join(work, 'tests'), { recursive: true });
      const original = readFileSync(join(PROM, 'rules.yaml'), 'utf8');
      assert.ok(original.includes(from), `${from} in rules.yaml`);
      writeFileSync(join(work, 'rules.yaml'), original.replace(from, to));
      const result = await promtool(['test', 'rules', 'tests/rules.test.yaml'], work);
      assert.equal(result.code, 1, `mutation of ${alert} (${from} → ${to}) must fail the tests`);
      assert.match(result.stdout + result.stderr, /FAILED/);
    }
  });

  test('prometheusrule.yaml is a PrometheusRule with exactly the groups of rules.yaml', () => {
    const wrapped = parse(readFileSync(join(PROM, 'prometheusrule.yaml'), 'utf8')) as { apiVersion: string; kind: string; metadata: { name: string; labels: Record<string, string> }; spec: { groups: RuleGroup[] } };
    assert.equal(wrapped.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(wrapped.kind, 'PrometheusRule');
    assert.equal(wrapped.metadata.name, 'health-sidecar');
    assert.deepEqual(Object.keys(wrapped.spec), ['groups']);
    assert.deepEqual(wrapped.spec.groups, rulesFile.groups);
  });

  test('prometheus.yml (non-Kubernetes scrape config) passes promtool check config and scrapes job="health-sidecar" on 9464', async () => {
    const result = await promtool(['check', 'config', 'prometheus.yml']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS: prometheus\.yml is valid prometheus config file syntax/);
    const config = parse(readFileSync(join(PROM, 'prometheus.yml'), 'utf8')) as { rule_files: string[]; scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[] };
    assert.deepEqual(config.rule_files, ['rules.yaml']);
    assert.deepEqual(config.scrape_configs.map((s) => [s.job_name, s.metrics_path, s.static_configs.flatMap((c) => c.targets)]), [['health-sidecar', '/metrics', ['health-sidecar:9464']], ['otel-collector', undefined, ['otel-collector:8889']]]);
    // the job the rules select is the job this config defines
    for (const alert of alerts.filter((a) => a.expr.includes('job='))) assert.match(alert.expr, /job="health-sidecar"/);
    // a broken config is refused (so the check is real)
    writeFileSync(join(work, 'bad.yml'), 'scrape_configs:\n  - job_name: x\n    scrape_interval: often\n');
    assert.notEqual((await promtool(['check', 'config', 'bad.yml'], work)).code, 0);
  });
});
