import http from 'node:http';
import https from 'node:https';
import { connect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { trace, type Span } from '@opentelemetry/api';
import { z } from 'zod';
import { commonCheck, tlsSchema, urlWithSchemes } from '../config/schema';
import { ALWAYS_SECRET_HEADERS, headerSecrets, isCredentialHeader, urlSecrets } from '../config/secrets';
import type { KindCheckConfig } from '../config/types';
import { ProbeFailure, PROBE_ERROR, probeErrorCode } from '../errors';
import { REDACTED } from '../redact';
import { HTTP_PHASES, markRequest, runPhases, type HopMarks, type HttpPhase, type PhaseDurations } from './http-phases';
import { probeInstruments, type ConnectionCounts } from './instruments';
import { abortError, errorMessage, hardClose, isStaleConnectionError, listenUnbound, type Probe, type ProbeContext, type ProbeKind, type ProbeResponse } from './probe';
import { CertExpiryRegistry, certificateExpiry, minValidityVerdict, type CertExpiry } from './tls-expiry';

/** an allowed redirect host: name or IP, optional :port, optional leading *. wildcard; IPv6 in brackets */
const REDIRECT_HOST = /^(?:\*\.)?(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;

const STATUS_RANGE = /^([1-5]\d\d)(?:-([1-5]\d\d))?$/;
const statusSpec = z.union([
  z.number().int().min(100).max(599),
  z
    .string()
    .regex(STATUS_RANGE, { error: 'must be a status code or range such as "200-299"' })
    .refine((s) => {
      const m = STATUS_RANGE.exec(s);
      return !m || m[2] === undefined || Number(m[1]) <= Number(m[2]);
    }, { error: 'range start must not exceed its end, e.g. "200-299"' }),
]);

const schema = z.strictObject({
  ...commonCheck,
  kind: z.literal('http'),
  url: urlWithSchemes(['http', 'https']),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'OPTIONS']).default('GET'),
  headers: z.record(z.string(), z.string()).default({}),
  secretHeaders: z.array(z.string()).default([]).describe('header names whose values are secrets (Authorization, Cookie and X-API-Key always are)'),
  body: z.string().optional(),
  followRedirects: z
    .union([z.boolean(), z.enum(['same-origin', 'any']), z.array(z.string().regex(REDIRECT_HOST, { error: 'must be a host name, host:port or *.domain' })).min(1)], {
      error: 'must be true, false, "same-origin", "any" or a list of host names',
    })
    .default(false)
    .transform((value) => (value === true ? ('same-origin' as const) : value))
    .describe('follow 3xx responses: false (judge the 3xx), true or "same-origin" (only to the same scheme, host and port), "any", or a list of allowed hosts ("host", "host:port", "*.domain"). Credentials never cross to another origin; https → http is refused'),
  expect: z
    .strictObject({
      status: z.array(statusSpec).min(1).default(['200-299']),
      bodyContains: z.string().optional(),
      bodyRegex: z
        .string()
        .refine((s) => {
          try {
            new RegExp(s);
            return true;
          } catch {
            return false;
          }
        }, { error: 'must be a valid regular expression' })
        .optional(),
    })
    .prefault({}),
  tls: tlsSchema.optional(),
});

export type HttpCheckConfig = KindCheckConfig<typeof schema>;

/** Bodies are read only as far as the body assertions need; beyond this the response is cut. */
const MAX_BODY_BYTES = 64 * 1024;
const MAX_REDIRECTS = 5;

interface StatusRange {
  from: number;
  to: number;
}

type RedirectPolicy = HttpCheckConfig['followRedirects'];

/** Does the policy allow a hop to `next`? Same origin always; `any` anything; a list names hosts. */
export function redirectAllowed(policy: Exclude<RedirectPolicy, false>, next: URL, origin: URL): boolean {
  if (next.origin === origin.origin) return true;
  if (policy === 'any') return true;
  if (policy === 'same-origin') return false;
  const host = next.hostname.toLowerCase();
  const port = next.port || (next.protocol === 'https:' ? '443' : '80');
  return policy.some((entry) => {
    const pattern = entry.toLowerCase();
    const colon = pattern.lastIndexOf(':');
    const withPort = colon > pattern.lastIndexOf(']');
    const name = withPort ? pattern.slice(0, colon) : pattern;
    if (withPort && pattern.slice(colon + 1) !== port) return false;
    return name.startsWith('*.') ? host.endsWith(name.slice(1)) && host.length > name.length - 1 : host === name;
  });
}

/** 301/302 turn a POST into a GET and 303 anything but HEAD into a GET, without a body (as fetch does); 307/308 keep both. */
function redirectedMethod(status: number, method: string): { method: string; keepBody: boolean } {
  if (status === 303) return { method: method === 'HEAD' ? 'HEAD' : 'GET', keepBody: false };
  if ((status === 301 || status === 302) && method === 'POST') return { method: 'GET', keepBody: false };
  return { method, keepBody: true };
}

export function parseStatusRanges(specs: (number | string)[]): StatusRange[] {
  return specs.map((spec) => {
    if (typeof spec === 'number') return { from: spec, to: spec };
    const [from, to] = spec.split('-').map(Number);
    return { from: from!, to: to ?? from! };
  });
}

/** "METHOD origin/path": how messages name a request (never the query, which may carry a token) */
const describeRequest = (method: string, url: URL) => `${method} ${url.origin}${url.pathname}`;

/**
 * http(s):// — one keep-alive connection per check (node:http Agent, so the
 * OpenTelemetry http instrumentation sees every request). A timeout aborts the
 * request and destroys its socket.
 */
function createHttpProbe(check: HttpCheckConfig, context: ProbeContext): Probe {
  const ranges = parseStatusRanges(check.expect.status);
  const bodyRegex = check.expect.bodyRegex ? new RegExp(check.expect.bodyRegex) : undefined;
  const needBody = check.expect.bodyContains !== undefined || bodyRegex !== undefined;
  const tls = check.tls;
  const agentOptions = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1, scheduling: 'lifo' as const };
  // each agent is made at its first request: an http:// check that is never redirected to https
  // never holds a TLS agent (its session cache, maps and listeners: ~1.7 KB of heap per check)
  const agents: http.Agent[] = [];
  let httpAgent: http.Agent | undefined;
  let httpsAgent: https.Agent | undefined;
  const made = <A extends http.Agent>(agent: A): A => {
    agents.push(agent);
    lost.watch(agent);
    return agent;
  };
  const agentFor = (isHttps: boolean): http.Agent =>
    isHttps
      ? (httpsAgent ??= made(
          new https.Agent({
            ...agentOptions,
            rejectUnauthorized: !(tls?.insecureSkipVerify ?? false),
            ca: tls?.ca,
            cert: tls?.cert,
            key: tls?.key,
            servername: tls?.serverName,
          }),
        ))
      : (httpAgent ??= made(new http.Agent(agentOptions)));
  const describe = (url: URL) => describeRequest(check.method, url);
  // per-run constants, built once: the parsed target, the request options (node:http and the
  // http instrumentation copy them, never change them) and the redacted "METHOD origin/path"
  const target = new URL(check.url);
  const headers = { 'user-agent': 'otel-health-sidecar', ...check.headers };
  // what a hop to another origin sends: no Authorization, Cookie, Proxy-Authorization, X-API-Key,
  // no header declared secret or named like a credential (browsers and curl do the same), and no
  // configured Host (it names the check's origin, not the other one)
  const withoutCredentials = Object.fromEntries(Object.entries(headers).filter(([name]) => !isCredentialHeader(name, check.secretHeaders) && name.toLowerCase() !== 'host'));
  let httpOptions: http.RequestOptions | undefined;
  let httpsOptions: http.RequestOptions | undefined;
  const firstHopOptions = (isHttps: boolean) =>
    isHttps ? (httpsOptions ??= { method: check.method, headers, agent: agentFor(true) }) : (httpOptions ??= { method: check.method, headers, agent: agentFor(false) });
  const firstHop: Hop = { redirects: 0, method: check.method, body: check.body, credentials: true };
  let targetWhere: { redactor: ProbeContext['redactor']; text: string } | undefined;
  const whereOf = (reply: Reply) => {
    if (reply.url !== target) {
      // after redirects: the final origin only (a redirect's path or query may carry a token)
      return context.redactor.text(`${reply.method} ${reply.url.origin} (after ${reply.redirects} redirect${reply.redirects === 1 ? '' : 's'} from ${describe(target)})`);
    }
    if (targetWhere?.redactor !== context.redactor) targetWhere = { redactor: context.redactor, text: context.redactor.text(describe(target)) };
    return targetWhere.text;
  };
  const lost = watchIdleSockets(check.timeout, context);
  // TLS expiry (https): the certificate of the last response's connection, for tls.minValidity and the cert_expiry gauge
  const certs = (context.certExpiry ?? new CertExpiryRegistry()).recorder(check.name, check.kind);
  let lastCertificate: CertExpiry | undefined;
  // healthcheck.connections (the agents' sockets) and healthcheck.http.phase.duration
  const instruments = probeInstruments(check, context.metrics, () => agentConnections(agents));

  interface Hop {
    redirects: number;
    method: string;
    body: string | undefined;
    /** false once any hop left the check's origin: credentials are never sent again in this run */
    credentials: boolean;
  }

  interface Reply {
    status: number;
    body: string;
    /** bytes of the final response's body read (all of it, or up to the 64 KiB cut) */
    bytes: number;
    url: URL;
    method: string;
    redirects: number;
  }

  /**
   * The run's phases (summed over its hops): one histogram record per phase
   * that happened, and on the attempt's span an event per phase of each hop
   * (at the moment it ended) and the sums as attributes.
   */
  function recordPhases(span: Span | undefined, hops: readonly HopMarks[]): PhaseDurations {
    const phases = runPhases(hops);
    for (const phase of HTTP_PHASES) {
      const ms = phases[phase];
      if (ms !== undefined) instruments.recordPhase(phase, ms / 1000);
    }
    if (span) {
      for (let index = 0; index < hops.length; index++) {
        const marks = hops[index]!;
        // one hop (the usual run): its phases are the run's
        const single = hops.length === 1 ? phases : runPhases([marks]);
        for (const phase of HTTP_PHASES) {
          const ms = single[phase];
          const at = phaseEnd(marks, phase);
          if (ms === undefined || at === undefined) continue;
          span.addEvent(PHASE_EVENT[phase], { 'healthcheck.http.phase.duration_ms': round(ms), 'healthcheck.http.hop': index, 'healthcheck.http.connection': marks.reused ? 'reused' : 'new' }, performance.timeOrigin + at);
        }
      }
      for (const phase of HTTP_PHASES) {
        const ms = phases[phase];
        if (ms !== undefined) span.setAttribute(PHASE_ATTRIBUTE[phase], round(ms));
      }
    }
    return phases;
  }

  /** Where a 3xx may lead, or why it may not (a ProbeFailure). Records the hop on the attempt's span. */
  function nextHop(from: URL, location: string, status: number, hop: Hop, span: Span | undefined): { url: URL; hop: Hop } {
    const policy = check.followRedirects as Exclude<RedirectPolicy, false>;
    let next: URL;
    try {
      next = new URL(location, from);
    } catch {
      throw new ProbeFailure(PROBE_ERROR.protocol, `${describe(from)}: status ${status} with a Location that is not a URL`);
    }
    const refuse = (why: string) => {
      span?.addEvent('http.redirect', { 'http.response.status_code': status, 'healthcheck.redirect.refused': why });
      return new ProbeFailure(PROBE_ERROR.protocol, `${describe(from)}: status ${status}, redirect to ${next.protocol === 'http:' || next.protocol === 'https:' ? next.origin : next.protocol} not followed: ${why}`);
    };
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw refuse('only http and https are followed');
    if (from.protocol === 'https:' && next.protocol === 'http:') throw refuse('https → http downgrade');
    if (hop.redirects >= MAX_REDIRECTS) throw new ProbeFailure(PROBE_ERROR.protocol, `${describe(from)}: more than ${MAX_REDIRECTS} redirects`);
    if (!redirectAllowed(policy, next, target)) throw refuse(policy === 'same-origin' ? 'another origin (followRedirects: same-origin)' : 'host not in followRedirects');
    const credentials = hop.credentials && next.origin === target.origin;
    const { method, keepBody } = redirectedMethod(status, hop.method);
    const body = keepBody ? hop.body : undefined;
    // a body may carry a substituted secret: it never goes to another origin
    if (body !== undefined && next.origin !== target.origin) throw refuse('the request has a body, which is not sent to another origin');
    span?.addEvent('http.redirect', {
      'http.response.status_code': status,
      'healthcheck.redirect.to': next.origin,
      'healthcheck.redirect.credentials': credentials ? 'kept' : 'dropped',
    });
    return { url: next, hop: { redirects: hop.redirects + 1, method, body, credentials } };
  }

  /**
   * One request. The signal is handled here rather than passed to node:http so
   * that an abort resets the socket (see hardClose) instead of sending a FIN a
   * hung server would never answer. A request that fails on a reused keep-alive
   * socket before any response (the server closed it while idle) is sent once
   * more on a fresh connection: that is a stale socket, not a sick server.
   */
  function request(url: URL, signal: AbortSignal, hop: Hop, span: Span | undefined, hops: HopMarks[], fresh = false): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      if (signal.aborted) return reject(abortError(signal));
      const isHttps = url.protocol === 'https:';
      const options = hop === firstHop ? firstHopOptions(isHttps) : { method: hop.method, headers: hop.credentials ? headers : withoutCredentials, agent: agentFor(isHttps) };
      const started = performance.now();
      const req = (isHttps ? https : http).request(url, options);
      const marks = markRequest(req, isHttps, started);
      hops.push(marks);
      listenUnbound(req, 'socket', lost.inUse);
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
          settle(() => resolve(request(url, signal, hop, span, hops, true)));
          return;
        }
        settle(() => reject(err));
      });
      req.once('response', (res) => {
        responded = true;
        if (isHttps) lastCertificate = certificateExpiry((res.socket as TLSSocket).getPeerCertificate?.(true));
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        let bytes = 0;
        const done = (body: string) => {
          marks.end ??= performance.now();
          return { status, body, bytes, url, method: hop.method, redirects: hop.redirects };
        };
        // the response's listeners only settle this promise (listenUnbound); 'error' and 'response'
        // of the request stay bound to its context: they may send the next request (a retry on a
        // fresh connection, a redirect), whose client span is a child of the attempt's
        listenUnbound(res, 'error', (err: Error) => settle(() => reject(err)));
        listenUnbound(res, 'aborted', () => settle(() => reject(new ProbeFailure(PROBE_ERROR.protocol, 'response aborted mid-body'))));
        if (check.followRedirects !== false && status >= 300 && status < 400 && location) {
          res.resume();
          let next: { url: URL; hop: Hop };
          try {
            next = nextHop(url, location, status, hop, span);
          } catch (err) {
            return settle(() => reject(err));
          }
          return settle(() => resolve(request(next.url, signal, next.hop, span, hops)));
        }
        if (!needBody) {
          // drain so the keep-alive socket can be reused, counting what arrives
          listenUnbound(res, 'data', (chunk: Buffer) => (bytes += chunk.length));
          listenUnbound(res, 'end', () => settle(() => resolve(done(''))));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        listenUnbound(res, 'data', (chunk: Buffer) => {
          if (size >= MAX_BODY_BYTES) return;
          chunks.push(chunk);
          size += chunk.length;
          bytes = Math.min(size, MAX_BODY_BYTES);
          if (size >= MAX_BODY_BYTES) {
            settle(() => resolve(done(Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8'))));
            req.destroy(); // enough to judge; do not read an unbounded body
          }
        });
        listenUnbound(res, 'end', () => settle(() => resolve(done(Buffer.concat(chunks).toString('utf8')))));
      });
      if (hop.body !== undefined) req.end(hop.body);
      else req.end();
    });
  }

  return {
    async run(signal) {
      let reply: Reply;
      lastCertificate = undefined;
      instruments.sync();
      // the attempt's span (the runner makes it active): redirect hops and phases are recorded on it
      const active = trace.getActiveSpan();
      const span = active?.isRecording() ? active : undefined;
      const hops: HopMarks[] = [];
      try {
        reply = await request(target, signal, firstHop, span, hops);
      } catch (err) {
        if (signal.aborted) throw err;
        recordPhases(span, hops);
        if (err instanceof ProbeFailure) throw new ProbeFailure(err.code, context.redactor.text(err.message), { cause: err.cause });
        throw new ProbeFailure(probeErrorCode(err), context.redactor.text(`${describe(target)}: ${errorMessage(err)}`), { cause: err });
      }
      const { status, body, url } = reply;
      const phases = recordPhases(span, hops);
      span?.setAttributes({ 'http.response.status_code': status, 'http.response.body.size': reply.bytes });
      if (reply.redirects > 0) span?.setAttribute('healthcheck.http.redirects', reply.redirects);
      const response = responseFacts(reply, phases, hops[hops.length - 1]);
      if (lastCertificate) certs.record(lastCertificate);
      const where = whereOf(reply);
      if (!ranges.some((r) => status >= r.from && status <= r.to)) {
        return { ok: false, message: `${where}: status ${status}, expected ${check.expect.status.join(', ')}`, response };
      }
      if (check.expect.bodyContains !== undefined && !body.includes(check.expect.bodyContains)) {
        return { ok: false, message: `${where}: status ${status}, body does not contain ${JSON.stringify(check.expect.bodyContains)}`, response };
      }
      if (bodyRegex && !bodyRegex.test(body)) {
        return { ok: false, message: `${where}: status ${status}, body does not match /${bodyRegex.source}/`, response };
      }
      if (url.protocol === 'https:') {
        const verdict = minValidityVerdict(lastCertificate, tls ?? {});
        if (verdict.state === 'fail') return { ok: false, message: `${where}: status ${status}, but ${verdict.message}`, response };
        if (verdict.state === 'warn') return { ok: true, message: `${where}: status ${status}; ${verdict.message}`, response };
      }
      return { ok: true, message: `${where}: status ${status}`, response };
    },
    async close() {
      instruments.close();
      lost.close();
      for (const agent of agents) agent.destroy();
      certs.clear();
    },
  };
}

export const httpKind: ProbeKind<HttpCheckConfig> = {
  kind: 'http',
  schema,
  create: createHttpProbe,
  targetField: 'url',
  placeholder: 'http://unset.invalid:1',
  target: (check) => describeRequest(check.method, new URL(check.url)),
  secrets: (check) => [...urlSecrets(check.url), ...headerSecrets(check.headers, check.secretHeaders), ...(check.tls?.key ? [check.tls.key] : [])],
  redact(check, redactor) {
    const secretNames = new Set([...ALWAYS_SECRET_HEADERS, ...check.secretHeaders.map((h) => h.toLowerCase())]);
    const headers = Object.fromEntries(Object.entries(check.headers).map(([name, value]) => [name, secretNames.has(name.toLowerCase()) ? REDACTED : value]));
    return { ...check, url: redactor.url(check.url), headers, body: check.body === undefined ? undefined : redactor.text(check.body) };
  },
};

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
function watchIdleSockets(timeoutMs: number, context: ProbeContext): { watch(agent: http.Agent): void; inUse(socket: Socket): void; close(): void } {
  // nobody to tell (health-sidecar check, bare probes): no watching, no extra connects
  if (!context.onConnectionLost) return { watch: () => undefined, inUse: () => undefined, close: () => undefined };
  const idle = new WeakSet<Socket>();
  const watched = new WeakSet<Socket>();
  const probes = new Set<Socket>();
  let closed = false;
  const report = (reason: string) => {
    if (!closed) context.onConnectionLost?.(reason);
  };
  const onFree = (socket: Socket) => idle.add(socket);

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
    /** an agent the probe has just made: its sockets become idle when it frees them */
    watch(agent) {
      agent.on('free', onFree);
    },
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

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** the span event and attribute names of each phase, built once */
const PHASE_EVENT = Object.freeze(Object.fromEntries(HTTP_PHASES.map((phase) => [phase, `http.phase.${phase}`])) as Record<HttpPhase, string>);
const PHASE_ATTRIBUTE = Object.freeze(Object.fromEntries(HTTP_PHASES.map((phase) => [phase, `healthcheck.http.phase.${phase}_ms`])) as Record<HttpPhase, string>);

/** when a phase of one request ended (performance.now() ms), or undefined when it did not happen */
function phaseEnd(marks: HopMarks, phase: HttpPhase): number | undefined {
  switch (phase) {
    case 'dns':
      return marks.lookup ?? (marks.connect !== undefined ? marks.start : undefined);
    case 'connect':
      return marks.connect;
    case 'tls':
      return marks.secure;
    case 'ttfb':
      return marks.firstByte;
    case 'transfer':
      return marks.end;
  }
}

/** What /health/{check} shows of the last answer: status, body bytes read, redirects followed, whether the last request reused a connection, and the phases (ms). */
function responseFacts(reply: { status: number; bytes: number; redirects: number }, phases: PhaseDurations, last: HopMarks | undefined): ProbeResponse {
  const phasesMs: Record<string, number> = {};
  for (const phase of HTTP_PHASES) if (phases[phase] !== undefined) phasesMs[phase] = round(phases[phase]);
  return { statusCode: reply.status, bodyBytes: reply.bytes, redirects: reply.redirects, connection: last?.reused ? 'reused' : 'new', phasesMs };
}

/** Sockets the agents hold: free ones idle, assigned ones in use. */
function agentConnections(agents: readonly http.Agent[]): ConnectionCounts {
  const count = (lists: NodeJS.ReadOnlyDict<Socket[]>) => Object.values(lists).reduce((n, list) => n + (list?.length ?? 0), 0);
  let idle = 0;
  let used = 0;
  for (const agent of agents) {
    idle += count(agent.freeSockets);
    used += count(agent.sockets);
  }
  return { idle, used };
}
