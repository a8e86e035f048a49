/**
 * Prometheus names from OpenTelemetry names and units, as the OpenTelemetry
 * specification's Prometheus compatibility section says: a unit suffix
 * (`_seconds`, `_bytes`, `_ratio` for a gauge of unit 1), `_total` added by the
 * serializer for counters. Shared by the 0.0.4 text (metrics.ts) and the
 * OpenMetrics serializer (openmetrics.ts).
 */
import { DataPointType, type MetricData } from '@opentelemetry/sdk-metrics';

/** OTel unit → Prometheus name suffix (OTel spec "Prometheus and OpenMetrics compatibility"). */
const UNIT_SUFFIX: Record<string, string> = {
  d: 'days',
  h: 'hours',
  min: 'minutes',
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  '%': 'percent',
  Hz: 'hertz',
  Cel: 'celsius',
  V: 'volts',
  A: 'amperes',
  J: 'joules',
  W: 'watts',
};

/** The Prometheus unit suffix for a metric, or '' (annotations like `{attempt}` carry none). */
export function prometheusUnitSuffix(unit: string, metric: Pick<MetricData, 'dataPointType'>): string {
  const bare = unit.replace(/\{[^}]*\}/g, '').trim();
  if (bare === '') return '';
  if (bare === '1') return metric.dataPointType === DataPointType.GAUGE ? 'ratio' : '';
  const [numerator, denominator] = bare.split('/');
  const top = numerator ? (UNIT_SUFFIX[numerator] ?? numerator) : '';
  if (denominator === undefined) return top;
  const bottom = { s: 'second', m: 'minute', h: 'hour', d: 'day' }[denominator] ?? denominator;
  return top ? `${top}_per_${bottom}` : `per_${bottom}`;
}

/** The metric name as Prometheus will see it, minus `_total` (the serializer adds that). */
export function prometheusBaseName(name: string, unit: string, metric: Pick<MetricData, 'dataPointType'>): string {
  const sanitized = name.replace(/[^a-zA-Z0-9_]/g, '_').replace(/_{2,}/g, '_');
  const suffix = prometheusUnitSuffix(unit, metric).replace(/[^a-zA-Z0-9_]/g, '_');
  if (!suffix) return sanitized;
  const stem = sanitized.endsWith('_total') ? sanitized.slice(0, -'_total'.length) : sanitized;
  return stem.endsWith(`_${suffix}`) ? stem : `${stem}_${suffix}`;
}
