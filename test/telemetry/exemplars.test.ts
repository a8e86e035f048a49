/**
 * Exemplars on the probe duration histogram, OpenMetrics on /metrics.
 *
 * (a) Pure: the serializer over hand-made and really collected ResourceMetrics
 *     (names, labels and values equal to the exporter's 0.0.4 text; escaping;
 *     exemplar placement), the ExemplarStore (sampled spans only, bounded),
 *     Accept negotiation.
 * (b) In process: HealthMetrics + a real MeterProvider/PrometheusExporter +
 *     the /metrics handler on a real HTTP server: the plain answer is byte for
 *     byte the exporter's serialisation (the old format), OpenMetrics carries
 *     the sampled span of the record.
 * (c) Grammar: every OpenMetrics text here passes a strict checker (below) and
 *     Prometheus's own OpenMetrics parser (`promtool tsdb create-blocks-from
 *     openmetrics`; `promtool check metrics` only reads the 0.0.4 format, so it
 *     checks the plain answer). Both are shown to reject broken input.
 * (d) Live: the compiled CLI with traces to a real OTLP receiver, scraped with
 *     and without OpenMetrics, and by a real Prometheus with
 *     --enable-feature=exemplar-storage whose /api/v1/query_exemplars returns
 *     exemplars whose trace and span ids are spans the receiver got.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { context, INVALID_SPAN_CONTEXT, ROOT_CONTEXT, trace, TraceFlags, type SpanContext } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, MeterProvider, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import pino from 'pino';
import type { CheckConfig } from '../../src/config/types';
import { bucketIndex, ExemplarStore, seriesKey, type Exemplar } from '../../src/telemetry/exemplars';
import { HealthMetrics, metricViews, PrometheusRenderer, PROMETHEUS_CONTENT_TYPE, translateForPrometheus } from '../../src/telemetry/metrics';
import { metricsHandler } from '../../src/server/metrics-route';
import { escapeLabelValue, negotiateMetricsFormat, OPENMETRICS_CONTENT_TYPE, serializeOpenMetrics } from '../../src/telemetry/openmetrics';
import { METRIC, PROBE_DURATION_BUCKETS, SCOPE } from '../../src/telemetry/semconv';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver';
import { freePort, REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { parsePrometheus, PROMETHEUS, startCli, startScrapingPrometheus, tempDir, type CliProcess, type ScrapingPrometheus } from './support';
import { ensureBuilt } from '../helpers/paths';
import { request } from '../helpers/http';

const PROMTOOL = '/usr/bin/promtool';
/** what Prometheus 2.x sends */
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2';

// ---- a strict OpenMetrics 1.0 text checker ------------------------------------------

interface OmSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestamp?: number;
  exemplar?: { labels: Record<string, string>; value: number; timestamp?: number };
}

interface OmFamily {
  name: string;
  type?: string;
  unit?: string;
  help?: string;
  samples: OmSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const NUMBER = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/;

function parseNumber(text: string, where: string): number {
  assert.match(text, NUMBER, `not a number: "${text}" in ${where}`);
  return text === '+Inf' || text === 'Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text);
}

/** An escaped string up to (not including) the closing quote; only \\ \" \n escapes. */
function unescape(text: string, where: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') assert.fail(`raw newline in ${where}`);
    if (c === '"') assert.fail(`unescaped quote in ${where}`);
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = text[++i];
    if (next === '\\') out += '\\';
    else if (next === '"') out += '"';
    else if (next === 'n') out += '\n';
    else assert.fail(`bad escape \\${next} in ${where}`);
  }
  return out;
}

/** `{a="x",b="y"}` at `pos` → labels and the position after `}` */
function readLabels(line: string, pos: number): { labels: Record<string, string>; end: number; chars: number } {
  assert.equal(line[pos], '{', `expected { in: ${line}`);
  const labels: Record<string, string> = {};
  let chars = 0;
  let i = pos + 1;
  if (line[i] === '}') return { labels, end: i + 1, chars };
  for (;;) {
    const eq = line.indexOf('="', i);
    assert.ok(eq > i, `bad label in: ${line}`);
    const name = line.slice(i, eq);
    assert.match(name, LABEL_NAME, `bad label name "${name}" in: ${line}`);
    assert.ok(!(name in labels), `label ${name} repeated in: ${line}`);
    let j = eq + 2;
    while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
    assert.ok(j < line.length, `unterminated label value in: ${line}`);
    labels[name] = unescape(line.slice(eq + 2, j), line);
    chars += [...name].length + [...labels[name]!].length;
    i = j + 1;
    if (line[i] === ',') {
      i++;
      continue;
    }
    assert.equal(line[i], '}', `expected , or } in: ${line}`);
    return { labels, end: i + 1, chars };
  }
}

function parseSampleLine(line: string): OmSample {
  const nameEnd = line.search(/[{ ]/);
  assert.ok(nameEnd > 0, `bad sample line: ${line}`);
  const name = line.slice(0, nameEnd);
  assert.match(name, METRIC_NAME, `bad metric name in: ${line}`);
  let pos = nameEnd;
  let labels: Record<string, string> = {};
  if (line[pos] === '{') ({ labels, end: pos } = readLabels(line, pos));
  assert.equal(line[pos], ' ', `expected one space before the value in: ${line}`);
  const rest = line.slice(pos + 1);
  const hash = rest.indexOf(' # ');
  const main = (hash >= 0 ? rest.slice(0, hash) : rest).split(' ');
  assert.ok(main.length === 1 || main.length === 2, `value [timestamp] expected in: ${line}`);
  const sample: OmSample = { name, labels, value: parseNumber(main[0]!, line) };
  if (main.length === 2) sample.timestamp = parseNumber(main[1]!, line);
  if (hash >= 0) {
    const ex = rest.slice(hash + 3);
    const parsed = readLabels(ex, 0);
    assert.ok(parsed.chars <= 128, `exemplar label set longer than 128 characters in: ${line}`);
    assert.equal(ex[parsed.end], ' ', `expected space after exemplar labels in: ${line}`);
    const parts = ex.slice(parsed.end + 1).split(' ');
    assert.ok(parts.length === 1 || parts.length === 2, `exemplar value [timestamp] expected in: ${line}`);
    sample.exemplar = { labels: parsed.labels, value: parseNumber(parts[0]!, line) };
    if (parts.length === 2) sample.exemplar.timestamp = parseNumber(parts[1]!, line);
  }
  return sample;
}

const SUFFIXES: Record<string, string[]> = {
  counter: ['_total', '_created'],
  gauge: [''],
  histogram: ['_bucket', '_count', '_sum', '_created'],
  info: ['_info'],
  unknown: [''],
};

/** Parse OpenMetrics 1.0 text strictly (the subset we write); throws on any violation. */
export function checkOpenMetrics(text: string): Map<string, OmFamily> {
  assert.ok(text.endsWith('# EOF\n') || text.endsWith('# EOF'), 'must end with # EOF');
  const lines = text.replace(/\n$/, '').split('\n');
  assert.equal(lines.pop(), '# EOF');
  assert.ok(!lines.includes('# EOF'), '# EOF only once, at the end');
  const families = new Map<string, OmFamily>();
  let current: OmFamily | undefined;
  const descriptor = (name: string): OmFamily => {
    if (current?.name !== name) {
      assert.ok(!families.has(name), `family ${name} is not contiguous (seen before)`);
      current = { name, samples: [] };
      families.set(name, current);
    }
    assert.equal(current.samples.length, 0, `descriptor for ${name} after its samples`);
    return current;
  };
  for (const line of lines) {
    assert.notEqual(line, '', 'blank line');
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE|UNIT) ([^ ]+)(?: (.*))?$/.exec(line);
      assert.ok(m, `bad comment line (OpenMetrics has only HELP, TYPE, UNIT, EOF): ${line}`);
      const [, kind, name, value = ''] = m;
      assert.match(name!, METRIC_NAME, `bad family name in: ${line}`);
      const family = descriptor(name!);
      if (kind === 'HELP') {
        assert.equal(family.help, undefined, `HELP twice for ${name}`);
        family.help = unescape(value, line);
      } else if (kind === 'TYPE') {
        assert.equal(family.type, undefined, `TYPE twice for ${name}`);
        assert.ok(value in SUFFIXES, `type ${value} in: ${line}`);
        family.type = value;
      } else {
        assert.equal(family.unit, undefined, `UNIT twice for ${name}`);
        assert.match(value, /^[a-zA-Z0-9_:]*$/, `bad unit in: ${line}`);
        assert.ok(value === '' || name!.endsWith(`_${value}`), `family ${name} does not end with its unit ${value}`);
        family.unit = value;
      }
      continue;
    }
    const sample = parseSampleLine(line);
    let family = current;
    const type = family?.type ?? 'unknown';
    if (!family || !SUFFIXES[type]!.some((s) => sample.name === family!.name + s)) {
      // a sample of a family without descriptors
      family = descriptor(sample.name);
      family.type = 'unknown';
    }
    assert.ok(!('le' in sample.labels) || sample.name.endsWith('_bucket'), `le label outside a bucket: ${line}`);
    if (sample.exemplar) assert.ok((type === 'counter' && sample.name.endsWith('_total')) || (type === 'histogram' && sample.name.endsWith('_bucket')), `exemplar on a ${type} ${sample.name}: ${line}`);
    if (type === 'counter' || (type === 'histogram' && !sample.name.endsWith('_sum'))) assert.ok(sample.value >= 0, `negative ${type} value: ${line}`);
    family.samples.push(sample);
  }
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

function checkHistogram(family: OmFamily): void {
  const series = new Map<string, { buckets: OmSample[]; count?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = seriesKey(rest);
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (s.name.endsWith('_bucket')) {
      assert.ok(le !== undefined, `${s.name} without le`);
      entry.buckets.push(s);
    } else if (s.name.endsWith('_count')) entry.count = s.value;
  }
  for (const [key, { buckets, count }] of series) {
    assert.ok(buckets.length > 0, `${family.name} ${key}: no buckets`);
    let previousLe = -Infinity;
    let previousCount = 0;
    for (const b of buckets) {
      const le = parseNumber(b.labels.le!, `${family.name} le`);
      assert.ok(le > previousLe, `${family.name} ${key}: le not increasing`);
      assert.ok(b.value >= previousCount, `${family.name} ${key}: bucket counts not cumulative`);
      if (b.exemplar) assert.ok(b.exemplar.value > previousLe && b.exemplar.value <= le, `${family.name} ${key}: exemplar ${b.exemplar.value} outside (${previousLe}, ${le}]`);
      previousLe = le;
      previousCount = b.value;
    }
    assert.equal(previousLe, Infinity, `${family.name} ${key}: no +Inf bucket`);
    assert.equal(count, previousCount, `${family.name} ${key}: _count differs from the +Inf bucket`);
  }
}

/** Prometheus's own OpenMetrics parser (the backfill path wants a timestamp on every sample). */
function promtoolOpenMetrics(text: string): { ok: boolean; output: string; dump: string } {
  const dir = tempDir('om-promtool-');
  try {
    const file = join(dir.path, 'input.om');
    writeFileSync(file, text);
    const run = spawnSync(PROMTOOL, ['tsdb', 'create-blocks-from', 'openmetrics', file, join(dir.path, 'blocks')], { encoding: 'utf8', timeout: 30_000 });
    let dump = '';
    if (run.status === 0) {
      const blocks = readdirSync(join(dir.path, 'blocks'));
      assert.ok(blocks.length > 0, 'promtool wrote no block');
      mkdirSync(join(dir.path, 'blocks', 'wal')); // `tsdb dump` opens the directory as a TSDB and wants a WAL
      const dumped = spawnSync(PROMTOOL, ['tsdb', 'dump', join(dir.path, 'blocks')], { encoding: 'utf8', timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
      assert.equal(dumped.status, 0, dumped.stderr);
      dump = dumped.stdout;
    }
    return { ok: run.status === 0, output: `${run.stdout}${run.stderr}`, dump };
  } finally {
    dir.remove();
  }
}

function promtoolCheckMetrics(text: string): { ok: boolean; output: string } {
  const run = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
}

/** Give every sample a timestamp (seconds), keeping exemplars where they are. */
function withTimestamps(text: string, seconds: number): string {
  return text
    .split('\n')
    .map((line) => {
      if (line === '' || line.startsWith('#')) return line;
      const sample = parseSampleLine(line);
      if (sample.timestamp !== undefined) return line;
      const hash = line.indexOf(' # {');
      return hash >= 0 ? `${line.slice(0, hash)} ${seconds}${line.slice(hash)}` : `${line} ${seconds}`;
    })
    .join('\n');
}

/** name{labels} without value/timestamp/exemplar, one per sample: the identity of the series. */
function seriesSet(samples: Iterable<{ name: string; labels: Record<string, string> }>): string[] {
  return [...samples].map((s) => `${s.name}${seriesKey(s.labels)}`).sort();
}

// ---- fixtures ------------------------------------------------------------------------

const hr = (ms: number): [number, number] => [Math.floor(ms / 1000), (ms % 1000) * 1e6];
const T0 = 1_700_000_000_000;

function fixture(): ResourceMetrics {
  const point = <T>(attributes: Record<string, string | number | boolean>, value: T) => ({ startTime: hr(T0), endTime: hr(T0 + 5000), attributes, value });
  const metrics: MetricData[] = [
    {
      descriptor: { name: METRIC.probeDuration, unit: 's', description: 'duration; "quoted" \\ back\nslash', valueType: 1, type: 'HISTOGRAM' as never },
      dataPointType: DataPointType.HISTOGRAM,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPoints: [
        point({ 'healthcheck.name': 'web', 'healthcheck.kind': 'http', 'healthcheck.outcome': 'success' }, { buckets: { boundaries: [0.001, 0.01, 0.1], counts: [1, 2, 0, 1] }, count: 4, sum: 0.31, min: 0.0005, max: 0.3 }),
        point({ 'healthcheck.name': 'we"ird\\na\nme', 'healthcheck.kind': 'http', 'healthcheck.outcome': 'failure' }, { buckets: { boundaries: [0.001, 0.01, 0.1], counts: [0, 0, 1, 0] }, count: 1, sum: 0.05 }),
      ],
    } as MetricData,
    {
      descriptor: { name: METRIC.probeAttempts, unit: '{attempt}', description: 'attempts', valueType: 1, type: 'COUNTER' as never },
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPoints: [point({ 'healthcheck.name': 'web', 'healthcheck.kind': 'http' }, 5)],
    } as MetricData,
    {
      descriptor: { name: METRIC.status, unit: '', description: 'status', valueType: 1, type: 'OBSERVABLE_GAUGE' as never },
      dataPointType: DataPointType.GAUGE,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPoints: [point({ 'healthcheck.name': 'web', 'healthcheck.critical': true }, 1)],
    } as MetricData,
    {
      descriptor: { name: 'queue.depth', unit: '{item}', description: 'up-down counter', valueType: 1, type: 'UP_DOWN_COUNTER' as never },
      dataPointType: DataPointType.SUM,
      isMonotonic: false,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPoints: [point({}, -3)],
    } as MetricData,
    {
      descriptor: { name: 'heap.used', unit: 'By', description: '', valueType: 1, type: 'OBSERVABLE_GAUGE' as never },
      dataPointType: DataPointType.GAUGE,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPoints: [point({ 'heap.space': 'new' }, 1024)],
    } as MetricData,
  ];
  return {
    resource: resourceFromAttributes({ 'service.name': 'svc "x"', 'k8s.pod.name': 'pod-1' }),
    scopeMetrics: [
      { scope: { name: SCOPE, version: '1.2.3' }, metrics },
      // the same counter family from another scope: written once, samples together
      {
        scope: { name: 'other' },
        metrics: [{ ...metrics[1]!, dataPoints: [{ ...metrics[1]!.dataPoints[0]!, value: 7 }] } as MetricData],
      },
    ],
  };
}

const ex = (value: number, n: number, timeMs = T0 + n): Exemplar => ({ traceId: n.toString(16).padStart(32, '0'), spanId: n.toString(16).padStart(16, 'a'), value, timeMs });
const webKey = seriesKey({ 'healthcheck.outcome': 'success', 'healthcheck.kind': 'http', 'healthcheck.name': 'web' });

// ---- (a) pure ------------------------------------------------------------------------

describe('OpenMetrics serializer (pure)', () => {
  const text = serializeOpenMetrics(fixture(), {
    exemplars: new Map([[METRIC.probeDuration, new Map([[webKey, [ex(0.0004, 1), ex(0.005, 2), ex(0.004, 3), ex(0.3, 4), ex(0.0008, 5, T0 - 1)]]])]]),
  });

  it('passes the strict grammar check; families, types, units and HELP as the exporter names them', () => {
    const families = checkOpenMetrics(text);
    assert.deepEqual(
      [...families.values()].map((f) => `${f.name} ${f.type}${f.unit ? ` ${f.unit}` : ''}`),
      [
        'target info',
        'healthcheck_probe_duration_seconds histogram seconds',
        'healthcheck_probe_attempts counter',
        'healthcheck_status gauge',
        'queue_depth gauge',
        'heap_used_bytes gauge bytes',
      ],
    );
    assert.equal(families.get('healthcheck_probe_duration_seconds')!.help, 'duration; "quoted" \\ back\nslash');
    assert.match(text, /^# HELP healthcheck_probe_duration_seconds duration; \\"quoted\\" \\\\ back\\nslash$/m);
    assert.equal(families.get('heap_used_bytes')!.help, 'description missing');
    assert.ok(text.endsWith('\n# EOF\n'));
  });

  it('the same samples (names, labels, values) as PrometheusSerializer over translateForPrometheus', () => {
    const om = checkOpenMetrics(text);
    // the 0.0.4 text repeats the family of the second scope (OpenMetrics merges it), so its sample lines are read one by one
    const promText = new PrometheusSerializer('', false).serialize(translateForPrometheus(fixture()));
    const prom = promText.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map(parseSampleLine);
    const flat = (samples: Iterable<{ name: string; labels: Record<string, string>; value: number }>) =>
      [...samples].map((s) => `${s.name}${seriesKey(s.labels)} ${s.value}`).sort();
    assert.deepEqual(flat([...om.values()].flatMap((f) => f.samples)), flat(prom));
    assert.equal(prom.length, 18);
  });

  it('escapes label values (backslash, quote, newline) and attribute names, and keeps non-string values as JSON', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    assert.match(text, /healthcheck_name="we\\"ird\\\\na\\nme"/);
    const samples = [...checkOpenMetrics(text).values()].flatMap((f) => f.samples);
    assert.ok(samples.some((s) => s.labels.healthcheck_name === 'we"ird\\na\nme'), 'round trip through the checker');
    assert.ok(samples.some((s) => s.labels.healthcheck_critical === 'true'));
    const info = samples.find((s) => s.name === 'target_info')!;
    assert.equal(info.labels.service_name, 'svc "x"');
    assert.equal(info.labels.k8s_pod_name, 'pod-1');
  });

  it('exemplars: the latest per bucket, where its value falls, only on the named histogram and series', () => {
    const histogram = checkOpenMetrics(text).get('healthcheck_probe_duration_seconds')!;
    const web = histogram.samples.filter((s) => s.name.endsWith('_bucket') && s.labels.healthcheck_name === 'web');
    assert.deepEqual(
      web.map((s) => [s.labels.le, s.exemplar?.labels.trace_id.replace(/^0+/, '') ?? null, s.exemplar?.value ?? null]),
      [
        ['0.001', '1', 0.0004], // 5 is older than 1 in the same bucket
        ['0.01', '3', 0.004], // 3 is newer than 2
        ['0.1', null, null],
        ['+Inf', '4', 0.3],
      ],
    );
    assert.deepEqual(Object.keys(web[0]!.exemplar!.labels), ['trace_id', 'span_id']);
    assert.equal(web[0]!.exemplar!.timestamp, (T0 + 1) / 1000);
    assert.ok(histogram.samples.filter((s) => s.labels.healthcheck_name !== 'web').every((s) => !s.exemplar));
    const noExemplars = serializeOpenMetrics(fixture());
    assert.ok(!/ # \{/.test(noExemplars));
    // the same snapshot under another instrument name attaches nothing
    assert.ok(!/ # \{/.test(serializeOpenMetrics(fixture(), { exemplars: new Map([['other.histogram', new Map([[webKey, [ex(0.3, 4)]]])]]) })));
  });

  it("Prometheus's OpenMetrics parser (promtool backfill) accepts it, exemplars and escapes included; label values survive", () => {
    const stamped = serializeOpenMetrics(fixture(), { timestampMs: T0 + 5000, exemplars: new Map([[METRIC.probeDuration, new Map([[webKey, [ex(0.3, 4)]]])]]) });
    assert.match(stamped, /le="\+Inf"\} 4 1700000005\.000 # \{trace_id="0+4",span_id="a+4"\} 0\.3 1700000000\.004$/m);
    checkOpenMetrics(stamped);
    const result = promtoolOpenMetrics(stamped);
    assert.ok(result.ok, result.output);
    // the dump quotes label values Go-style (= JSON for these characters)
    assert.ok(result.dump.includes(`healthcheck_name=${JSON.stringify('we"ird\\na\nme')}`), result.dump.slice(0, 2000));
    assert.ok(result.dump.includes('service_name="svc \\"x\\""'), 'target_info label');
    assert.match(result.dump, /^\{__name__="healthcheck_probe_attempts_total", healthcheck_kind="http", healthcheck_name="web", otel_scope_name="other"\} 7 1700000005000$/m);
  });

  it('the checks can fail: the checker and promtool reject broken OpenMetrics', () => {
    const stamped = serializeOpenMetrics(fixture(), { timestampMs: T0 + 5000, exemplars: new Map([[METRIC.probeDuration, new Map([[webKey, [ex(0.3, 4)]]])]]) });
    const broken: [string, string][] = [
      ['no # EOF', stamped.replace('# EOF\n', '')],
      ['unescaped quote in a label value', stamped.replace('we\\"ird', 'we"ird')],
      ['exemplar labels not quoted', stamped.replace(/trace_id="(0+4)"/, 'trace_id=$1')],
    ];
    for (const [what, input] of broken) {
      assert.throws(() => checkOpenMetrics(input), Error, `checker: ${what}`);
      assert.equal(promtoolOpenMetrics(input).ok, false, `promtool: ${what}`);
    }
    // what only the checker sees (promtool's backfill does not check histogram semantics)
    assert.throws(() => checkOpenMetrics(stamped.replace(/(le="0\.01"\} )3/, '$19')), /cumulative|_count/);
    assert.throws(() => checkOpenMetrics(stamped.replace(/ # \{trace_id="0+4",span_id="a+4"\} 0\.3/, (m) => m.replace('0.3', '0.05'))), /outside/);
    assert.throws(() => checkOpenMetrics(stamped.replace('# UNIT heap_used_bytes bytes', '# UNIT heap_used_bytes seconds')), /unit/);
  });
});

describe('ExemplarStore', () => {
  const sampled = (n: number): SpanContext => ({ traceId: n.toString(16).padStart(32, '0'), spanId: n.toString(16).padStart(16, '0'), traceFlags: TraceFlags.SAMPLED });

  it('bucketIndex: a value on a boundary belongs to that bucket (le), above the last one to +Inf', () => {
    const b = [0.001, 0.01];
    assert.deepEqual([0, 0.001, 0.0011, 0.01, 0.02].map((v) => bucketIndex(b, v)), [0, 0, 1, 1, 2]);
  });

  it('keeps only valid, sampled span contexts and finite values', () => {
    const store = new ExemplarStore({ boundaries: PROBE_DURATION_BUCKETS });
    assert.equal(store.offer(0.1, { a: 1 }, undefined), false);
    assert.equal(store.offer(0.1, { a: 1 }, { ...sampled(1), traceFlags: TraceFlags.NONE }), false);
    assert.equal(store.offer(0.1, { a: 1 }, INVALID_SPAN_CONTEXT), false);
    assert.equal(store.offer(NaN, { a: 1 }, sampled(1)), false);
    assert.equal(store.size, 0);
    assert.equal(store.offer(0.1, { a: 1 }, sampled(1)), true);
    assert.equal(store.offer(0.09, { a: 1 }, sampled(2)), true); // same bucket (0.05, 0.1]: replaces
    assert.deepEqual(store.snapshot().get(seriesKey({ a: 1 }))!.map((e) => e.traceId.slice(-1)), ['2']);
  });

  it('is bounded: at most maxSeries attribute sets (least recently updated dropped), one exemplar per bucket', () => {
    const store = new ExemplarStore({ boundaries: [1, 2], maxSeries: 3 });
    for (let i = 0; i < 3; i++) store.offer(0.5, { s: i }, sampled(i + 1));
    store.offer(1.5, { s: 0 }, sampled(9)); // s=0 is now the most recent
    store.offer(0.5, { s: 3 }, sampled(4)); // evicts s=1
    assert.deepEqual([...store.snapshot().keys()], [seriesKey({ s: 2 }), seriesKey({ s: 0 }), seriesKey({ s: 3 })]);
    for (let i = 0; i < 100; i++) store.offer(i % 4, { s: 0 }, sampled(100 + i));
    assert.equal(store.snapshot().get(seriesKey({ s: 0 }))!.length, 3);
    assert.equal(store.size, 3);
  });
});

describe('Accept negotiation', () => {
  const cases: [string | undefined, 'openmetrics' | 'prometheus'][] = [
    [undefined, 'prometheus'],
    ['', 'prometheus'],
    ['*/*', 'prometheus'],
    ['text/plain', 'prometheus'],
    ['text/plain;version=0.0.4;q=1,*/*;q=0.1', 'prometheus'],
    [PROMETHEUS_ACCEPT, 'openmetrics'],
    // Prometheus 3.x
    ['application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2', 'openmetrics'],
    ['application/openmetrics-text', 'openmetrics'],
    ['Application/OpenMetrics-Text; version="1.0.0"', 'openmetrics'],
    ['application/openmetrics-text;q=0.2,text/plain;q=0.9', 'prometheus'],
    ['application/openmetrics-text;q=0', 'prometheus'],
    ['application/openmetrics-text;version=2.0.0', 'prometheus'],
    ['application/openmetrics-text;q=0.5, */*;q=0.5', 'openmetrics'],
  ];
  for (const [accept, expected] of cases) {
    it(`${JSON.stringify(accept)} → ${expected}`, () => assert.equal(negotiateMetricsFormat(accept), expected));
  }
});

// ---- (b) in process: HealthMetrics → handler -------------------------------------------

async function fetchText(port: number, accept?: string): Promise<{ status: number; type: string; vary: string; body: string }> {
  const reply = await request(port, '/metrics', { headers: accept === undefined ? {} : { accept } });
  return { status: reply.status, type: String(reply.headers['content-type']), vary: String(reply.headers.vary), body: reply.body };
}

describe('HealthMetrics and the /metrics handler (in process)', () => {
  let provider: MeterProvider;
  let exporter: PrometheusExporter;
  let server: http.Server;
  let port: number;
  let health: HealthMetrics;
  const manager = new AsyncLocalStorageContextManager();
  const check = (name: string) => ({ name, kind: 'http' }) as CheckConfig;
  const span = (n: number, flags: number): SpanContext => ({ traceId: `${'ab'.repeat(15)}${n.toString(16).padStart(2, '0')}`, spanId: `${'cd'.repeat(7)}${n.toString(16).padStart(2, '0')}`, traceFlags: flags });

  before(async () => {
    context.setGlobalContextManager(manager.enable());
    exporter = new PrometheusExporter({ preventServerStart: true });
    provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': 'in-process' }), readers: [exporter], views: metricViews() });
    health = new HealthMetrics(provider.getMeter(SCOPE));
    const within = (ctx: SpanContext | undefined, fn: () => void) => context.with(ctx ? trace.setSpanContext(ROOT_CONTEXT, ctx) : ROOT_CONTEXT, fn);
    within(span(1, TraceFlags.SAMPLED), () => health.attemptFinished(check('web'), 'success', 3)); // (0.0025, 0.005]
    within(span(2, TraceFlags.SAMPLED), () => health.attemptFinished(check('web'), 'success', 40)); // (0.025, 0.05]
    within(span(3, TraceFlags.NONE), () => health.attemptFinished(check('web'), 'success', 700)); // not sampled
    within(undefined, () => health.attemptFinished(check('web'), 'failure', 12)); // no span
    within(span(4, TraceFlags.SAMPLED), () => health.attemptFinished(check('db "x"'), 'timeout', 20_000)); // +Inf
    const handler = metricsHandler(new PrometheusRenderer(exporter, undefined, () => health.exemplars), pino({ level: 'silent' }));
    server = http.createServer((req, res) => void handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await provider.shutdown();
    context.disable();
  });

  it('without an OpenMetrics Accept: byte for byte the exporter serialisation (the old format), text/plain 0.0.4, no exemplars', async () => {
    for (const accept of [undefined, '*/*', 'text/plain;version=0.0.4', 'application/openmetrics-text;q=0.1,text/plain;q=0.9']) {
      const reply = await fetchText(port, accept);
      const expected = new PrometheusSerializer('', false).serialize(translateForPrometheus((await exporter.collect()).resourceMetrics));
      assert.equal(reply.status, 200);
      assert.equal(reply.type, PROMETHEUS_CONTENT_TYPE);
      assert.equal(reply.body, expected, `Accept: ${accept}`);
      assert.ok(!reply.body.includes('# {') && !reply.body.includes('# EOF'));
      assert.ok(promtoolCheckMetrics(reply.body).ok, promtoolCheckMetrics(reply.body).output);
    }
  });

  it('with the OpenMetrics Accept of Prometheus: exemplars of the sampled spans, each in its bucket; same series as the text', async () => {
    const reply = await fetchText(port, PROMETHEUS_ACCEPT);
    assert.equal(reply.status, 200);
    assert.equal(reply.type, OPENMETRICS_CONTENT_TYPE);
    assert.equal(reply.vary, 'Accept, Accept-Encoding'); // the body varies by Accept and, being over 256 bytes, by Accept-Encoding (server/encoding.ts)
    const families = checkOpenMetrics(reply.body);
    const withExemplar = families
      .get('healthcheck_probe_duration_seconds')!
      .samples.filter((s) => s.exemplar)
      .map((s) => ({ name: s.labels.healthcheck_name, outcome: s.labels.healthcheck_outcome, le: s.labels.le, trace: s.exemplar!.labels.trace_id!.slice(-2), span: s.exemplar!.labels.span_id!.slice(-2), value: s.exemplar!.value }));
    assert.deepEqual(withExemplar, [
      { name: 'web', outcome: 'success', le: '0.005', trace: '01', span: '01', value: 0.003 },
      { name: 'web', outcome: 'success', le: '0.05', trace: '02', span: '02', value: 0.04 },
      { name: 'db "x"', outcome: 'timeout', le: '+Inf', trace: '04', span: '04', value: 20 },
    ]);
    const plain = parsePrometheus((await fetchText(port)).body);
    assert.deepEqual(seriesSet([...families.values()].flatMap((f) => f.samples)), seriesSet([...plain.values()].flatMap((f) => f.samples)));
    const result = promtoolOpenMetrics(withTimestamps(reply.body, Math.floor(Date.now() / 1000)));
    assert.ok(result.ok, result.output);
  });

  it('HEAD with OpenMetrics: headers, no body', async () => {
    const head = await request(port, '/metrics', { method: 'HEAD', headers: { accept: PROMETHEUS_ACCEPT } });
    assert.equal(head.headers['content-type'], OPENMETRICS_CONTENT_TYPE);
    assert.ok(Number(head.headers['content-length']) > 0);
    assert.equal(head.body, '');
  });
});

// ---- (d) live: compiled CLI, OTLP receiver, real Prometheus ----------------------------------

interface ExemplarResult {
  seriesLabels: Record<string, string>;
  exemplars: { labels: Record<string, string>; value: string; timestamp: number }[];
}

describe('live: sidecar with traces, scraped with and without OpenMetrics, and by Prometheus with exemplar storage', () => {
  let receiver: OtlpReceiver;
  let web: TestHttpServer;
  let hole: FaultProxy;
  let cli: CliProcess | undefined;
  let prometheus: ScrapingPrometheus | undefined;

  const scrape = async (accept?: string) => {
    const response = await fetch(`http://127.0.0.1:${cli!.port}/metrics`, { headers: accept ? { accept } : {} });
    return { type: response.headers.get('content-type'), body: await response.text() };
  };

  /** the span an exemplar points at, once the receiver has it */
  const spanOf = (traceId: string, spanId: string): ReceivedSpan | undefined => receiver.spans.find((s) => s.traceId === traceId && s.spanId === spanId);

  before(async () => {
    assert.ok(existsSync(PROMETHEUS) && existsSync(PROMTOOL), `${PROMETHEUS} / ${PROMTOOL} missing: install the Debian package "prometheus"; this test does not skip`);
    ensureBuilt();
    receiver = await startOtlpReceiver();
    web = await startHttpServer((_req, res) => res.writeHead(200).end('ok'));
    const closed = await freePort(); // nothing listens: connection refused
    hole = await startFaultProxy({ host: '127.0.0.1', port: web.port });
    hole.setMode('blackhole'); // every attempt times out: the abort, not the probe, finishes it
    cli = await startCli(
      `
server: { port: 0, host: 127.0.0.1, drainDelay: 0ms, auth: { anonymousRateLimit: 10000/1m } }
telemetry: { serviceName: exemplar-test }
defaults: { interval: 300ms, timeout: 250ms, retry: { attempts: 1 }, breaker: { failures: 3, halfOpenAfter: 1m } }
checks:
  - { name: cache, kind: redis, url: "${REDIS_URL}" }
  - { name: web, kind: http, url: "${web.url}/" }
  - { name: down, kind: http, url: "http://127.0.0.1:${closed}/", critical: false }
  - { name: slow, kind: http, url: "http://127.0.0.1:${hole.port}/", critical: false, breaker: { failures: 1000 } }
`,
      { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' },
    );
    prometheus = await startScrapingPrometheus(cli.port, ['--enable-feature=exemplar-storage']);
  });

  after(async () => {
    await prometheus?.stop();
    if (cli) await cli.stop();
    await hole?.close();
    await web?.close();
    await receiver?.close();
  });

  it('OpenMetrics scrape: exemplars on the probe histogram whose trace and span ids are exported spans of that check', async () => {
    // until every check has an exemplar (down: failure, then rejected once its breaker opened; slow: timeout)
    const body = (await waitFor(
      async () => {
        const { type, body } = await scrape(PROMETHEUS_ACCEPT);
        assert.equal(type, OPENMETRICS_CONTENT_TYPE);
        const outcomes = new Set(checkOpenMetrics(body).get('healthcheck_probe_duration_seconds')!.samples.filter((s) => s.exemplar).map((s) => `${s.labels.healthcheck_name}/${s.labels.healthcheck_outcome}`));
        return ['cache/success', 'web/success', 'down/failure', 'down/rejected', 'slow/timeout'].every((o) => outcomes.has(o)) ? body : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'exemplars for every check and outcome' },
    ))!;
    const samples = checkOpenMetrics(body).get('healthcheck_probe_duration_seconds')!.samples.filter((s) => s.exemplar);
    await receiver.waitFor(() => samples.every((s) => spanOf(s.exemplar!.labels.trace_id!, s.exemplar!.labels.span_id!)), 10_000);
    for (const s of samples) {
      const span = spanOf(s.exemplar!.labels.trace_id!, s.exemplar!.labels.span_id!)!;
      const name = s.labels.healthcheck_name!;
      // an attempt's own span; a breaker rejection made no attempt, so the run's span
      assert.equal(span.name, s.labels.healthcheck_outcome === 'rejected' ? `healthcheck ${name}` : `healthcheck ${name} attempt`);
      assert.equal(span.attributes['healthcheck.name'], name);
      if (s.labels.healthcheck_outcome !== 'rejected') assert.equal(span.attributes['healthcheck.outcome'], s.labels.healthcheck_outcome);
      // the exemplar value is the attempt's duration as the span measured it (± timer granularity)
      const spanSeconds = Number(span.endTimeUnixNano - span.startTimeUnixNano) / 1e9;
      if (s.labels.healthcheck_outcome !== 'rejected') assert.ok(Math.abs(spanSeconds - s.exemplar!.value) < 0.005 + spanSeconds * 0.5, `${name}: exemplar ${s.exemplar!.value}s vs span ${spanSeconds}s`);
    }
    assert.deepEqual(receiver.errors, []);
    const result = promtoolOpenMetrics(withTimestamps(body, Math.floor(Date.now() / 1000)));
    assert.ok(result.ok, result.output);
  });

  it('plain scrape: the 0.0.4 text (promtool check metrics), no exemplars, the same series as OpenMetrics', async () => {
    const plain = await scrape();
    assert.equal(plain.type, PROMETHEUS_CONTENT_TYPE);
    assert.ok(!plain.body.includes('# {') && !plain.body.includes('# EOF') && !plain.body.includes('# UNIT'));
    const checked = promtoolCheckMetrics(plain.body);
    assert.ok(checked.ok, checked.output);
    const om = checkOpenMetrics((await scrape(PROMETHEUS_ACCEPT)).body);
    // series appear only after a first record (e.g. the next attempt's outcome): compare the stable healthcheck_* families
    const pick = (samples: { name: string; labels: Record<string, string> }[]) => seriesSet(samples.filter((s) => s.name.startsWith('healthcheck_') && !s.name.startsWith('healthcheck_probe_duration')));
    assert.deepEqual(pick([...om.values()].flatMap((f) => f.samples)), pick([...parsePrometheus(plain.body).values()].flatMap((f) => f.samples)));
  });

  it('Prometheus (exemplar storage on) scrapes OpenMetrics without error and query_exemplars returns exemplars of exported spans', async () => {
    const start = Date.now() / 1000 - 60;
    const results = (await waitFor(
      async () => {
        if (prometheus!.exitCode() !== null) throw new Error(`prometheus exited: ${prometheus!.log()}`);
        const url = `http://127.0.0.1:${prometheus!.port}/api/v1/query_exemplars?query=${encodeURIComponent('healthcheck_probe_duration_seconds_bucket')}&start=${start}&end=${Date.now() / 1000 + 60}`;
        const body = (await (await fetch(url)).json()) as { status: string; data: ExemplarResult[] };
        assert.equal(body.status, 'success', JSON.stringify(body));
        const names = new Set(body.data.filter((r) => r.exemplars.length > 0).map((r) => r.seriesLabels.healthcheck_name));
        return ['cache', 'web', 'down', 'slow'].every((n) => names.has(n)) ? body.data : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: `Prometheus to store exemplars (log: ${prometheus!.log()})` },
    ))!;
    const targets = (await (await fetch(`http://127.0.0.1:${prometheus!.port}/api/v1/targets`)).json()) as { data: { activeTargets: { health: string; lastError: string }[] } };
    assert.deepEqual(targets.data.activeTargets.map((t) => ({ health: t.health, lastError: t.lastError })), [{ health: 'up', lastError: '' }]);
    const exemplars = results.flatMap((r) => r.exemplars.map((e) => ({ series: r.seriesLabels, ...e })));
    for (const e of exemplars) {
      assert.deepEqual(Object.keys(e.labels).sort(), ['span_id', 'trace_id']);
      assert.match(e.labels.trace_id!, /^[0-9a-f]{32}$/);
      assert.equal(e.series.job, 'health-sidecar');
      assert.equal(e.series.__name__, 'healthcheck_probe_duration_seconds_bucket');
    }
    await receiver.waitFor(() => exemplars.every((e) => spanOf(e.labels.trace_id!, e.labels.span_id!)), 10_000);
    for (const e of exemplars) assert.equal(spanOf(e.labels.trace_id!, e.labels.span_id!)!.attributes['healthcheck.name'], e.series.healthcheck_name);
  });
});
