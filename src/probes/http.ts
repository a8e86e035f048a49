import http from 'node:http';
import https from 'node:https';
import { connect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CheckConfigOf } from '../config/types';
import { ProbeFailure } from '../errors';
import { abortError, errorMessage, hardClose, isStaleConnectionError, type Probe, type ProbeContext } from './probe';
import { certExpiryRecorder, certificateExpiry, minValidityVerdict, type CertExpiry } from './tls-expiry';

/** Bodies are read only as far as the body assertions need; beyond this the response is cut. */
const MAX_BODY_BYTES = 64 * 1024;
const MAX_REDIRECTS = 5;

interface StatusRange {
  from: number;
  to: number;
}

export function parseStatusRanges(specs: (number | string)[]): StatusRange[] {
  return specs.map((spec) => {
    if (typeof spec === 'number') return { from: spec, to: spec };
    const [from, to] = spec.split('-').map(Number);
    return { from: from!, to: to ?? from! };
  });
}

/**
 * http(s):// — one keep-alive connection per check (node:http Agent, so the
 * OpenTelemetry http instrumentation sees every request). A timeout aborts the
 * request and destroys its socket.
 */
export function createHttpProbe(check: CheckConfigOf<'http'>, context: ProbeContext): Probe {
  const ranges = parseStatusRanges(check.expect.status);
  const bodyRegex = check.expect.bodyRegex ? new RegExp(check.expect.bodyRegex) : undefined;
  const needBody = check.expect.bodyContains !== undefined || bodyRegex !== undefined;
  const tls = check.tls;
  const agentOptions = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1, scheduling: 'lifo' as const };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent({
    ...agentOptions,
    rejectUnauthorized: !(tls?.insecureSkipVerify ?? false),
    ca: tls?.ca,
    cert: tls?.cert,
    key: tls?.key,
    servername: tls?.serverName,
  });
  const describe = (url: URL) => `${check.method} ${url.origin}${url.pathname}`;
  // per-run constants, built once: the parsed target, the request options (node:http and the
  // http instrumentation copy them, never change them) and the redacted "METHOD origin/path"
  const target = new URL(check.url);
  const headers = { 'user-agent': 'otel-health-sidecar', ...check.headers };
  const httpOptions = { method: check.method, headers, agent: httpAgent };
  const httpsOptions = { method: check.method, headers, agent: httpsAgent };
  let targetWhere: { redactor: ProbeContext['redactor']; text: string } | undefined;
  const whereOf = (url: URL) => {
    if (url !== target) return context.redactor.text(describe(url));
    if (targetWhere?.redactor !== context.redactor) targetWhere = { redactor: context.redactor, text: context.redactor.text(describe(target)) };
    return targetWhere.text;
  };
  const lost = watchIdleSockets([httpAgent, httpsAgent], check.timeout, context);
  // TLS expiry (https): the certificate of the last response's connection, for tls.minValidity and the cert_expiry gauge
  const certs = certExpiryRecorder(check.name, check.kind);
  let lastCertificate: CertExpiry | undefined;

  interface Reply {
    status: number;
    body: string;
    url: URL;
  }

  /**
   * One request. The signal is handled here rather than passed to node:http so
   * that an abort resets the socket (see hardClose) instead of sending a FIN a
   * hung server would never answer. A request that fails on a reused keep-alive
   * socket before any response (the server closed it while idle) is sent once
   * more on a fresh connection: that is a stale socket, not a sick server.
   */
  function request(target: URL, signal: AbortSignal, redirects: number, fresh = false): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      if (signal.aborted) return reject(abortError(signal));
      const isHttps = target.protocol === 'https:';
      const req = (isHttps ? https : http).request(target, isHttps ? httpsOptions : httpOptions);
      req.once('socket', lost.inUse);
      let settled = false;
      let responded = false;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        outcome();
      };
      const onAbort = () => {
        settle(() => reject(abortError(signal)));
        hardClose(req.socket);
        req.destroy();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      req.once('error', (err) => {
        if (settled) return;
        if (!responded && !fresh && req.reusedSocket && isStaleConnectionError(err)) {
          settle(() => resolve(request(target, signal, redirects, true)));
          return;
        }
        settle(() => reject(err));
      });
      req.once('response', (res) => {
        responded = true;
        if (isHttps) lastCertificate = certificateExpiry((res.socket as TLSSocket).getPeerCertificate?.(true));
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        res.once('error', (err) => settle(() => reject(err)));
        res.once('aborted', () => settle(() => reject(new ProbeFailure('RESPONSE_ABORTED', 'response aborted mid-body'))));
        if (check.followRedirects && status >= 300 && status < 400 && location) {
          res.resume();
          if (redirects >= MAX_REDIRECTS) return settle(() => reject(new ProbeFailure('TOO_MANY_REDIRECTS', `more than ${MAX_REDIRECTS} redirects`)));
          return settle(() => resolve(request(new URL(location, target), signal, redirects + 1)));
        }
        if (!needBody) {
          res.resume(); // drain so the keep-alive socket can be reused
          res.once('end', () => settle(() => resolve({ status, body: '', url: target })));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size >= MAX_BODY_BYTES) return;
          chunks.push(chunk);
          size += chunk.length;
          if (size >= MAX_BODY_BYTES) {
            settle(() => resolve({ status, body: Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8'), url: target }));
            req.destroy(); // enough to judge; do not read an unbounded body
          }
        });
        res.once('end', () => settle(() => resolve({ status, body: Buffer.concat(chunks).toString('utf8'), url: target })));
      });
      if (check.body !== undefined) req.end(check.body);
      else req.end();
    });
  }

  return {
    async run(signal) {
      let reply: Reply;
      lastCertificate = undefined;
      try {
        reply = await request(target, signal, 0);
      } catch (err) {
        if (signal.aborted) throw err;
        throw new ProbeFailure('HTTP_REQUEST_FAILED', context.redactor.text(`${describe(target)}: ${errorMessage(err)}`));
      }
      const { status, body, url } = reply;
      if (lastCertificate) certs.record(lastCertificate);
      const where = whereOf(url);
      if (!ranges.some((r) => status >= r.from && status <= r.to)) {
        return { ok: false, message: `${where}: status ${status}, expected ${check.expect.status.join(', ')}` };
      }
      if (check.expect.bodyContains !== undefined && !body.includes(check.expect.bodyContains)) {
        return { ok: false, message: `${where}: status ${status}, body does not contain ${JSON.stringify(check.expect.bodyContains)}` };
      }
      if (bodyRegex && !bodyRegex.test(body)) {
        return { ok: false, message: `${where}: status ${status}, body does not match /${bodyRegex.source}/` };
      }
      if (url.protocol === 'https:') {
        const verdict = minValidityVerdict(lastCertificate, tls ?? {});
        if (verdict.state === 'fail') return { ok: false, message: `${where}: status ${status}, but ${verdict.message}` };
        if (verdict.state === 'warn') return { ok: true, message: `${where}: status ${status}; ${verdict.message}` };
      }
      return { ok: true, message: `${where}: status ${status}` };
    },
    async close() {
      lost.close();
      httpAgent.destroy();
      httpsAgent.destroy();
      certs.clear();
    },
  };
}

/**
 * Event-driven detection for HTTP: watch the kept-alive socket while it sits
 * idle in the agent between runs.
 *  - an error on it (ECONNRESET: the peer reset it) → connection lost;
 *  - the peer closing it (FIN) is ambiguous: servers close idle connections
 *    on their own keep-alive timeout (Node's is 5 s) as well as when they go
 *    away. So a FIN costs one plain TCP connect to the same address (no HTTP
 *    request): refused or failing → connection lost; accepted → the server's
 *    idle timeout, nothing to report. At most one such connect per kept socket,
 *    and a run opens at most one socket, so this never outgrows the probe rate.
 */
function watchIdleSockets(agents: http.Agent[], timeoutMs: number, context: ProbeContext): { inUse(socket: Socket): void; close(): void } {
  // nobody to tell (health-sidecar check, bare probes): no watching, no extra connects
  if (!context.onConnectionLost) return { inUse: () => undefined, close: () => undefined };
  const idle = new WeakSet<Socket>();
  const watched = new WeakSet<Socket>();
  const probes = new Set<Socket>();
  let closed = false;
  const report = (reason: string) => {
    if (!closed) context.onConnectionLost?.(reason);
  };
  for (const agent of agents) agent.on('free', (socket: Socket) => idle.add(socket));

  function reconnect(host: string, port: number) {
    const socket = connect({ host, port, timeout: timeoutMs });
    probes.add(socket);
    let done = false;
    const finish = (reason?: string) => {
      if (done) return;
      done = true;
      probes.delete(socket);
      hardClose(socket);
      if (reason) report(`http: kept-alive connection to ${host}:${port} closed by the server, and a new connection ${reason}`);
    };
    socket.once('connect', () => finish());
    socket.once('timeout', () => finish(`timed out after ${timeoutMs}ms`));
    socket.once('error', (err) => finish(`failed: ${errorMessage(err)}`));
  }

  return {
    inUse(socket) {
      idle.delete(socket);
      if (watched.has(socket)) return;
      watched.add(socket);
      let host: string | undefined;
      let port: number | undefined;
      const remember = () => {
        host ??= socket.remoteAddress;
        port ??= socket.remotePort;
      };
      if (socket.remoteAddress) remember();
      else socket.once('connect', remember);
      socket.on('error', (err) => {
        if (idle.has(socket)) report(`http: kept-alive connection failed while idle: ${errorMessage(err)}`);
        idle.delete(socket);
      });
      socket.once('end', () => {
        if (!idle.has(socket) || closed || !host || !port) return;
        idle.delete(socket);
        reconnect(host, port);
      });
    },
    close() {
      closed = true;
      for (const socket of probes) hardClose(socket);
      probes.clear();
    },
  };
}
