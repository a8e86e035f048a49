/**
 * One HTTP server on one port for everything: kubelet probes, /health JSON,
 * /metrics, admin API, status page. Routing is a table, not an if-chain;
 * every error is JSON with a stable code; nothing a client sends can make a
 * handler throw past `handle` (it becomes a 4xx, or a 500 that is logged).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Identity } from './auth';
import type { OverloadGate } from './overload';
import { BASE_HEADERS, HttpError, sendError } from './respond';
import { parseRequestTarget, targetUrl } from './target';

export interface RequestContext {
  url: URL;
  /** path parameter for prefix routes (e.g. the check name in /health/{check}) */
  param?: string;
  identity: Identity;
  /** the request body (at most limits.maxBodyBytes), read before the handler runs; empty when none */
  body?: Buffer;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => void | Promise<void>;

export interface Route {
  methods: readonly string[];
  handler: Handler;
  /** http.route: the path, or the prefix with its parameter named (`/health/{check}`) */
  template: string;
  /** may be shed under overload (server/overload.ts); false only for the kubelet paths */
  shed: boolean;
}

export interface RouteOptions {
  /** false: never shed under overload (the kubelet paths); default true */
  shed?: boolean;
}

export interface ServerLimits {
  /** request head (request line + headers) in bytes */
  maxHeaderSize: number;
  maxUrlLength: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** how often Node checks headersTimeout/requestTimeout (its default, 30 s, lets a slow client live that much longer) */
  connectionsCheckingIntervalMs: number;
  /** request bodies over this answer 413 (Content-Length at once, chunked as soon as it is exceeded) */
  maxBodyBytes: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxHeaderSize: 8 * 1024,
  maxUrlLength: 2048,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 65_000,
  connectionsCheckingIntervalMs: 1_000,
  maxBodyBytes: 16 * 1024,
};

export class Router {
  private readonly exact = new Map<string, Route>();
  private readonly prefixes: { prefix: string; route: Route; pattern?: RegExp }[] = [];
  /** server.paths: extra path → the built-in path it is answered as */
  private aliases: ReadonlyMap<string, string> = new Map();

  /** the starts of every request target a route that is never shed may answer (see `mayBeUnshed`) */
  private unshedStarts: readonly string[] = [];

  /** Replace the extra paths (config load and reload). An alias that a route answers itself is refused (config/paths.ts says so first). */
  setAliases(aliases: ReadonlyMap<string, string>): this {
    for (const [path, target] of aliases) {
      if (this.exact.has(path) || this.prefixes.some((p) => path.startsWith(p.prefix))) throw new Error(`server.paths: ${path} is a built-in endpoint`);
    }
    this.aliases = aliases;
    return this.indexUnshed();
  }

  /**
   * May this raw request target (`req.url`, unparsed) reach a route that is
   * never shed (the kubelet paths, `shed: false`)? Asked for every request
   * while the server sheds (server/overload.ts), before anything else is
   * done with it, so it allocates nothing: a few `startsWith` against the
   * never-shed paths, their prefixes and the `server.paths` aliases onto
   * them. It errs on the side of true (`/livezz` is not shed early; the full
   * path answers it 404): a false here answers 503 without routing.
   */
  mayBeUnshed(rawTarget: string): boolean {
    for (const start of this.unshedStarts) if (rawTarget.startsWith(start)) return true;
    return false;
  }

  private indexUnshed(): this {
    const starts = [...this.exact].filter(([, route]) => !route.shed).map(([path]) => path);
    for (const entry of this.prefixes) if (!entry.route.shed) starts.push(entry.prefix);
    for (const [alias, target] of this.aliases) {
      let unshed = false;
      try {
        unshed = this.match(target)?.route.shed === false;
      } catch {
        unshed = true; // a target the router cannot decode: let the full path answer it
      }
      if (unshed) starts.push(alias);
    }
    this.unshedStarts = starts;
    return this;
  }

  get extraPaths(): ReadonlyMap<string, string> {
    return this.aliases;
  }

  /**
   * The path a request is routed (and rate limited) as: trailing slashes
   * dropped (`/health/` = `/health`, `/health/db/` = `/health/db`), then an
   * extra path of server.paths replaced by its built-in one.
   */
  canonical(pathname: string): string {
    let path = pathname;
    if (path.length > 1 && path.endsWith('/')) path = path.replace(/\/+$/, '') || '/';
    return this.aliases.get(path) ?? path;
  }

  add(path: string, methods: readonly string[], handler: Handler, options: RouteOptions = {}): this {
    this.exact.set(path, { methods: withHead(methods), handler, template: path, shed: options.shed ?? true });
    return this.indexUnshed();
  }

  /** `/health/` + one path segment (no further slashes) */
  addPrefix(prefix: string, methods: readonly string[], handler: Handler, pattern = /^[^/]+$/, template = `${prefix}{param}`, options: RouteOptions = {}): this {
    this.prefixes.push({ prefix, route: { methods: withHead(methods), handler, template, shed: options.shed ?? true }, pattern });
    this.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
    return this.indexUnshed();
  }

  match(pathname: string): { route: Route; param?: string } | undefined {
    const route = this.exact.get(pathname);
    if (route) return { route };
    for (const entry of this.prefixes) {
      if (!pathname.startsWith(entry.prefix)) continue;
      const rest = pathname.slice(entry.prefix.length);
      if (entry.pattern && !entry.pattern.test(rest)) continue;
      let param: string;
      try {
        param = decodeURIComponent(rest);
      } catch {
        throw new HttpError(400, 'bad_path', 'path is not valid percent-encoding');
      }
      return { route: entry.route, param };
    }
    return undefined;
  }
}

function withHead(methods: readonly string[]): readonly string[] {
  return methods.includes('GET') && !methods.includes('HEAD') ? [...methods, 'HEAD'] : methods;
}

/** A recorder bound to one (method, route, status): recording allocates and hashes nothing. */
export interface BoundRecorder {
  record(seconds: number): void;
}

/** The HTTP server's own metrics (telemetry/server-metrics.ts implements it). */
export interface RequestMetrics {
  /** the recorder of one (method, route template, status); route undefined when no route matched */
  bind(method: string | undefined, route: string | undefined, status: number): BoundRecorder;
  /** a request refused with this error code (missing_key, invalid_key, rate_limited, …) */
  refused(code: string): void;
  /** a request to this route shed under overload (503); undefined: shed before routing, for a target no route answers */
  shed(route: string | undefined): void;
}

export interface AppOptions {
  router: Router;
  identify: (req: IncomingMessage) => Identity;
  /** runs before routing; may answer (e.g. 429) by throwing HttpError */
  guard?: (req: IncomingMessage, ctx: RequestContext) => void;
  /** answers the hottest requests synchronously (true = answered); anything it declines goes the full way */
  fastPath?: (req: IncomingMessage, res: ServerResponse) => boolean;
  logger: Logger;
  limits?: Partial<ServerLimits>;
  /** http.server.request.duration and refusals; the fast path records its own (pre-bound) */
  metrics?: RequestMetrics;
  /** sheds routed requests beyond its limits (503 + Retry-After); none: nothing is shed */
  overload?: OverloadGate;
}

export function createHttpServer(options: AppOptions): http.Server {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  // while the gate is saturated, everything that cannot be a kubelet path is shed first, with pre-built bytes
  const shedEarly = options.overload ? earlyShedder(options, options.overload) : undefined;
  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.connectionsCheckingIntervalMs,
      requireHostHeader: false,
    },
    (req, res) => {
      const { fastPath } = options;
      if (fastPath) {
        try {
          if (fastPath(req, res)) return;
        } catch (err) {
          options.logger.error({ err }, 'fast path failed');
          if (res.headersSent) return;
        }
      }
      if (shedEarly !== undefined && options.overload!.saturated() && !options.router.mayBeUnshed(req.url ?? '/')) {
        shedEarly(req, res);
        return;
      }
      void handle(req, res, options, limits);
    },
  );
  server.maxRequestsPerSocket = 0;
  // Malformed requests (bad HTTP, oversized headers): a plain 400/431, never a crash.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (err as { code?: string }).code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = JSON.stringify({ error: { code: status === 431 ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'bad_request', message: http.STATUS_CODES[status] } });
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`);
  });
  return server;
}

async function handle(req: IncomingMessage, res: ServerResponse, options: AppOptions, limits: ServerLimits): Promise<void> {
  const started = options.metrics ? performance.now() : 0;
  let route: string | undefined;
  let url: URL | undefined;
  try {
    const rawUrl = req.url ?? '/';
    if (rawUrl.length > limits.maxUrlLength) throw new HttpError(414, 'uri_too_long', `request target longer than ${limits.maxUrlLength} bytes`);
    const target = parseRequestTarget(rawUrl);
    try {
      url = targetUrl(rawUrl);
    } catch {
      throw new HttpError(400, 'bad_request_target', 'request target is not a valid path');
    }
    // routed (and rate limited) as the canonical form of the raw path: trailing slashes, server.paths
    const pathname = options.router.canonical(target.pathname);
    if (pathname !== url.pathname) url.pathname = pathname;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limits.maxBodyBytes) {
      throw new HttpError(413, 'body_too_large', `request body larger than ${limits.maxBodyBytes} bytes`, { connection: 'close' });
    }
    const ctx: RequestContext = { url, identity: options.identify(req) };
    options.guard?.(req, ctx);
    if (hasBody(req)) ctx.body = await readBody(req, limits.maxBodyBytes);
    const found = options.router.match(pathname);
    route = found?.route.template;
    if (!found) throw new HttpError(404, 'not_found', `no such endpoint: ${truncate(target.pathname)}`);
    const method = req.method ?? 'GET';
    if (!found.route.methods.includes(method)) {
      throw new HttpError(405, 'method_not_allowed', `${truncate(method, 16)} is not allowed on ${truncate(target.pathname)}`, { allow: found.route.methods.join(', ') });
    }
    ctx.param = found.param;
    if (found.route.shed && options.overload) {
      const admission = options.overload.admit();
      if (!admission) {
        options.metrics?.shed(found.route.template);
        const retry = options.overload.retryAfterSeconds;
        throw new HttpError(503, 'overloaded', shedMessage(retry), { 'retry-after': retry });
      }
      try {
        await found.route.handler(req, res, ctx);
      } finally {
        admission.done();
      }
    } else await found.route.handler(req, res, ctx);
  } catch (err) {
    if (err instanceof HttpError) {
      if (err.status === 401 || err.status === 429) options.metrics?.refused(err.code);
      sendError(req, res, err);
    } else {
      options.logger.error({ err }, 'request handler failed');
      sendError(req, res, new HttpError(500, 'internal', 'internal error'));
    }
  } finally {
    // A body we did not read (an error answered first): drain it so the
    // connection stays usable, unless it is oversized — then the connection
    // closes after the answer (Connection: close) and the rest is never read.
    if (!req.complete && !res.getHeader('connection')) discardBody(req, limits.maxBodyBytes);
    if (options.metrics) {
      // refused before routing (401, 429): the route the request was for
      if (route === undefined && url) route = routeOf(options.router, url.pathname);
      options.metrics.bind(req.method, route, res.statusCode).record((performance.now() - started) / 1000);
    }
  }
}

/**
 * The 503 of a request shed before anything else is done with it (issue
 * 14.2): the gate is saturated and the raw target cannot be a kubelet path.
 * Pre-built bytes, the same JSON error the routed shedding sends; no URL
 * object, no key check, no rate-limit charge, no body read (a request that
 * has one gets `Connection: close`, so its body is never read at all).
 */
function earlyShedder(options: AppOptions, gate: OverloadGate): (req: IncomingMessage, res: ServerResponse) => void {
  const retry = gate.retryAfterSeconds;
  const body = Buffer.from(JSON.stringify({ error: { code: 'overloaded', message: shedMessage(retry) } }));
  const keep: Record<string, string | number> = { ...BASE_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': body.length, 'retry-after': retry };
  const close: Record<string, string | number> = { ...keep, connection: 'close' };
  return (req, res) => {
    const started = options.metrics ? performance.now() : 0;
    res.writeHead(503, hasBody(req) ? close : keep);
    res.end(req.method === 'HEAD' ? undefined : body);
    if (options.metrics) {
      const route = routeOf(options.router, options.router.canonical(rawPath(req.url ?? '/')));
      options.metrics.shed(route);
      options.metrics.bind(req.method, route, 503).record((performance.now() - started) / 1000);
    }
  };
}

function shedMessage(retry: number): string {
  return `the sidecar is shedding load; retry in ${retry}s (the kubelet paths are always answered)`;
}

function rawPath(raw: string): string {
  const q = raw.indexOf('?');
  return q === -1 ? raw : raw.slice(0, q);
}

function routeOf(router: Router, pathname: string): string | undefined {
  try {
    return router.match(pathname)?.route.template;
  } catch {
    return undefined;
  }
}

/** Drain an unread body after the answer; a chunked one that grows past `max` closes the connection instead. */
function discardBody(req: IncomingMessage, max: number): void {
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > max) req.socket.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) > 0);
}

/** Read the whole body, or fail with 413 as soon as it exceeds `max` bytes (the rest is not read). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (outcome: () => void) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
      outcome();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.pause();
        done(() => reject(new HttpError(413, 'body_too_large', `request body larger than ${max} bytes`, { connection: 'close' })));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => done(() => resolve(Buffer.concat(chunks)));
    const onError = () => done(() => reject(new HttpError(400, 'bad_request', 'request body incomplete')));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
  });
}

function truncate(text: string, max = 100): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
