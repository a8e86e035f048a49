/** Response helpers: every answer carries no-store/nosniff; errors are JSON {error:{code,message}}. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

export function send(req: IncomingMessage, res: ServerResponse, status: number, body: string | Buffer, contentType: string, headers: Record<string, string | number> = {}): void {
  if (res.headersSent) return;
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...BASE_HEADERS, 'content-type': contentType, 'content-length': payload.length, ...headers });
  res.end(req.method === 'HEAD' ? undefined : payload);
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers: Record<string, string | number> = {}): void {
  send(req, res, status, JSON.stringify(value), 'application/json; charset=utf-8', headers);
}

export function sendText(req: IncomingMessage, res: ServerResponse, status: number, text: string, headers: Record<string, string | number> = {}): void {
  send(req, res, status, text, 'text/plain; charset=utf-8', headers);
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string | number> = {},
  ) {
    super(message);
  }
}

export function sendError(req: IncomingMessage, res: ServerResponse, error: HttpError): void {
  sendJson(req, res, error.status, { error: { code: error.code, message: error.message } }, error.headers);
}
