/** Response helpers: every answer carries no-store/nosniff; errors are JSON {error:{code,message}}. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { encodeBody } from './encoding';

export const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

export interface SendOptions {
  /** gzip when the client accepts it (server/encoding.ts); default true. The kubelet probe answers set false. */
  compress?: boolean;
  /** the gzipped body, when it is shared and already compressed (or compressed once for many answers) */
  gzip?: () => Buffer;
}

export function send(req: IncomingMessage, res: ServerResponse, status: number, body: string | Buffer, contentType: string, headers: Record<string, string | number> = {}, options: SendOptions = {}): void {
  if (res.headersSent) return;
  let payload = typeof body === 'string' ? Buffer.from(body) : body;
  let encoding: Record<string, string> = {};
  if (options.compress !== false) ({ body: payload, headers: encoding } = encodeBody(payload, req.headers['accept-encoding'], headers.vary, options.gzip));
  res.writeHead(status, { ...BASE_HEADERS, 'content-type': contentType, 'content-length': payload.length, ...headers, ...encoding });
  res.end(req.method === 'HEAD' ? undefined : payload);
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers: Record<string, string | number> = {}, options?: SendOptions): void {
  send(req, res, status, JSON.stringify(value), 'application/json; charset=utf-8', headers, options);
}

export function sendText(req: IncomingMessage, res: ServerResponse, status: number, text: string, headers: Record<string, string | number> = {}, options?: SendOptions): void {
  send(req, res, status, text, 'text/plain; charset=utf-8', headers, options);
}

/**
 * An answer, not a fault: thrown to answer 4xx/503 and caught by the server.
 * No stack trace is captured (it is never shown or logged, and capturing one
 * was 4 % of the CPU of a 503 flood: issue 14.2).
 */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string | number>;

  constructor(status: number, code: string, message: string, headers: Record<string, string | number> = {}) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(message);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export function sendError(req: IncomingMessage, res: ServerResponse, error: HttpError): void {
  sendJson(req, res, error.status, { error: { code: error.code, message: error.message } }, error.headers);
}
