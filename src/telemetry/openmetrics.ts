/**
 * OpenMetrics 1.0 text over the SDK's collected data (MetricReader.collect →
 * ResourceMetrics), with exemplars on histogram bucket lines. Pure: data in,
 * text out.
 *
 * Why our own: @opentelemetry/exporter-prometheus (0.223) only writes the
 * 0.0.4 text format and the JS metrics SDK (2.x) collects no exemplars
 * (exemplars.ts keeps them instead). Everything else is the exporter's output
 * in OpenMetrics dress, so a target can switch formats without new series:
 *
 * - the same sample names and labels as `PrometheusSerializer` over
 *   `translateForPrometheus` (unit suffixes, `_total` on counters, attribute
 *   names with `[^a-zA-Z0-9_]` → `_`, the `otel_scope_*` labels, `le` values
 *   written `String(boundary)` as the exporter does, e.g. `le="1"`);
 * - counters are family `x` with samples `x_total`; `# UNIT` when the name
 *   carries a unit suffix; HELP escapes `\`, `"` and newlines;
 * - the resource is `target_info` (family `target`, type `info`);
 * - no `_created` samples (optional in OpenMetrics; Prometheus 2.x would
 *   store them as extra series);
 * - families that occur in more than one scope are written once, samples
 *   together (OpenMetrics forbids a repeated family); `# EOF` ends the text.
 */
import type { Attributes, AttributeValue } from '@opentelemetry/api';
import { DataPointType, type DataPoint, type Histogram, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { bucketIndex, seriesKey, type Exemplar, type ExemplarSnapshot } from './exemplars';
import { prometheusBaseName, prometheusUnitSuffix } from './prometheus-names';

export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

export interface OpenMetricsOptions {
  /** exemplars per OTel instrument name (e.g. `healthcheck.probe.duration`); histograms only */
  exemplars?: ReadonlyMap<string, ExemplarSnapshot>;
  /** append this time (unix ms, written in seconds) to every sample; /metrics writes none, as the exporter */
  timestampMs?: number;
}

// ---- escaping and formatting (as the exporter does, plus `"` in HELP) --------

/** label value: `\` → `\\`, newline → `\n`, `"` → `\"` */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** HELP text: OpenMetrics escapes the same three characters as label values */
export function escapeHelp(text: string): string {
  return escapeLabelValue(text);
}

/** attribute key → label name, the exporter's rule */
export function labelName(key: string): string {
  return key.replace(/[^a-z0-9_]/gi, '_').replace(/_{2,}/g, '_');
}

function attributeText(value: AttributeValue | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function formatNumber(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** unix milliseconds → OpenMetrics seconds (millisecond precision) */
function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

function labelText(labels: readonly (readonly [string, string])[]): string {
  return labels.length ? `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}` : '';
}

function attributeLabels(attributes: Attributes): [string, string][] {
  return Object.entries(attributes).map(([k, v]) => [labelName(k), attributeText(v)]);
}

function exemplarText(exemplar: Exemplar): string {
  return ` # {trace_id="${escapeLabelValue(exemplar.traceId)}",span_id="${escapeLabelValue(exemplar.spanId)}"} ${formatNumber(exemplar.value)} ${seconds(exemplar.timeMs)}`;
}

// ---- families ----------------------------------------------------------------

interface Family {
  type: 'counter' | 'gauge' | 'histogram' | 'unknown';
  help: string;
  unit: string;
  lines: string[];
}

/** The exporter's sample name for a metric: translated base name, sanitised, `_total` for counters. */
export function sampleName(metric: MetricData): string {
  let name = prometheusBaseName(metric.descriptor.name, metric.descriptor.unit, metric)
    .replace(/[^a-z0-9_]/gi, '_')
    .replace(/_{2,}/g, '_');
  if (/^[0-9]/.test(name)) name = `_${name}`;
  if (metric.dataPointType === DataPointType.SUM && metric.isMonotonic && !name.endsWith('_total')) name += '_total';
  return name;
}

function familyType(metric: MetricData): Family['type'] {
  switch (metric.dataPointType) {
    case DataPointType.SUM:
      return metric.isMonotonic ? 'counter' : 'gauge';
    case DataPointType.GAUGE:
      return 'gauge';
    case DataPointType.HISTOGRAM:
      return 'histogram';
    default:
      return 'unknown';
  }
}

/** Latest exemplar per bucket index of `boundaries` (an exemplar goes where its value falls). */
function exemplarsByBucket(exemplars: readonly Exemplar[] | undefined, boundaries: readonly number[]): Map<number, Exemplar> {
  const out = new Map<number, Exemplar>();
  for (const exemplar of exemplars ?? []) {
    const index = bucketIndex(boundaries, exemplar.value);
    const held = out.get(index);
    if (!held || held.timeMs <= exemplar.timeMs) out.set(index, exemplar);
  }
  return out;
}

function histogramLines(name: string, point: DataPoint<Histogram>, scopeLabels: [string, string][], suffix: string, exemplars: ExemplarSnapshot | undefined): string[] {
  const labels = [...attributeLabels(point.attributes), ...scopeLabels];
  const { boundaries, counts } = point.value.buckets;
  const byBucket = exemplarsByBucket(exemplars?.get(seriesKey(point.attributes)), boundaries);
  const lines: string[] = [];
  let cumulative = 0;
  let infWritten = false;
  // counts has boundaries.length + 1 entries: the last one is the +Inf bucket
  for (let i = 0; i < counts.length && !infWritten; i++) {
    cumulative += counts[i]!;
    const bound = boundaries[i];
    infWritten = bound === undefined || bound === Infinity;
    const le = infWritten ? '+Inf' : String(bound);
    const exemplar = byBucket.get(i);
    lines.push(`${name}_bucket${labelText([...labels, ['le', le]])} ${formatNumber(cumulative)}${suffix}${exemplar ? exemplarText(exemplar) : ''}`);
  }
  // OpenMetrics requires the +Inf bucket even if the data stops short of it
  if (!infWritten) lines.push(`${name}_bucket${labelText([...labels, ['le', '+Inf']])} ${formatNumber(point.value.count)}${suffix}`);
  lines.push(`${name}_count${labelText(labels)} ${formatNumber(point.value.count)}${suffix}`);
  if (point.value.sum !== undefined) lines.push(`${name}_sum${labelText(labels)} ${formatNumber(point.value.sum)}${suffix}`);
  return lines;
}

/**
 * The whole exposition: target_info, every family of every scope, `# EOF`.
 * Families keep the order in which they first occur.
 */
export function serializeOpenMetrics(resourceMetrics: ResourceMetrics, options: OpenMetricsOptions = {}): string {
  const families = new Map<string, Family>();
  for (const scope of resourceMetrics.scopeMetrics) {
    const scopeLabels: [string, string][] = [['otel_scope_name', scope.scope.name]];
    if (scope.scope.schemaUrl) scopeLabels.push(['otel_scope_schema_url', scope.scope.schemaUrl]);
    if (scope.scope.version) scopeLabels.push(['otel_scope_version', scope.scope.version]);
    for (const metric of scope.metrics) {
      const name = sampleName(metric);
      if (name === '' || name === '_') continue;
      const type = familyType(metric);
      const familyName = type === 'counter' ? name.slice(0, -'_total'.length) : name;
      let family = families.get(familyName);
      if (!family) {
        const unitSuffix = prometheusUnitSuffix(metric.descriptor.unit, metric).replace(/[^a-zA-Z0-9_]/g, '_');
        family = { type, help: metric.descriptor.description || 'description missing', unit: unitSuffix && familyName.endsWith(`_${unitSuffix}`) ? unitSuffix : '', lines: [] };
        families.set(familyName, family);
      } else if (family.type !== type) {
        continue; // one family, one type: a clashing metric from another scope is left out
      }
      const exemplars = options.exemplars?.get(metric.descriptor.name);
      const suffix = options.timestampMs === undefined ? '' : ` ${seconds(options.timestampMs)}`;
      for (const point of metric.dataPoints as DataPoint<unknown>[]) {
        if (metric.dataPointType === DataPointType.HISTOGRAM) {
          family.lines.push(...histogramLines(name, point as DataPoint<Histogram>, scopeLabels, suffix, exemplars));
        } else if (metric.dataPointType === DataPointType.SUM || metric.dataPointType === DataPointType.GAUGE) {
          family.lines.push(`${name}${labelText([...attributeLabels(point.attributes), ...scopeLabels])} ${formatNumber(point.value as number)}${suffix}`);
        }
      }
    }
  }
  const out: string[] = [];
  out.push('# HELP target Target metadata', '# TYPE target info', `target_info${labelText(attributeLabels(resourceMetrics.resource.attributes))} 1${options.timestampMs === undefined ? '' : ` ${seconds(options.timestampMs)}`}`);
  for (const [name, family] of families) {
    out.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`);
    if (family.unit) out.push(`# UNIT ${name} ${family.unit}`);
    out.push(...family.lines);
  }
  out.push('# EOF');
  return `${out.join('\n')}\n`;
}

// ---- content negotiation -------------------------------------------------------

export type MetricsFormat = 'openmetrics' | 'prometheus';

interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
}

function parseAccept(accept: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const part of accept.split(',')) {
    const [type, ...rest] = part.split(';').map((s) => s.trim());
    if (!type) continue;
    const params = new Map<string, string>();
    let q = 1;
    for (const param of rest) {
      const eq = param.indexOf('=');
      if (eq <= 0) continue;
      const key = param.slice(0, eq).trim().toLowerCase();
      const value = param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (key === 'q') {
        const parsed = Number(value);
        q = Number.isFinite(parsed) ? Math.min(1, Math.max(0, parsed)) : 0;
      } else params.set(key, value);
    }
    ranges.push({ type: type.toLowerCase(), params, q });
  }
  return ranges;
}

/**
 * OpenMetrics only when the client names `application/openmetrics-text`
 * (without a version, or 1.0.0 / 0.0.1, which this text satisfies) with a q
 * above 0 and at least as high as its best q for the text format
 * (`text/plain`, `text/*`, `*\/*`). No Accept, `*\/*` alone, or text preferred:
 * the 0.0.4 text format, as before. Prometheus sends OpenMetrics at q=0.5 and
 * text/plain at q=0.3, so it gets OpenMetrics.
 */
export function negotiateMetricsFormat(accept: string | string[] | undefined): MetricsFormat {
  const header = Array.isArray(accept) ? accept.join(',') : accept;
  if (!header) return 'prometheus';
  let openmetrics = 0;
  let text = 0;
  for (const range of parseAccept(header)) {
    if (range.type === 'application/openmetrics-text') {
      const version = range.params.get('version');
      if (version === undefined || version === '1.0.0' || version === '0.0.1') openmetrics = Math.max(openmetrics, range.q);
    } else if (range.type === 'text/plain' || range.type === 'text/*' || range.type === '*/*') {
      text = Math.max(text, range.q);
    }
  }
  return openmetrics > 0 && openmetrics >= text ? 'openmetrics' : 'prometheus';
}
