/**
 * Hostile input (SPEC §8): thousands of random methods, paths, query strings,
 * headers and bodies against a real Sidecar over real sockets — first through
 * node:http (well-formed HTTP, random content), then over raw TCP (malformed
 * HTTP: broken request lines, bad headers, lying Content-Length, bad chunks,
 * pipelining, binary garbage). Seeded fast-check, so a failure replays.
 * The server must never answer 5xx for a reason of its own (a 503 is allowed
 * only where it reports health), never log a handler failure, never crash, and
 * still answer /livez 200 afterwards with every check UP again (its latency is
 * printed, not asserted: bench/ measures endpoint latency on a quiet machine).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { call, startSidecar, type RunningSidecar } from '../security/support';
import { NO_ANSWER, request } from '../helpers/http';

const SEED = 20_261_123;
const HTTP_RUNS = 10_000;
const RAW_RUNS = 5000;
const KEY = 'fuzz-key-0123456789abcdef';

let dependency: TestHttpServer;
let running: RunningSidecar;
let agent: http.Agent;

before(async () => {
  dependency = await startHttpServer((_req, res) => res.end('ok'));
  running = await startSidecar(
    `
server:
  port: 0
  host: 127.0.0.1
  auth:
    keys: [ { name: ops, key: "${KEY}", rateLimit: 1000000/1m } ]
    anonymousRateLimit: 1000000/1m
checks:
  - { name: app, kind: http, url: "${dependency.url}/", interval: 200ms, timeout: 150ms, groups: [live, ready, startup] }
  - { name: port, kind: tcp, url: "tcp://127.0.0.1:${dependency.port}", interval: 200ms, timeout: 150ms }
`,
    { level: 'info' },
  );
  await waitFor(() => running.sidecar.store.all().every((s) => s.status === 'UP'), { what: 'checks UP', timeoutMs: 30_000 });
  agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
});
after(async () => {
  agent?.destroy();
  await running?.stop();
  await dependency?.close();
});

// ── generators ────────────────────────────────────────────────────────────
const KNOWN_PATHS = [
  '/', '/livez', '/readyz', '/startupz', '/health/live', '/health/ready', '/health/startup', '/-/healthy', '/health', '/health/system',
  '/health/stats', '/health/incidents', '/health/app', '/health/port', '/metrics', '/status/fragment', '/status/app.css', '/status/app.js',
  '/admin/diagnostics', '/admin/notifications/dead', '/admin/checks/app/run', '/admin/checks/port/reset', '/admin/checks/app/reset',
];
/** paths that report health: a 503 there is an answer, not a failure */
const HEALTH_PATHS = new Set(['/livez', '/readyz', '/startupz', '/health/live', '/health/ready', '/health/startup', '/health', '/health/app', '/health/port']);

const SAFE_CHARS = fc.constantFrom(...'abcXYZ019-._~!$&\'()*+,;=:@/%?#[]'.split(''));
const pctByte = fc.integer({ min: 0, max: 255 }).map((b) => `%${b.toString(16).padStart(2, '0')}`);
const segment = fc.oneof(
  fc.stringMatching(/^[a-z0-9_-]{0,12}$/),
  fc.array(fc.oneof(SAFE_CHARS, pctByte, fc.constantFrom('%', '%z', '%E0%A4%A', '..', '.')), { maxLength: 10 }).map((parts) => parts.join('')),
  fc.string({ unit: 'binary', maxLength: 8 }).map((s) => encodeURIComponent(s)),
);
const pathArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_PATHS) },
  { weight: 2, arbitrary: segment.map((s) => `/health/${s}`) },
  { weight: 2, arbitrary: fc.tuple(segment, fc.constantFrom('run', 'reset', '', 'x', 'run/more')).map(([s, a]) => `/admin/checks/${s}/${a}`) },
  { weight: 2, arbitrary: fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => `/${parts.join('/')}`) },
  { weight: 1, arbitrary: fc.constantFrom('//', '/..', '/%2e%2e/admin/diagnostics', '/admin//diagnostics', '/health/', '/admin/checks/', '/admin/checks//run', '*') },
);
const queryKey = fc.oneof(fc.constantFrom('verbose', 'exclude', 'recent', 'refresh', 'limit', 'check', 'id', 'target', 'x'), segment);
const queryValue = fc.oneof(fc.constantFrom('', '1', '0', '-1', 'app', 'app,port', '999999999999', '1e3', 'NaN', '%', '%zz'), segment);
const queryArb = fc.oneof(
  fc.constant(''),
  fc
    .tuple(fc.array(fc.tuple(queryKey, fc.option(queryValue, { nil: undefined })), { minLength: 1, maxLength: 5 }), fc.constantFrom('&', ';', '&&'))
    .map(([pairs, separator]) => `?${pairs.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join(separator)}`),
);
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,80}$/).map((s) => s.trim());
const headersArb = fc.record(
  {
    'content-type': fc.constantFrom('application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', '*/*'),
    'if-none-match': fc.oneof(headerValue, fc.constant('W/"all-1-s"'), fc.constant('*')),
    accept: fc.constantFrom('*/*', 'application/json', 'text/html', 'text/plain;q=0.1'),
    'x-forwarded-for': fc.constantFrom('1.2.3.4', '::1, 10.0.0.1', 'garbage'),
    'accept-encoding': fc.constantFrom('gzip', 'br', 'identity;q=0'),
  },
  { requiredKeys: [] },
);
const credentialsArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant({}) },
  { weight: 3, arbitrary: fc.constantFrom({ authorization: `Bearer ${KEY}` }, { authorization: `bearer   ${KEY}  ` }) },
  { weight: 2, arbitrary: fc.constant({ 'x-api-key': KEY }) },
  { weight: 1, arbitrary: headerValue.map((v) => ({ authorization: `Bearer ${v}` })) },
  { weight: 1, arbitrary: fc.record({ authorization: fc.oneof(headerValue, fc.constant('Basic Zm9vOmJhcg==')), 'x-api-key': headerValue }, { requiredKeys: [] }) },
);
const extraHeaders = fc.array(fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,20}$/), headerValue), { maxLength: 4 });
const methodArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,12}$/) },
);
const bodyArb = fc.oneof(
  { weight: 5, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.integer({ min: 16_000, max: 40_000 }).map((n) => Buffer.alloc(n, 'q')) },
);

interface Answer {
  status: number;
  body: string;
}

/** The shared client, keep-alive, settling every outcome into an answer: the property judges it. */
async function send(method: string, path: string, headers: Record<string, string>, body: string | Buffer | undefined): Promise<Answer> {
  try {
    const reply = await request(running.port, path, { method, headers, body, agent, timeoutMs: 30_000 });
    // judge what the server said, not how it was encoded for the wire
    const bytes = reply.bytes;
    const text = reply.headers['content-encoding'] === 'gzip' && bytes.length > 0 ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
    return { status: reply.status, body: text };
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    if (code === NO_ANSWER) return { status: 0, body: 'client timeout' };
    // -1: the client refused to send it (an invalid header or method: not our server's business);
    // 0: a connection closed by the server (413 with Connection: close) while we still send is fine
    return { status: code?.startsWith('ERR_') ? -1 : 0, body: message };
  }
}

function acceptable(path: string, answer: Answer): boolean {
  if (answer.status < 500) return true;
  // load shed on purpose (server/overload.ts): not a failure of ours
  if (answer.status === 503 && answer.body.includes('"overloaded"')) return true;
  // routed as the server routes it: trailing slashes dropped (`/health/` is `/health`)
  const raw = path.split('?')[0]!;
  const pathname = raw.length > 1 ? raw.replace(/\/+$/, '') || '/' : raw;
  return answer.status === 503 && HEALTH_PATHS.has(pathname) && !answer.body.includes('"internal"');
}

async function livezMs(samples: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    const reply = await call(running.port, 'GET', '/livez');
    assert.equal(reply.status, 200);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

test(`fuzz over node:http: ${HTTP_RUNS} random requests, no 5xx of our own`, async (t) => {
  const baseline = await livezMs(50);
  const statuses = new Map<number, number>();
  let timeouts = 0;
  await fc.assert(
    fc.asyncProperty(methodArb, pathArb, queryArb, credentialsArb, headersArb, extraHeaders, bodyArb, async (method, path, query, credentials, headers, extra, body) => {
      const all: Record<string, string> = { ...headers, ...Object.fromEntries(extra), ...credentials };
      const answer = await send(method, `${path}${query}`, all, body === undefined || Buffer.isBuffer(body) ? body : JSON.stringify(body));
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      if (answer.body === 'client timeout') timeouts++;
      assert.ok(acceptable(`${path}${query}`, answer), `${method} ${path}${query} → ${answer.status} ${answer.body.slice(0, 200)}`);
      assert.notEqual(answer.body, 'client timeout', `${method} ${path}${query}: no answer within 10 s`);
    }),
    { seed: SEED, numRuns: HTTP_RUNS, endOnFailure: true },
  );
  // a fuzzed reset leaves a check UNKNOWN (503 on /livez, rightly) until its next run
  await waitFor(() => running.sidecar.store.all().every((s) => s.status === 'UP'), { what: 'checks UP again', timeoutMs: 30_000 });
  const after = await livezMs(50);
  const summary = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ');
  t.diagnostic(`${HTTP_RUNS} requests; statuses ${summary}; /livez median ${baseline.toFixed(2)} ms before, ${after.toFixed(2)} ms after`);
  assert.equal(timeouts, 0);
  assert.ok(statuses.size >= 8, `the fuzz reached many kinds of answer (${summary})`);
  assert.deepEqual(running.logs.filter((l) => l.includes('request handler failed')), []);
});

// ── raw sockets: malformed HTTP ───────────────────────────────────────────
const token = fc.stringMatching(/^[A-Z]{1,8}$/);
const garbage = fc.string({ unit: 'binary', maxLength: 40 });
const requestLine = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE'), pathArb, queryArb).map(([m, p, q]) => `${m} ${p}${q} HTTP/1.1`) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.oneof(token, fc.constantFrom('GET', 'POST', 'CONNECT', 'PRI', 'G ET', '')), fc.oneof(pathArb, garbage, fc.constant('http://evil.example/livez'), fc.constant('*')), fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.1 extra', '', 'http/1.1'))
      .map(([m, p, v]) => `${m} ${p} ${v}`),
  },
  { weight: 1, arbitrary: garbage },
);
const headerLine = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,16}$/), headerValue).map(([k, v]) => `${k}: ${v}`) },
  {
    weight: 3,
    arbitrary: fc.constantFrom('Host: x', 'Host:', 'Host: a\r\nHost: b', 'Content-Length: 5', 'Content-Length: 0', 'Content-Length: -1', 'Content-Length: 99999999999999999999', 'Content-Length: 3, 4', 'Content-Length: 20000', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip, chunked', 'Transfer-Encoding: chunked\r\nContent-Length: 3', 'Connection: close', 'Connection: keep-alive, Upgrade', 'Upgrade: websocket', 'Expect: 100-continue', 'Authorization: Bearer', `Authorization: Bearer ${KEY}`, `X-API-Key: ${KEY}`, 'If-None-Match: *', ' folded: header', 'no-colon', ': empty-name', 'Bad\u0000Header: x'),
  },
  { weight: 1, arbitrary: garbage },
);
const bodyText = fc.oneof(fc.constant(''), fc.constantFrom('hello', '5\r\nhello\r\n0\r\n\r\n', 'zz\r\n', '0\r\n\r\n', 'ffffffffffff\r\nx', '4000\r\n' + 'y'.repeat(0x4000) + '\r\n4000\r\n' + 'y'.repeat(0x4000) + '\r\n0\r\n\r\n'), garbage);
const rawRequest = fc
  .tuple(requestLine, fc.array(headerLine, { maxLength: 6 }), fc.oneof({ weight: 8, arbitrary: fc.constant('\r\n') }, { weight: 1, arbitrary: fc.constantFrom('\n', '\r') }), bodyText, fc.nat({ max: 2 }))
  .map(([line, headers, eol, body, repeat]) => {
    const one = `${line}${eol}${headers.join(eol)}${headers.length ? eol : ''}${eol}${body}`;
    return one.repeat(repeat + 1); // pipelined copies
  });

function rawSend(payload: string): Promise<{ statuses: number[]; text: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: running.port });
    let text = '';
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.setEncoding('latin1');
    socket.on('error', () => undefined);
    socket.on('data', (c: string) => (text += c));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ statuses: [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1])), text });
    });
    socket.on('connect', () => socket.end(Buffer.from(payload, 'latin1')));
  });
}

test(`fuzz over raw sockets: ${RAW_RUNS} malformed requests, no 5xx, no crash`, async (t) => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(rawRequest, async (payload) => {
      const reply = await rawSend(payload);
      for (const status of reply.statuses.length ? reply.statuses : [0]) statuses.set(status, (statuses.get(status) ?? 0) + 1);
      for (const status of reply.statuses) {
        assert.ok(status < 500 || (status === 503 && !reply.text.includes('"internal"')), `${JSON.stringify(payload.slice(0, 200))} → ${reply.text.slice(0, 300)}`);
      }
    }),
    { seed: SEED, numRuns: RAW_RUNS, endOnFailure: true },
  );
  const summary = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ');
  t.diagnostic(`${RAW_RUNS} raw payloads; statuses (0 = closed without an answer) ${summary}`);
  assert.ok((statuses.get(400) ?? 0) > 0, 'malformed requests were answered 400');
  assert.deepEqual(running.logs.filter((l) => l.includes('request handler failed')), []);
  // still alive and well
  await waitFor(() => running.sidecar.store.all().every((s) => s.status === 'UP'), { what: 'checks UP again', timeoutMs: 30_000 });
  assert.deepEqual([(await call(running.port, 'GET', '/livez')).status, (await call(running.port, 'GET', '/livez')).text], [200, 'ok']);
  assert.equal((await call(running.port, 'GET', '/admin/diagnostics', { authorization: `Bearer ${KEY}` })).status, 200);
});
