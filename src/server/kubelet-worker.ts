/**
 * The kubelet listener's thread (server.probeListener with `thread: true`;
 * kubelet-listener.ts starts it). Its own event loop and heap, so a flood
 * that keeps the main loop busy cannot queue ahead of the kubelet.
 *
 * It knows nothing of checks: the main thread posts, on every change of the
 * health snapshot (and on drain and reload), the table of answers for every
 * request the kubelet makes (server/probes.ts `probeTable`), and this thread
 * answers from it. A probe-path request the table does not hold (`?exclude=`,
 * a key asking for details, a body, another method, a trailing slash) is
 * forwarded to the main listener over loopback and answered as it answers
 * there; any other path is 404. Only node:http is loaded here: the thread
 * costs an isolate and an event loop, not the sidecar's libraries.
 *
 * It does not hide a hung sidecar: the main thread posts a heartbeat every
 * second, and once none has come for `staleAfterMs` every answer of the
 * table is 503 `[-]main-loop failed: …` — a liveness probe still restarts a
 * sidecar whose main loop is stuck, as it would without this thread.
 *
 * The durations it answers in are posted back once a second, for
 * http.server.request.duration: one Float64Array per (method, route,
 * status), its buffer transferred, not copied. (Posting one small array per
 * answer cost a structured clone of thousands of arrays a second at a
 * kubelet-flood rate, and the main thread a key string per record.)
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { FromKubeletThread, KubeletThreadData, ToKubeletThread } from './kubelet-listener';

const HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-type': 'text/plain; charset=utf-8' } as const;
const LABELS: Readonly<Record<string, string>> = { live: 'livez', ready: 'readyz', startup: 'startupz', healthy: 'healthy' };

/**
 * The thread's listener and the table it answers from: state of this call,
 * one per thread the KubeletListener starts (no module state).
 */
function serveKubelet(data: KubeletThreadData, port: MessagePort): void {
  let table = new Map<string, { status: number; body: string; route: string; label: string; headers: Readonly<Record<string, string | number>> }>();
  /** when the main thread was last heard from (a table or a heartbeat) */
  let lastHeard = performance.now();
  let exact = new Set<string>();
  let prefixes: string[] = [];
  /** durations (s) of the answers since the last flush, per (method, route, status) */
  let durations = new Map<string, { method: string; route: string; status: number; seconds: number[] }>();
  const note = (method: string, route: string, status: number, seconds: number) => {
    const key = `${method} ${status} ${route}`;
    let group = durations.get(key);
    if (group === undefined) durations.set(key, (group = { method, route, status, seconds: [] }));
    group.seconds.push(seconds);
  };

  const post = (message: FromKubeletThread, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer);

  function sendJson(res: ServerResponse, status: number, code: string, message: string): void {
    const body = JSON.stringify({ error: { code, message } });
    res.writeHead(status, { ...HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** a probe-path request the table does not answer: as the main listener answers it */
  function forward(req: IncomingMessage, res: ServerResponse): void {
    const headers = { ...req.headers };
    delete headers.connection;
    delete headers['keep-alive'];
    const upstream = http.request({ host: data.forward.host, port: data.forward.port, method: req.method, path: req.url, headers, agent: false, timeout: data.limits.requestTimeoutMs }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('timeout', () => upstream.destroy(new Error('timeout')));
    upstream.on('error', () => {
      if (!res.headersSent) sendJson(res, 503, 'unavailable', 'the main listener did not answer');
      else res.destroy();
    });
    req.pipe(upstream);
  }

  const server = http.createServer(
    {
      maxHeaderSize: data.limits.maxHeaderSize,
      headersTimeout: data.limits.headersTimeoutMs,
      requestTimeout: data.limits.requestTimeoutMs,
      keepAliveTimeout: data.limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: data.limits.connectionsCheckingIntervalMs,
      requireHostHeader: false,
    },
    (req, res) => {
      const started = performance.now();
      const url = req.url ?? '/';
      const method = req.method ?? 'GET';
      const plain =
        (method === 'GET' || method === 'HEAD') &&
        req.headers['content-length'] === undefined &&
        req.headers['transfer-encoding'] === undefined &&
        req.headers.authorization === undefined &&
        req.headers['x-api-key'] === undefined;
      const answer = plain ? table.get(url) : undefined;
      if (answer) {
        const silentMs = started - lastHeard;
        if (silentMs > data.staleAfterMs) {
          // the main loop is stuck: say so, as /livez would if it were answered there (it would not be)
          const body = `[-]main-loop failed: the sidecar's main event loop has not answered for ${Math.round(silentMs / 1000)}s\n${answer.label} check failed\n`;
          res.writeHead(503, { ...HEADERS, 'content-length': Buffer.byteLength(body) });
          res.end(method === 'HEAD' ? undefined : body);
          note(method, answer.route, 503, (performance.now() - started) / 1000);
          return;
        }
        res.writeHead(answer.status, answer.headers);
        res.end(method === 'HEAD' ? undefined : answer.body);
        note(method, answer.route, answer.status, (performance.now() - started) / 1000);
        return;
      }
      const query = url.indexOf('?');
      const path = query === -1 ? url : url.slice(0, query);
      if (exact.has(path) || exact.has(path.replace(/\/+$/, '')) || prefixes.some((p) => path.startsWith(p))) forward(req, res);
      else sendJson(res, 404, 'not_found', 'the kubelet listener serves the kubelet paths only (/livez, /readyz, /startupz, their /health aliases and per-check forms)');
    },
  );
  server.maxRequestsPerSocket = 0;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = JSON.stringify({ error: { code: status === 431 ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'bad_request', message: http.STATUS_CODES[status] } });
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`);
  });

  const flush = () => {
    if (durations.size === 0) return;
    const groups = [...durations.values()].map(({ method, route, status, seconds }) => [method, route, status, Float64Array.from(seconds)] as [string, string, number, Float64Array]);
    durations = new Map();
    post({ type: 'records', groups }, groups.map((g) => g[3].buffer as ArrayBuffer));
  };
  const flushing = setInterval(flush, 1000);
  flushing.unref();

  port.on('message', (message: ToKubeletThread) => {
    if (message.type === 'beat') lastHeard = performance.now();
    else if (message.type === 'table') {
      lastHeard = performance.now();
      // the headers of each answer are built once per table, not per request
      table = new Map(message.answers.map(([target, status, body, route, group]) => [target, { status, body, route, label: LABELS[group] ?? group, headers: Object.freeze({ ...HEADERS, 'content-length': Buffer.byteLength(body) }) }]));
      exact = new Set(message.exact);
      prefixes = message.prefixes;
      if (!server.listening && !listening) listen();
    } else if (message.type === 'close') {
      clearInterval(flushing);
      flush();
      server.close(() => port.close());
      server.closeIdleConnections();
      // a kubelet request is answered at once; whatever is still open after the grace is cut
      setTimeout(() => server.closeAllConnections(), message.graceMs).unref();
    }
  });

  /** the port opens once the first table is here: no request is answered before there is something to answer */
  let listening = false;
  function listen(): void {
    listening = true;
    server.once('error', (err: NodeJS.ErrnoException) => post({ type: 'error', code: err.code, message: err.message }));
    server.listen(data.port, data.host, () => {
      const address = server.address();
      post({ type: 'listening', port: typeof address === 'object' && address ? address.port : data.port });
    });
  }
}

serveKubelet(workerData as KubeletThreadData, parentPort!);
