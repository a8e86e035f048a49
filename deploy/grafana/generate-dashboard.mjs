// Generates dashboard.json (node deploy/grafana/generate-dashboard.mjs). Edit this, not the JSON;
// test/deploy/grafana-dashboard.test.ts checks the two agree and runs every query against a real Prometheus.
import { writeFileSync } from 'node:fs';
const ds = { type: 'prometheus', uid: '${datasource}' };
const sel = 'job="$job", instance=~"$instance"';
const chk = `${sel}, healthcheck_name=~"$check"`;
let id = 0;
const panels = [];
let y = 0;
const row = (title) => { panels.push({ id: ++id, type: 'row', title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] }); y += 1; };
const panel = (p, w, h, x) => { panels.push({ id: ++id, datasource: ds, ...p, gridPos: { h, w, x, y } }); };
const t = (expr, legendFormat, refId = 'A', extra = {}) => ({ datasource: ds, expr, legendFormat, refId, ...extra });
const statusMap = (m) => [{ type: 'value', options: Object.fromEntries(Object.entries(m).map(([k, [text, color]]) => [k, { text, color, index: Number(k) }])) }];

row('Status');
panel({ type: 'stat', title: 'Group status', description: 'Kubelet probe groups: UP (2), DEGRADED (1: only non-critical checks down), DOWN (0). The worst instance wins.',
  targets: [t(`min by (healthcheck_group) (healthcheck_group_status{${sel}})`, '{{healthcheck_group}}')],
  fieldConfig: { defaults: { mappings: statusMap({ 0: ['DOWN', 'red'], 1: ['DEGRADED', 'orange'], 2: ['UP', 'green'] }), thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'orange', value: 1 }, { color: 'green', value: 2 }] }, color: { mode: 'thresholds' } }, overrides: [] },
  options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'none', textMode: 'value_and_name', orientation: 'horizontal' } }, 8, 6, 0);
panel({ type: 'state-timeline', title: 'Status per check', description: 'healthcheck_status: 1 UP, 0 DOWN (after hysteresis). Missing until the first result.',
  targets: [t(`min by (healthcheck_name) (healthcheck_status{${chk}})`, '{{healthcheck_name}}')],
  fieldConfig: { defaults: { mappings: statusMap({ 0: ['DOWN', 'red'], 1: ['UP', 'green'] }), thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] }, color: { mode: 'thresholds' } }, overrides: [] },
  options: { showValue: 'never', mergeValues: true, rowHeight: 0.8 } }, 16, 6, 8);
y += 6;
panel({ type: 'table', title: 'Checks now', description: 'Current status, breaker, consecutive failures and time since the last success per check and instance.',
  targets: [
    t(`max by (instance, healthcheck_name, healthcheck_kind, healthcheck_critical) (healthcheck_status{${chk}})`, '', 'A', { format: 'table', instant: true }),
    t(`max by (instance, healthcheck_name) (healthcheck_breaker_state{${chk}})`, '', 'B', { format: 'table', instant: true }),
    t(`max by (instance, healthcheck_name) (healthcheck_consecutive_failures{${chk}})`, '', 'C', { format: 'table', instant: true }),
    t(`time() - max by (instance, healthcheck_name) (healthcheck_last_success_seconds{${chk}})`, '', 'D', { format: 'table', instant: true }),
  ],
  transformations: [{ id: 'merge', options: {} }, { id: 'organize', options: { excludeByName: { Time: true }, renameByName: { 'Value #A': 'status', 'Value #B': 'breaker', 'Value #C': 'consecutive failures', 'Value #D': 'since last success (s)' } } }],
  fieldConfig: { defaults: {}, overrides: [
    { matcher: { id: 'byName', options: 'status' }, properties: [{ id: 'mappings', value: statusMap({ 0: ['DOWN', 'red'], 1: ['UP', 'green'] }) }, { id: 'custom.cellOptions', value: { type: 'color-background' } }] },
    { matcher: { id: 'byName', options: 'breaker' }, properties: [{ id: 'mappings', value: statusMap({ 0: ['closed', 'green'], 1: ['half-open', 'orange'], 2: ['open', 'red'] }) }, { id: 'custom.cellOptions', value: { type: 'color-background' } }] },
    { matcher: { id: 'byName', options: 'since last success (s)' }, properties: [{ id: 'unit', value: 's' }] },
  ] },
  options: { showHeader: true } }, 24, 7, 0);
y += 7;

row('Probes');
panel({ type: 'timeseries', title: 'Probe latency p50 / p95 / p99', description: 'From the healthcheck.probe.duration histogram (per attempt, rejected attempts left out).',
  targets: [0.5, 0.95, 0.99].map((q, i) => t(`histogram_quantile(${q}, sum by (le, healthcheck_name) (rate(healthcheck_probe_duration_seconds_bucket{${chk}, healthcheck_outcome!="rejected"}[$__rate_interval])))`, `{{healthcheck_name}} p${Math.round(q * 100)}`, 'ABC'[i])),
  fieldConfig: { defaults: { unit: 's', custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 0 } }, overrides: [] },
  options: { legend: { displayMode: 'table', placement: 'right', calcs: ['mean', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } } }, 12, 8, 0);
panel({ type: 'timeseries', title: 'Probe outcomes', description: 'Attempts per second by outcome: success, failure, timeout, rejected (breaker open).',
  targets: [t(`sum by (healthcheck_name, healthcheck_outcome) (rate(healthcheck_probe_duration_seconds_count{${chk}}[$__rate_interval]))`, '{{healthcheck_name}} {{healthcheck_outcome}}')],
  fieldConfig: { defaults: { unit: 'ops', custom: { drawStyle: 'line', stacking: { mode: 'normal', group: 'A' }, fillOpacity: 30 } }, overrides: [] },
  options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } } }, 12, 8, 12);
y += 8;
panel({ type: 'timeseries', title: 'Attempts and retries', description: 'Attempts that reached the dependency per second, and the share that failed (each failed attempt below the last of a run is retried).',
  targets: [
    t(`sum by (healthcheck_name) (rate(healthcheck_probe_attempts_total{${chk}}[$__rate_interval]))`, '{{healthcheck_name}} attempts/s', 'A'),
    t(`sum by (healthcheck_name) (rate(healthcheck_probe_duration_seconds_count{${chk}, healthcheck_outcome=~"failure|timeout"}[$__rate_interval])) / sum by (healthcheck_name) (rate(healthcheck_probe_attempts_total{${chk}}[$__rate_interval]))`, '{{healthcheck_name}} failed share', 'B'),
  ],
  fieldConfig: { defaults: { unit: 'ops' }, overrides: [{ matcher: { id: 'byFrameRefID', options: 'B' }, properties: [{ id: 'unit', value: 'percentunit' }, { id: 'custom.axisPlacement', value: 'right' }] }] },
  options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } } }, 8, 8, 0);
panel({ type: 'state-timeline', title: 'Circuit breaker', description: 'healthcheck_breaker_state: 0 closed, 1 half-open, 2 open (probes rejected without a connection).',
  targets: [t(`max by (healthcheck_name) (healthcheck_breaker_state{${chk}})`, '{{healthcheck_name}}')],
  fieldConfig: { defaults: { mappings: statusMap({ 0: ['closed', 'green'], 1: ['half-open', 'orange'], 2: ['open', 'red'] }), color: { mode: 'thresholds' }, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 1 }, { color: 'red', value: 2 }] } }, overrides: [] },
  options: { showValue: 'never', mergeValues: true } }, 8, 8, 8);
panel({ type: 'bargauge', title: 'State transitions (in range)', description: 'healthcheck_transitions_total by check and new state over the dashboard range.',
  targets: [t(`sum by (healthcheck_name, healthcheck_to) (increase(healthcheck_transitions_total{${chk}}[$__range]))`, '{{healthcheck_name}} → {{healthcheck_to}}', 'A', { instant: true })],
  fieldConfig: { defaults: { unit: 'short', decimals: 0, color: { mode: 'palette-classic' } }, overrides: [] },
  options: { orientation: 'horizontal', displayMode: 'basic', reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false } } }, 8, 8, 16);
y += 8;
panel({ type: 'timeseries', title: 'Consecutive failures', description: 'Hysteresis input: a check flips to DOWN at thresholds.failure.',
  targets: [t(`max by (healthcheck_name) (healthcheck_consecutive_failures{${chk}})`, '{{healthcheck_name}}')],
  fieldConfig: { defaults: { unit: 'short', decimals: 0 }, overrides: [] }, options: { legend: { displayMode: 'list', placement: 'bottom' } } }, 12, 7, 0);
panel({ type: 'timeseries', title: 'Time since last success', description: 'Seconds since each check last passed.',
  targets: [t(`time() - max by (healthcheck_name) (healthcheck_last_success_seconds{${chk}})`, '{{healthcheck_name}}')],
  fieldConfig: { defaults: { unit: 's' }, overrides: [] }, options: { legend: { displayMode: 'list', placement: 'bottom' } } }, 12, 7, 12);
y += 7;

row('SLO');
// availability over each check's own SLO window, whatever that window is: remaining = 1 - (1 - A) / (1 - objective),
// so A = 1 - (1 - remaining) * (1 - objective) (both gauges are of the SLO window)
const sloWindowAvailability = `1 - (1 - min by (healthcheck_name) (healthcheck_slo_error_budget_remaining_ratio{${chk}})) * (1 - max by (healthcheck_name) (healthcheck_slo_objective_ratio{${chk}}))`;
const errorRatio = (w) => `(1 - sum by (healthcheck_name) (rate(healthcheck_runs_total{${chk}, healthcheck_outcome="success"}[${w}])) / sum by (healthcheck_name) (rate(healthcheck_runs_total{${chk}}[${w}])))`;
const budget = `(1 - max by (healthcheck_name) (healthcheck_slo_objective_ratio{${chk}}))`;
panel({ type: 'timeseries', title: 'Availability vs objective', description: 'Availability over each check\'s SLO window as the sidecar computes it (successful runs / runs; runs rejected by an open breaker count as failed), against its objective (dashed): 1 - (1 - budget remaining) x (1 - objective), both gauges of the SLO window. Checks with an slo: only; refreshed once a minute.',
  targets: [
    t(sloWindowAvailability, '{{healthcheck_name}}', 'A'),
    t(`max by (healthcheck_name) (healthcheck_slo_objective_ratio{${chk}})`, '{{healthcheck_name}} objective', 'B'),
  ],
  fieldConfig: { defaults: { unit: 'percentunit', decimals: 3, max: 1 }, overrides: [{ matcher: { id: 'byFrameRefID', options: 'B' }, properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }, { id: 'custom.lineWidth', value: 1 }] }] },
  options: { legend: { displayMode: 'table', placement: 'right', calcs: ['lastNotNull', 'min'] }, tooltip: { mode: 'multi', sort: 'asc' } } }, 12, 8, 0);
panel({ type: 'bargauge', title: 'Error budget remaining', description: 'Share of the error budget of the SLO window left: 100% untouched, 0 spent, below 0 overspent. From healthcheck_slo_error_budget_remaining_ratio.',
  targets: [t(`min by (healthcheck_name) (healthcheck_slo_error_budget_remaining_ratio{${chk}})`, '{{healthcheck_name}}', 'A', { instant: true })],
  fieldConfig: { defaults: { unit: 'percentunit', min: 0, max: 1, decimals: 1, thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'orange', value: 0.25 }, { color: 'green', value: 0.5 }] }, color: { mode: 'thresholds' } }, overrides: [] },
  options: { orientation: 'horizontal', displayMode: 'gradient', showUnfilled: true, reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false } } }, 12, 8, 12);
y += 8;
panel({ type: 'table', title: 'Availability per window', description: 'healthcheck_slo_availability_ratio over 1h, 24h, 7d and 30d per check (the sidecar\'s uptime history; rejected runs count as failed).',
  targets: [t(`min by (healthcheck_name, healthcheck_window) (healthcheck_slo_availability_ratio{${chk}, healthcheck_window=~"1h|24h|7d|30d"})`, '', 'A', { format: 'table', instant: true })],
  transformations: [{ id: 'groupingToMatrix', options: { columnField: 'healthcheck_window', rowField: 'healthcheck_name', valueField: 'Value' } }, { id: 'organize', options: { indexByName: { 'healthcheck_name\\healthcheck_window': 0, '1h': 1, '24h': 2, '7d': 3, '30d': 4 } } }],
  fieldConfig: { defaults: { unit: 'percentunit', decimals: 3 }, overrides: [] },
  options: { showHeader: true } }, 8, 8, 0);
panel({ type: 'timeseries', title: 'Burn rate', description: 'Error ratio over the window / error budget, from healthcheck_runs_total (all replicas): 1 spends the budget exactly over the SLO window. The alert rules page at 14.4 over 1h and 5m, and at 6 over 6h and 30m; they open a ticket at 1 over 3d and 6h.',
  targets: ['5m', '1h', '6h', '3d'].map((w, i) => t(`${errorRatio(w)} / ${budget}`, `{{healthcheck_name}} ${w}`, 'ABCD'[i])),
  fieldConfig: { defaults: { unit: 'x', min: 0, custom: { thresholdsStyle: { mode: 'line+area' } }, thresholds: { mode: 'absolute', steps: [{ color: 'transparent', value: null }, { color: 'yellow', value: 1 }, { color: 'orange', value: 6 }, { color: 'red', value: 14.4 }] } }, overrides: [] },
  options: { legend: { displayMode: 'table', placement: 'right', calcs: ['lastNotNull', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } } }, 16, 8, 8);
y += 8;

row('Sidecar runtime');
panel({ type: 'timeseries', title: 'Event loop delay', description: 'Node.js event loop delay (instrumentation-runtime-node). Probes are answered from memory; a slow loop delays every answer.',
  targets: [
    t(`max by (instance) (nodejs_eventloop_delay_p50_seconds{${sel}})`, '{{instance}} p50', 'A'),
    t(`max by (instance) (nodejs_eventloop_delay_p99_seconds{${sel}})`, '{{instance}} p99', 'B'),
    t(`max by (instance) (nodejs_eventloop_delay_max_seconds{${sel}})`, '{{instance}} max', 'C'),
  ],
  fieldConfig: { defaults: { unit: 's' }, overrides: [] }, options: { legend: { displayMode: 'list', placement: 'bottom' } } }, 8, 7, 0);
panel({ type: 'timeseries', title: 'Event loop utilization', description: 'Share of time the event loop was busy.',
  targets: [t(`max by (instance) (nodejs_eventloop_utilization_ratio{${sel}})`, '{{instance}}')],
  fieldConfig: { defaults: { unit: 'percentunit', min: 0, max: 1 }, overrides: [] }, options: { legend: { displayMode: 'list', placement: 'bottom' } } }, 8, 7, 8);
panel({ type: 'timeseries', title: 'V8 heap used', description: 'Heap in use per instance (sum over V8 spaces). Compare with the container memory limit.',
  targets: [t(`sum by (instance) (v8js_memory_heap_used_bytes{${sel}})`, '{{instance}}')],
  fieldConfig: { defaults: { unit: 'bytes' }, overrides: [] }, options: { legend: { displayMode: 'list', placement: 'bottom' } } }, 8, 7, 16);
y += 7;
panel({ type: 'timeseries', title: 'GC time', description: 'Time spent in garbage collection per second, by kind.',
  targets: [t(`sum by (v8js_gc_type) (rate(v8js_gc_duration_seconds_sum{${sel}}[$__rate_interval]))`, '{{v8js_gc_type}}')],
  fieldConfig: { defaults: { unit: 'percentunit' }, overrides: [] }, options: { legend: { displayMode: 'list', placement: 'bottom' } } }, 12, 7, 0);
panel({ type: 'stat', title: 'Config reloads refused (in range)', description: 'Invalid configs refused by hot reload (the old config kept running); see the sidecar log.',
  targets: [t(`sum(increase(healthcheck_config_reload_failures_total{${sel}}[$__range]))`, 'refused', 'A', { instant: true })],
  fieldConfig: { defaults: { unit: 'short', decimals: 0, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 1 }] }, color: { mode: 'thresholds' } }, overrides: [] },
  options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'none' } }, 12, 7, 12);

const dashboard = {
  uid: 'otel-health-sidecar',
  title: 'otel-health-sidecar',
  description: 'Health checks run by otel-health-sidecar: verdicts, probe latency, breakers, retries, and the sidecar process itself.',
  tags: ['health', 'opentelemetry', 'kubernetes'],
  editable: true,
  graphTooltip: 1,
  schemaVersion: 39,
  version: 1,
  refresh: '30s',
  time: { from: 'now-1h', to: 'now' },
  timepicker: {},
  annotations: { list: [] },
  links: [],
  templating: { list: [
    { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0, refresh: 1, regex: '', options: [] },
    { name: 'job', label: 'Job', type: 'query', datasource: ds, query: { query: 'label_values(healthcheck_status, job)', refId: 'job' }, definition: 'label_values(healthcheck_status, job)', current: { text: 'health-sidecar', value: 'health-sidecar' }, refresh: 2, includeAll: false, multi: false, sort: 1, hide: 0, regex: '', options: [] },
    { name: 'instance', label: 'Instance', type: 'query', datasource: ds, query: { query: 'label_values(healthcheck_status{job="$job"}, instance)', refId: 'instance' }, definition: 'label_values(healthcheck_status{job="$job"}, instance)', current: { text: 'All', value: '$__all' }, refresh: 2, includeAll: true, allValue: '.+', multi: true, sort: 1, hide: 0, regex: '', options: [] },
    { name: 'check', label: 'Check', type: 'query', datasource: ds, query: { query: 'label_values(healthcheck_status{job="$job", instance=~"$instance"}, healthcheck_name)', refId: 'check' }, definition: 'label_values(healthcheck_status{job="$job", instance=~"$instance"}, healthcheck_name)', current: { text: 'All', value: '$__all' }, refresh: 2, includeAll: true, allValue: '.+', multi: true, sort: 1, hide: 0, regex: '', options: [] },
  ] },
  panels,
};
writeFileSync(process.argv[2] ?? new URL('./dashboard.json', import.meta.url), `${JSON.stringify(dashboard, null, 2)}\n`);
