/**
 * The one HTTP client of the tests: one request on its own connection (unless
 * an agent is given), resolving with the status, the headers, the whole body
 * and how long it took. It never retries and never follows redirects: what the
 * server answered is what the test sees. `timeoutMs` is a hang guard (the
 * request is destroyed and the promise rejects), not a speed assertion.
 */
import http from 'node:http';

/** the `code` of the error a request rejects with when its hang guard fired */
export const NO_ANSWER = 'TEST_NO_ANSWER';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** the body as received, before any decoding (e.g. still gzipped) */
  bytes: Buffer;
  /** ms from sending to the whole body */
  ms: number;
  /** the body parsed as JSON */
  json<T = any>(): T;
}

export interface RequestOptions {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  /** a string or Buffer is sent whole; an array of Buffers is written chunk by chunk (chunked encoding) */
  body?: string | Buffer | readonly Buffer[];
  /** the client's address (e.g. 127.0.0.2 to look like another client) */
  localAddress?: string;
  host?: string;
  /** a keep-alive agent to reuse connections; default: a fresh connection per request */
  agent?: http.Agent | false;
  /** hang guard, default 30 s */
  timeoutMs?: number;
}

export function request(port: number, path: string, options: RequestOptions = {}): Promise<Reply> {
  const started = performance.now();
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: options.host ?? '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, localAddress: options.localAddress, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        const body = bytes.toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, bytes, ms: performance.now() - started, json: () => JSON.parse(body) });
      });
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs ?? 30_000, () => req.destroy(Object.assign(new Error(`no answer to ${options.method ?? 'GET'} ${path} within ${options.timeoutMs ?? 30_000} ms`), { code: NO_ANSWER })));
    req.on('error', reject);
    const body = options.body;
    if (Array.isArray(body)) {
      for (const chunk of body) req.write(chunk);
      req.end();
    } else req.end(body as string | Buffer | undefined);
  });
}

/** GET `path` on 127.0.0.1:`port` */
export function get(port: number, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
  return request(port, path, { headers });
}

/** GET an absolute http:// URL */
export function getUrl(url: string, options: RequestOptions = {}): Promise<Reply> {
  const u = new URL(url);
  return request(Number(u.port || 80), `${u.pathname}${u.search}`, { ...options, host: u.hostname });
}
