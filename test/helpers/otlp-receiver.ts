/**
 * A small OTLP/HTTP trace receiver for tests: POST /v1/traces with
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
 */
import http from 'node:http';
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

// ---- the server -------------------------------------------------------------

export interface ReceivedRequest {
  path: string;
  contentType: string;
  headers: http.IncomingHttpHeaders;
  /** the body as sent (before gunzip) */
  raw: Buffer;
  /** the body after Content-Encoding was undone */
  body: Buffer;
}

export interface OtlpReceiver {
  port: number;
  /** http://127.0.0.1:PORT (set as OTEL_EXPORTER_OTLP_ENDPOINT) */
  url: string;
  /** every span received so far, in arrival order */
  readonly spans: ReceivedSpan[];
  readonly requests: ReceivedRequest[];
  /** decode problems (a test should assert this stays empty) */
  readonly errors: string[];
  /** resolves once `predicate(spans)` holds (polls on arrival), rejects after timeoutMs */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** the children of a span, in start order */
  children(span: ReceivedSpan): ReceivedSpan[];
  clear(): void;
  close(): Promise<void>;
}

export async function startOtlpReceiver(options: { host?: string } = {}): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: ReceivedRequest[] = [];
  const errors: string[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const path = new URL(req.url ?? '/', 'http://receiver.invalid').pathname;
      const contentType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim();
      try {
        if (req.method !== 'POST' || path !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        requests.push({ path, contentType, headers: req.headers, raw, body });
        const decoded = contentType === 'application/json' ? decodeJsonTraces(body) : decodeProtobufTraces(body);
        spans.push(...decoded);
        // an empty ExportTraceServiceResponse: `{}` in JSON, zero bytes in protobuf
        if (contentType === 'application/json') res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } catch (err) {
        errors.push(`${contentType}: ${(err as Error).message}`);
        res.writeHead(400, { 'content-type': 'text/plain' }).end((err as Error).message);
      }
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    errors,
    waitFor(predicate, timeoutMs = 15_000) {
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
      requests.length = 0;
      errors.length = 0;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
