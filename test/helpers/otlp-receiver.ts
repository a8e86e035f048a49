/**
 * A small OTLP receiver for tests (traces, metrics and logs): POST /v1/traces,
 * /v1/metrics, /v1/logs with
 * `application/x-protobuf` (decoded by a minimal protobuf wire-format reader
 * for the trace schema below) or `application/json`, optionally gzip. Spans
 * come out in one shape whatever the wire format: hex ids, attribute values
 * unwrapped, nanosecond times as bigint. The raw bodies are kept too, so a
 * test can search the exact bytes that left the process for secrets.
 *
 * Schema (opentelemetry-proto, collector/trace/v1 and trace/v1):
 *   ExportTraceServiceRequest { 1 resource_spans: ResourceSpans* }
 *   ResourceSpans { 1 resource: Resource, 2 scope_spans: ScopeSpans* }
 *   Resource { 1 attributes: KeyValue* }
 *   ScopeSpans { 1 scope: InstrumentationScope, 2 spans: Span* }
 *   InstrumentationScope { 1 name, 2 version }
 *   Span { 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id, 5 name, 6 kind,
 *          7 start_time_unix_nano fixed64, 8 end_time_unix_nano fixed64,
 *          9 attributes: KeyValue*, 11 events: Event*, 15 status: Status }
 *   Event { 1 time_unix_nano fixed64, 2 name, 3 attributes: KeyValue* }
 *   Status { 2 message, 3 code }
 *   KeyValue { 1 key, 2 value: AnyValue }
 *   AnyValue { 1 string, 2 bool, 3 int64, 4 double, 5 array { 1 values: AnyValue* },
 *              6 kvlist { 1 values: KeyValue* }, 7 bytes }
 * Metrics (collector/metrics/v1 and metrics/v1):
 *   ExportMetricsServiceRequest { 1 resource_metrics: ResourceMetrics* }
 *   ResourceMetrics { 1 resource, 2 scope_metrics: ScopeMetrics* }
 *   ScopeMetrics { 1 scope, 2 metrics: Metric* }
 *   Metric { 1 name, 2 description, 3 unit, 5 gauge, 7 sum, 9 histogram }
 *   Gauge { 1 data_points: NumberDataPoint* }
 *   Sum { 1 data_points, 2 aggregation_temporality, 3 is_monotonic }
 *   Histogram { 1 data_points: HistogramDataPoint*, 2 aggregation_temporality }
 *   NumberDataPoint { 7 attributes, 2 start_time_unix_nano fixed64, 3 time_unix_nano fixed64,
 *                     4 as_double, 6 as_int sfixed64 }
 *   HistogramDataPoint { 9 attributes, 2 start, 3 time, 4 count fixed64, 5 sum double,
 *                        6 bucket_counts packed fixed64, 7 explicit_bounds packed double }
 * Logs (collector/logs/v1 and logs/v1):
 *   ExportLogsServiceRequest { 1 resource_logs: ResourceLogs* }
 *   ResourceLogs { 1 resource, 2 scope_logs: ScopeLogs* }
 *   ScopeLogs { 1 scope, 2 log_records: LogRecord* }
 *   LogRecord { 1 time_unix_nano fixed64, 2 severity_number, 3 severity_text, 5 body: AnyValue,
 *               6 attributes, 9 trace_id bytes, 10 span_id bytes }
 * With `grpc: true` the same three services also answer OTLP/gRPC
 * (opentelemetry.proto.collector.{trace,metrics,logs}.v1.*Service/Export) on
 * `grpcPort`; the messages are the protobuf ones above.
 * With `tls` both listeners speak TLS with the given server certificate
 * (`url`/`grpcUrl` become https://), and with `tls.clientCa` they ask for a
 * client certificate signed by that CA and refuse the handshake without one
 * (mutual TLS, as a Collector with `tls.client_ca_file` does); each request
 * then records the client certificate's subject.
 */
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type AttrValue = string | number | boolean | bigint | AttrValue[] | { [key: string]: AttrValue } | Buffer | null;
export type Attributes = Record<string, AttrValue>;

export interface ReceivedEvent {
  name: string;
  timeUnixNano: bigint;
  attributes: Attributes;
}

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span */
  parentSpanId: string;
  name: string;
  /** OTLP enum: 1 internal, 2 server, 3 client, 4 producer, 5 consumer */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Attributes;
  events: ReceivedEvent[];
  /** OTLP enum: 0 unset, 1 ok, 2 error */
  status: { code: number; message: string };
  scope: { name: string; version: string };
  resource: Attributes;
}

/** OTLP AggregationTemporality */
export const TEMPORALITY = { delta: 1, cumulative: 2 } as const;

export interface ReceivedPoint {
  attributes: Attributes;
  startTimeUnixNano: bigint;
  timeUnixNano: bigint;
  /** gauge and sum points */
  value?: number;
  /** histogram points */
  count?: number;
  sum?: number;
  bucketCounts?: number[];
  bounds?: number[];
}

export interface ReceivedMetric {
  name: string;
  description: string;
  unit: string;
  type: 'gauge' | 'sum' | 'histogram' | 'other';
  /** 0 for gauges; TEMPORALITY for sums and histograms */
  temporality: number;
  monotonic: boolean;
  points: ReceivedPoint[];
  scope: { name: string; version: string };
  resource: Attributes;
  /** which export request it came in (index in `requests`) */
  request?: number;
}

export interface ReceivedLogRecord {
  timeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  body: AttrValue;
  attributes: Attributes;
  /** '' when the record was written outside a span */
  traceId: string;
  spanId: string;
  scope: { name: string; version: string };
  resource: Attributes;
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;
export const STATUS_CODE = { unset: 0, ok: 1, error: 2 } as const;

// ---- protobuf wire format ---------------------------------------------------

interface Field {
  no: number;
  wire: number;
  /** varint / fixed64 as bigint, length-delimited as Buffer, fixed32 as number */
  value: bigint | Buffer | number;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[pos++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 70n) throw new Error('varint too long');
  }
}

export function decodeFields(buf: Buffer): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, next] = readVarint(buf, pos);
    pos = next;
    const no = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    switch (wire) {
      case 0: {
        const [value, after] = readVarint(buf, pos);
        pos = after;
        fields.push({ no, wire, value });
        break;
      }
      case 1:
        fields.push({ no, wire, value: buf.readBigUInt64LE(pos) });
        pos += 8;
        break;
      case 2: {
        const [length, after] = readVarint(buf, pos);
        const end = after + Number(length);
        if (end > buf.length) throw new Error('truncated length-delimited field');
        fields.push({ no, wire, value: buf.subarray(after, end) });
        pos = end;
        break;
      }
      case 5:
        fields.push({ no, wire, value: buf.readUInt32LE(pos) });
        pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wire} (field ${no})`);
    }
  }
  return fields;
}

const bytesOf = (fields: Field[], no: number): Buffer[] => fields.filter((f) => f.no === no && f.wire === 2).map((f) => f.value as Buffer);
const oneBytes = (fields: Field[], no: number): Buffer | undefined => bytesOf(fields, no)[0];
const str = (fields: Field[], no: number): string => oneBytes(fields, no)?.toString('utf8') ?? '';
const num = (fields: Field[], no: number): bigint => (fields.find((f) => f.no === no && (f.wire === 0 || f.wire === 1))?.value as bigint | undefined) ?? 0n;

function toSigned64(value: bigint): bigint {
  return value >= 1n << 63n ? value - (1n << 64n) : value;
}

function pbAnyValue(buf: Buffer): AttrValue {
  const fields = decodeFields(buf);
  const field = fields[0];
  if (!field) return null;
  switch (field.no) {
    case 1:
      return (field.value as Buffer).toString('utf8');
    case 2:
      return field.value === 1n;
    case 3: {
      const value = toSigned64(field.value as bigint);
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
    }
    case 4: {
      const out = Buffer.alloc(8);
      out.writeBigUInt64LE(field.value as bigint);
      return out.readDoubleLE(0);
    }
    case 5:
      return bytesOf(decodeFields(field.value as Buffer), 1).map(pbAnyValue);
    case 6:
      return pbAttributes(bytesOf(decodeFields(field.value as Buffer), 1));
    case 7:
      return Buffer.from(field.value as Buffer);
    default:
      return null;
  }
}

function pbAttributes(keyValues: Buffer[]): Attributes {
  const out: Attributes = {};
  for (const kv of keyValues) {
    const fields = decodeFields(kv);
    const value = oneBytes(fields, 2);
    out[str(fields, 1)] = value ? pbAnyValue(value) : null;
  }
  return out;
}

export function decodeProtobufTraces(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of bytesOf(decodeFields(body), 1)) {
    const rs = decodeFields(resourceSpans);
    const resourceBuf = oneBytes(rs, 1);
    const resource = resourceBuf ? pbAttributes(bytesOf(decodeFields(resourceBuf), 1)) : {};
    for (const scopeSpans of bytesOf(rs, 2)) {
      const ss = decodeFields(scopeSpans);
      const scopeBuf = oneBytes(ss, 1);
      const scopeFields = scopeBuf ? decodeFields(scopeBuf) : [];
      const scope = { name: str(scopeFields, 1), version: str(scopeFields, 2) };
      for (const spanBuf of bytesOf(ss, 2)) {
        const f = decodeFields(spanBuf);
        const statusBuf = oneBytes(f, 15);
        const status = statusBuf ? decodeFields(statusBuf) : [];
        spans.push({
          traceId: oneBytes(f, 1)?.toString('hex') ?? '',
          spanId: oneBytes(f, 2)?.toString('hex') ?? '',
          parentSpanId: oneBytes(f, 4)?.toString('hex') ?? '',
          name: str(f, 5),
          kind: Number(num(f, 6)),
          startTimeUnixNano: num(f, 7),
          endTimeUnixNano: num(f, 8),
          attributes: pbAttributes(bytesOf(f, 9)),
          events: bytesOf(f, 11).map((eventBuf) => {
            const e = decodeFields(eventBuf);
            return { timeUnixNano: num(e, 1), name: str(e, 2), attributes: pbAttributes(bytesOf(e, 3)) };
          }),
          status: { code: Number(num(status, 3)), message: str(status, 2) },
          scope,
          resource,
        });
      }
    }
  }
  return spans;
}

function packedFixed64(fields: Field[], no: number): bigint[] {
  const out: bigint[] = [];
  for (const f of fields.filter((x) => x.no === no)) {
    if (f.wire === 1) out.push(f.value as bigint);
    else if (f.wire === 2) {
      const buf = f.value as Buffer;
      for (let i = 0; i + 8 <= buf.length; i += 8) out.push(buf.readBigUInt64LE(i));
    }
  }
  return out;
}

const asDouble = (bits: bigint): number => {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(bits);
  return out.readDoubleLE(0);
};

function pbScope(buf: Buffer | undefined): { name: string; version: string } {
  const f = buf ? decodeFields(buf) : [];
  return { name: str(f, 1), version: str(f, 2) };
}

function pbResource(buf: Buffer | undefined): Attributes {
  return buf ? pbAttributes(bytesOf(decodeFields(buf), 1)) : {};
}

function pbNumberPoint(buf: Buffer): ReceivedPoint {
  const f = decodeFields(buf);
  const double = f.find((x) => x.no === 4 && x.wire === 1);
  const int = f.find((x) => x.no === 6 && x.wire === 1);
  return {
    attributes: pbAttributes(bytesOf(f, 7)),
    startTimeUnixNano: num(f, 2),
    timeUnixNano: num(f, 3),
    value: double ? asDouble(double.value as bigint) : int ? Number(toSigned64(int.value as bigint)) : 0,
  };
}

function pbHistogramPoint(buf: Buffer): ReceivedPoint {
  const f = decodeFields(buf);
  const sum = f.find((x) => x.no === 5 && x.wire === 1);
  return {
    attributes: pbAttributes(bytesOf(f, 9)),
    startTimeUnixNano: num(f, 2),
    timeUnixNano: num(f, 3),
    count: Number(num(f, 4)),
    sum: sum ? asDouble(sum.value as bigint) : 0,
    bucketCounts: packedFixed64(f, 6).map(Number),
    bounds: packedFixed64(f, 7).map(asDouble),
  };
}

export function decodeProtobufMetrics(body: Buffer): ReceivedMetric[] {
  const out: ReceivedMetric[] = [];
  for (const rmBuf of bytesOf(decodeFields(body), 1)) {
    const rm = decodeFields(rmBuf);
    const resource = pbResource(oneBytes(rm, 1));
    for (const smBuf of bytesOf(rm, 2)) {
      const sm = decodeFields(smBuf);
      const scope = pbScope(oneBytes(sm, 1));
      for (const mBuf of bytesOf(sm, 2)) {
        const m = decodeFields(mBuf);
        const base = { name: str(m, 1), description: str(m, 2), unit: str(m, 3), scope, resource };
        const gauge = oneBytes(m, 5);
        const sum = oneBytes(m, 7);
        const histogram = oneBytes(m, 9);
        if (gauge) out.push({ ...base, type: 'gauge', temporality: 0, monotonic: false, points: bytesOf(decodeFields(gauge), 1).map(pbNumberPoint) });
        else if (sum) {
          const f = decodeFields(sum);
          out.push({ ...base, type: 'sum', temporality: Number(num(f, 2)), monotonic: num(f, 3) === 1n, points: bytesOf(f, 1).map(pbNumberPoint) });
        } else if (histogram) {
          const f = decodeFields(histogram);
          out.push({ ...base, type: 'histogram', temporality: Number(num(f, 2)), monotonic: false, points: bytesOf(f, 1).map(pbHistogramPoint) });
        } else out.push({ ...base, type: 'other', temporality: 0, monotonic: false, points: [] });
      }
    }
  }
  return out;
}

export function decodeProtobufLogs(body: Buffer): ReceivedLogRecord[] {
  const out: ReceivedLogRecord[] = [];
  for (const rlBuf of bytesOf(decodeFields(body), 1)) {
    const rl = decodeFields(rlBuf);
    const resource = pbResource(oneBytes(rl, 1));
    for (const slBuf of bytesOf(rl, 2)) {
      const sl = decodeFields(slBuf);
      const scope = pbScope(oneBytes(sl, 1));
      for (const recBuf of bytesOf(sl, 2)) {
        const f = decodeFields(recBuf);
        const body = oneBytes(f, 5);
        out.push({
          timeUnixNano: num(f, 1),
          severityNumber: Number(num(f, 2)),
          severityText: str(f, 3),
          body: body ? pbAnyValue(body) : null,
          attributes: pbAttributes(bytesOf(f, 6)),
          traceId: oneBytes(f, 9)?.toString('hex') ?? '',
          spanId: oneBytes(f, 10)?.toString('hex') ?? '',
          scope,
          resource,
        });
      }
    }
  }
  return out;
}

// ---- OTLP JSON --------------------------------------------------------------

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
  kvlistValue?: { values?: JsonKeyValue[] };
  bytesValue?: string;
}
interface JsonKeyValue {
  key: string;
  value?: JsonAnyValue;
}

function jsonAnyValue(value: JsonAnyValue | undefined): AttrValue {
  if (!value) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(jsonAnyValue);
  if (value.kvlistValue) return jsonAttributes(value.kvlistValue.values);
  if (value.bytesValue !== undefined) return Buffer.from(value.bytesValue, 'base64');
  return null;
}

function jsonAttributes(list: JsonKeyValue[] | undefined): Attributes {
  const out: Attributes = {};
  for (const kv of list ?? []) out[kv.key] = jsonAnyValue(kv.value);
  return out;
}

/** OTLP/JSON ids are hex per the spec; some encoders send base64. Accept both. */
function jsonId(id: string | undefined, bytes: number): string {
  if (!id) return '';
  if (id.length === bytes * 2 && /^[0-9a-f]+$/i.test(id)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

export function decodeJsonTraces(body: Buffer): ReceivedSpan[] {
  const request = JSON.parse(body.toString('utf8')) as {
    resourceSpans?: {
      resource?: { attributes?: JsonKeyValue[] };
      scopeSpans?: {
        scope?: { name?: string; version?: string };
        spans?: {
          traceId?: string;
          spanId?: string;
          parentSpanId?: string;
          name?: string;
          kind?: number;
          startTimeUnixNano?: string | number;
          endTimeUnixNano?: string | number;
          attributes?: JsonKeyValue[];
          events?: { name?: string; timeUnixNano?: string | number; attributes?: JsonKeyValue[] }[];
          status?: { code?: number; message?: string };
        }[];
      }[];
    }[];
  };
  const spans: ReceivedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = jsonAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const span of ss.spans ?? []) {
        spans.push({
          traceId: jsonId(span.traceId, 16),
          spanId: jsonId(span.spanId, 8),
          parentSpanId: jsonId(span.parentSpanId, 8),
          name: span.name ?? '',
          kind: span.kind ?? 0,
          startTimeUnixNano: BigInt(span.startTimeUnixNano ?? 0),
          endTimeUnixNano: BigInt(span.endTimeUnixNano ?? 0),
          attributes: jsonAttributes(span.attributes),
          events: (span.events ?? []).map((e) => ({ name: e.name ?? '', timeUnixNano: BigInt(e.timeUnixNano ?? 0), attributes: jsonAttributes(e.attributes) })),
          status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
          scope,
          resource,
        });
      }
    }
  }
  return spans;
}

interface JsonPoint {
  attributes?: JsonKeyValue[];
  startTimeUnixNano?: string | number;
  timeUnixNano?: string | number;
  asDouble?: number | string;
  asInt?: number | string;
  count?: number | string;
  sum?: number | string;
  bucketCounts?: (number | string)[];
  explicitBounds?: (number | string)[];
}

function jsonPoint(p: JsonPoint): ReceivedPoint {
  const point: ReceivedPoint = { attributes: jsonAttributes(p.attributes), startTimeUnixNano: BigInt(p.startTimeUnixNano ?? 0), timeUnixNano: BigInt(p.timeUnixNano ?? 0) };
  if (p.asDouble !== undefined) point.value = Number(p.asDouble);
  else if (p.asInt !== undefined) point.value = Number(p.asInt);
  if (p.count !== undefined || p.bucketCounts !== undefined) {
    point.count = Number(p.count ?? 0);
    point.sum = Number(p.sum ?? 0);
    point.bucketCounts = (p.bucketCounts ?? []).map(Number);
    point.bounds = (p.explicitBounds ?? []).map(Number);
  }
  return point;
}

export function decodeJsonMetrics(body: Buffer): ReceivedMetric[] {
  type Data = { dataPoints?: JsonPoint[]; aggregationTemporality?: number; isMonotonic?: boolean };
  const request = JSON.parse(body.toString('utf8')) as {
    resourceMetrics?: {
      resource?: { attributes?: JsonKeyValue[] };
      scopeMetrics?: { scope?: { name?: string; version?: string }; metrics?: { name?: string; description?: string; unit?: string; gauge?: Data; sum?: Data; histogram?: Data }[] }[];
    }[];
  };
  const out: ReceivedMetric[] = [];
  for (const rm of request.resourceMetrics ?? []) {
    const resource = jsonAttributes(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      const scope = { name: sm.scope?.name ?? '', version: sm.scope?.version ?? '' };
      for (const m of sm.metrics ?? []) {
        const base = { name: m.name ?? '', description: m.description ?? '', unit: m.unit ?? '', scope, resource };
        const [type, data] = m.gauge ? (['gauge', m.gauge] as const) : m.sum ? (['sum', m.sum] as const) : m.histogram ? (['histogram', m.histogram] as const) : (['other', {}] as const);
        out.push({ ...base, type, temporality: data.aggregationTemporality ?? 0, monotonic: data.isMonotonic ?? false, points: (data.dataPoints ?? []).map(jsonPoint) });
      }
    }
  }
  return out;
}

export function decodeJsonLogs(body: Buffer): ReceivedLogRecord[] {
  const request = JSON.parse(body.toString('utf8')) as {
    resourceLogs?: {
      resource?: { attributes?: JsonKeyValue[] };
      scopeLogs?: {
        scope?: { name?: string; version?: string };
        logRecords?: { timeUnixNano?: string | number; severityNumber?: number; severityText?: string; body?: JsonAnyValue; attributes?: JsonKeyValue[]; traceId?: string; spanId?: string }[];
      }[];
    }[];
  };
  const out: ReceivedLogRecord[] = [];
  for (const rl of request.resourceLogs ?? []) {
    const resource = jsonAttributes(rl.resource?.attributes);
    for (const sl of rl.scopeLogs ?? []) {
      const scope = { name: sl.scope?.name ?? '', version: sl.scope?.version ?? '' };
      for (const r of sl.logRecords ?? []) {
        out.push({
          timeUnixNano: BigInt(r.timeUnixNano ?? 0),
          severityNumber: r.severityNumber ?? 0,
          severityText: r.severityText ?? '',
          body: jsonAnyValue(r.body),
          attributes: jsonAttributes(r.attributes),
          traceId: jsonId(r.traceId, 16),
          spanId: jsonId(r.spanId, 8),
          scope,
          resource,
        });
      }
    }
  }
  return out;
}

// ---- the server -------------------------------------------------------------

export interface ReceivedRequest {
  path: string;
  contentType: string;
  headers: http.IncomingHttpHeaders;
  /** the body as sent (before gunzip) */
  raw: Buffer;
  /** the body after Content-Encoding was undone */
  body: Buffer;
  /** with `tls.clientCa`: the CN of the client certificate the request came with */
  clientCert?: string;
}

export interface ReceiverTls {
  /** the server certificate and key (PEM) */
  cert: string;
  key: string;
  /** require a client certificate signed by this CA (PEM) */
  clientCa?: string;
}

export interface OtlpReceiver {
  port: number;
  /** http://127.0.0.1:PORT, https:// with `tls` (set as OTEL_EXPORTER_OTLP_ENDPOINT) */
  url: string;
  /** with `grpc: true`: the OTLP/gRPC port and http(s)://127.0.0.1:PORT for it */
  grpcPort?: number;
  grpcUrl?: string;
  /** every span received so far, in arrival order */
  readonly spans: ReceivedSpan[];
  /** every metric of every export request, in arrival order (one entry per metric per request) */
  readonly metrics: ReceivedMetric[];
  /** every log record, in arrival order */
  readonly logs: ReceivedLogRecord[];
  /** resolves once `predicate()` holds (checked on every arrival), rejects after timeoutMs naming `what` */
  until(predicate: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  readonly requests: ReceivedRequest[];
  /** decode problems (a test should assert this stays empty) */
  readonly errors: string[];
  /** with `tls`: handshakes of the HTTP listener that failed (no or an untrusted client certificate…), their error messages */
  readonly tlsErrors: string[];
  /** resolves once `predicate(spans)` holds (polls on arrival), rejects after timeoutMs */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** the children of a span, in start order */
  children(span: ReceivedSpan): ReceivedSpan[];
  clear(): void;
  close(): Promise<void>;
}

const DECODERS = {
  '/v1/traces': { json: decodeJsonTraces, protobuf: decodeProtobufTraces },
  '/v1/metrics': { json: decodeJsonMetrics, protobuf: decodeProtobufMetrics },
  '/v1/logs': { json: decodeJsonLogs, protobuf: decodeProtobufLogs },
} as const;
type SignalPath = keyof typeof DECODERS;

const GRPC_SERVICES: Record<SignalPath, string> = {
  '/v1/traces': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  '/v1/metrics': '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  '/v1/logs': '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

export async function startOtlpReceiver(options: { host?: string; grpc?: boolean; tls?: ReceiverTls } = {}): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const metrics: ReceivedMetric[] = [];
  const logs: ReceivedLogRecord[] = [];
  /** decode one request body of a signal into the lists (throws on a decode error) */
  const accept = (path: SignalPath, json: boolean, body: Buffer) => {
    const decoder = DECODERS[path][json ? 'json' : 'protobuf'];
    const decoded = decoder(body);
    if (path === '/v1/traces') spans.push(...(decoded as ReceivedSpan[]));
    else if (path === '/v1/metrics') metrics.push(...(decoded as ReceivedMetric[]).map((m) => ({ ...m, request: requests.length - 1 })));
    else logs.push(...(decoded as ReceivedLogRecord[]));
  };
  const requests: ReceivedRequest[] = [];
  const errors: string[] = [];
  const waiters = new Set<() => void>();
  const { tls } = options;
  const mutual = tls?.clientCa !== undefined;
  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const path = new URL(req.url ?? '/', 'http://receiver.invalid').pathname;
      const contentType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim();
      try {
        if (req.method !== 'POST' || !(path in DECODERS)) {
          res.writeHead(404).end();
          return;
        }
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        const clientCert = mutual ? String((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '') : undefined;
        requests.push({ path, contentType, headers: req.headers, raw, body, ...(clientCert === undefined ? {} : { clientCert }) });
        accept(path as SignalPath, contentType === 'application/json', body);
        // an empty ExportTraceServiceResponse: `{}` in JSON, zero bytes in protobuf
        if (contentType === 'application/json') res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } catch (err) {
        errors.push(`${contentType}: ${(err as Error).message}`);
        res.writeHead(400, { 'content-type': 'text/plain' }).end((err as Error).message);
      }
      for (const wake of waiters) wake();
    });
  };
  const server = tls
    ? https.createServer({ cert: tls.cert, key: tls.key, ...(mutual ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}) }, handler)
    : http.createServer(handler);
  const tlsErrors: string[] = [];
  server.on('tlsClientError', (err: Error) => {
    tlsErrors.push(err.message);
    for (const wake of waiters) wake();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let grpcServer: import('@grpc/grpc-js').Server | undefined;
  let grpcPort: number | undefined;
  if (options.grpc) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const grpc = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
    grpcServer = new grpc.Server();
    const identity = (b: Buffer) => b;
    for (const [path, method] of Object.entries(GRPC_SERVICES) as [SignalPath, string][]) {
      const definition = { Export: { path: method, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity, originalName: 'export' } };
      grpcServer.addService(definition as unknown as import('@grpc/grpc-js').ServiceDefinition, {
        Export: (call: import('@grpc/grpc-js').ServerUnaryCall<Buffer, Buffer>, callback: import('@grpc/grpc-js').sendUnaryData<Buffer>) => {
          const body = call.request;
          const headers = call.metadata.getMap() as http.IncomingHttpHeaders;
          const clientCert = mutual ? String(call.getAuthContext().sslPeerCertificate?.subject?.CN ?? '') : undefined;
          requests.push({ path, contentType: 'application/grpc', headers, raw: body, body, ...(clientCert === undefined ? {} : { clientCert }) });
          try {
            accept(path, false, body);
            callback(null, Buffer.alloc(0));
          } catch (err) {
            errors.push(`grpc ${path}: ${(err as Error).message}`);
            callback({ code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message });
          }
          for (const wake of waiters) wake();
        },
      });
    }
    const credentials = tls
      ? grpc.ServerCredentials.createSsl(mutual ? Buffer.from(tls.clientCa!) : null, [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }], mutual)
      : grpc.ServerCredentials.createInsecure();
    grpcPort = await new Promise<number>((resolve, reject) => grpcServer!.bindAsync(`127.0.0.1:0`, credentials, (err, bound) => (err ? reject(err) : resolve(bound))));
  }
  const until = (predicate: () => boolean, what: string, timeoutMs = 15_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`OTLP receiver: ${what} not received within ${timeoutMs} ms (${spans.length} span(s), ${metrics.length} metric(s), ${logs.length} log record(s); paths ${[...new Set(requests.map((r) => r.path))].join(', ')})`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    port,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    ...(grpcPort !== undefined ? { grpcPort, grpcUrl: `${tls ? 'https' : 'http'}://127.0.0.1:${grpcPort}` } : {}),
    spans,
    metrics,
    logs,
    until,
    requests,
    errors,
    tlsErrors,
    waitFor(predicate, timeoutMs = 30_000) {
      return new Promise<ReceivedSpan[]>((resolve, reject) => {
        const check = () => {
          if (!predicate(spans)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(spans);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`OTLP receiver: condition not met within ${timeoutMs} ms (${spans.length} span(s) received: ${[...new Set(spans.map((s) => s.name))].join(', ')})`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    children(span) {
      return spans.filter((s) => s.traceId === span.traceId && s.parentSpanId === span.spanId).sort((a, b) => (a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
    },
    clear() {
      spans.length = 0;
      metrics.length = 0;
      logs.length = 0;
      requests.length = 0;
      errors.length = 0;
      tlsErrors.length = 0;
    },
    async close() {
      grpcServer?.forceShutdown();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
