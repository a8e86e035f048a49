import assert from 'node:assert/strict';
import type http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { CheckRunner } from '../../src/health/runner';
import { Redactor } from '../../src/redact';
import { selfSignedCert } from '../helpers/private-services';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { describeFaultBehaviour } from './faults';
import { checkFromYaml, runnerFor, type CheckOptions } from './support';

let server: TestHttpServer;

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}
const seen: Seen[] = [];
/** sockets of requests the server never answered, by path */
const hanging = new Map<string, net.Socket>();

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
  const path = (req.url ?? '').split('?')[0];
  switch (path) {
    case '/healthz':
      res.end('ok: all good');
      return;
    case '/error':
      res.statusCode = 500;
      res.end('internal trouble');
      return;
    case '/json':
      res.setHeader('content-type', 'application/json');
      res.end('{"status":"DOWN","version":"1.2.3"}');
      return;
    case '/hang':
      hanging.set(req.url ?? '', req.socket); // never answered
      return;
    default:
      res.statusCode = 404;
      res.end('not found');
  }
}

const runners: CheckRunner[] = [];
function httpRunner(body: string, options: CheckOptions = {}, redactor?: Redactor) {
  const built = checkFromYaml(`kind: http\n    ${body.trim()}`, options);
  const runner = runnerFor(built.check, redactor ?? built.redactor);
  runners.push(runner);
  return { ...built, runner };
}

describeFaultBehaviour({
  kind: 'http',
  setup: async () => {
    server = await startHttpServer(handler);
  },
  teardown: async () => {
    await server.close();
  },
  target: () => ({ host: '127.0.0.1', port: server.port }),
  url: (proxy) => proxy.url('http', '', '/healthz'),
  successMessage: (proxy) => `GET http://127.0.0.1:${proxy.port}/healthz: status 200`,
  where: (proxy) => `GET http://127.0.0.1:${proxy.port}/healthz`,
  secrets: [],
});

describe('http probe: what the server answers', () => {
  before(async () => {
    server = await startHttpServer(handler);
  });
  after(async () => {
    for (const r of runners.splice(0)) await r.close();
    for (const socket of hanging.values()) socket.destroy();
    await server.close();
  });

  test('status outside expect.status (200-299 by default) is a failure naming both', async () => {
    const { runner } = httpRunner(`url: ${server.url}/error`);
    const result = await runner.run('manual');
    assert.deepEqual(
      { ok: result.ok, outcome: result.outcome, message: result.message },
      { ok: false, outcome: 'failure', message: `GET ${server.url}/error: status 500, expected 200-299` },
    );
  });

  test('expect.status accepts a listed code outside 2xx', async () => {
    const { runner } = httpRunner(`url: ${server.url}/error\n    expect: { status: [500] }`);
    const result = await runner.run('manual');
    assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: `GET ${server.url}/error: status 500` });
  });

  test('bodyContains: match succeeds, mismatch fails with the expected text', async () => {
    const ok = await httpRunner(`url: ${server.url}/healthz\n    expect: { bodyContains: "all good" }`).runner.run('manual');
    assert.equal(ok.outcome, 'success', ok.message);
    const bad = await httpRunner(`url: ${server.url}/json\n    expect: { bodyContains: '"status":"UP"' }`).runner.run('manual');
    assert.deepEqual(
      { ok: bad.ok, outcome: bad.outcome, message: bad.message },
      { ok: false, outcome: 'failure', message: `GET ${server.url}/json: status 200, body does not contain "\\"status\\":\\"UP\\""` },
    );
  });

  test('bodyRegex: match succeeds, mismatch fails naming the pattern', async () => {
    const ok = await httpRunner(`url: ${server.url}/json\n    expect: { bodyRegex: '"version":"\\d+\\.\\d+' }`).runner.run('manual');
    assert.equal(ok.outcome, 'success', ok.message);
    const bad = await httpRunner(`url: ${server.url}/json\n    expect: { bodyRegex: '"status":"(UP|OK)"' }`).runner.run('manual');
    assert.deepEqual(
      { ok: bad.ok, outcome: bad.outcome, message: bad.message },
      { ok: false, outcome: 'failure', message: `GET ${server.url}/json: status 200, body does not match /"status":"(UP|OK)"/` },
    );
  });

  test('keep-alive: 10 runs use one TCP connection at the server', async () => {
    const fresh = await startHttpServer(handler);
    try {
      const { runner } = httpRunner(`url: ${fresh.url}/healthz\n    expect: { bodyContains: ok }`);
      for (let i = 0; i < 10; i++) assert.equal((await runner.run('manual')).outcome, 'success');
      assert.equal(fresh.requests(), 10);
      assert.equal(fresh.connections(), 1);
    } finally {
      await fresh.close();
    }
  });

  test('a timed-out request is aborted: the server sees its socket closed', async () => {
    const { check, runner } = httpRunner(`url: ${server.url}/hang?id=abort-1`, { timeout: '200ms' });
    // the server never answers: only the timeout can end the run, and the abort must reach the socket
    const result = await runner.run('manual');
    assert.deepEqual({ outcome: result.outcome, message: result.message }, { outcome: 'timeout', message: `timed out after ${check.timeout}ms` });
    const socket = hanging.get('/hang?id=abort-1');
    assert.ok(socket, 'the server got the request');
    await waitFor(() => socket.destroyed, { what: 'server-side socket of the aborted request to close', timeoutMs: 30_000 });
  });

  test('HEAD is sent as HEAD and succeeds without a body', async () => {
    const before = seen.length;
    const { runner } = httpRunner(`url: ${server.url}/healthz\n    method: HEAD`);
    const result = await runner.run('manual');
    assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: `HEAD ${server.url}/healthz: status 200` });
    assert.deepEqual(seen.slice(before).map((s) => `${s.method} ${s.url}`), ['HEAD /healthz']);
  });

  test('custom headers reach the server; a secret header value never appears in a message', async () => {
    const before = seen.length;
    const token = 'CANARY-BEARER-TOKEN-91c2';
    const { runner, secrets } = httpRunner(`url: ${server.url}/error?probe=headers\n    headers: { X-Probe-Tag: blue-42, Authorization: "Bearer ${token}" }`);
    assert.ok(secrets.includes(token), 'the loader marks the Authorization token as a secret');
    const result = await runner.run('manual');
    assert.equal(result.outcome, 'failure');
    assert.ok(!result.message.includes(token));
    const request = seen.slice(before).find((s) => s.url === '/error?probe=headers');
    assert.ok(request);
    assert.equal(request.headers['x-probe-tag'], 'blue-42');
    assert.equal(request.headers.authorization, `Bearer ${token}`);
    assert.equal(request.headers['user-agent'], 'otel-health-sidecar');
  });

  test('the password of a URL with credentials does not leak into a failure message', async () => {
    const password = 'CANARY-HTTP-PW-55aa';
    const url = new URL(`${server.url}/error`);
    url.username = 'probe';
    url.password = password;
    // no secrets given to the redactor: the probe must not put the URL's credentials in its message at all
    const { runner } = httpRunner(`url: ${url.toString()}`, {}, new Redactor());
    const result = await runner.run('manual');
    assert.deepEqual({ outcome: result.outcome, message: result.message }, { outcome: 'failure', message: `GET ${server.url}/error: status 500, expected 200-299` });
  });
});

describe('http probe: https with a self-signed certificate', () => {
  let tlsServer: https.Server;
  let url: string;
  before(async () => {
    const { cert, key } = await selfSignedCert();
    tlsServer = https.createServer({ cert, key }, (_req, res) => res.end('secure ok'));
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(tlsServer.address() as net.AddressInfo).port}/`;
  });
  after(async () => {
    for (const r of runners.splice(0)) await r.close();
    tlsServer.closeAllConnections();
    await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
  });

  test('tls.insecureSkipVerify: true → success', async () => {
    const { runner } = httpRunner(`url: ${url}\n    tls: { insecureSkipVerify: true }\n    expect: { bodyContains: secure }`);
    const result = await runner.run('manual');
    assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: `GET ${url}: status 200` });
  });

  test('tls.insecureSkipVerify: false → failure that mentions the certificate', async () => {
    const { runner } = httpRunner(`url: ${url}\n    tls: { insecureSkipVerify: false }`);
    const result = await runner.run('manual');
    assert.equal(result.outcome, 'failure');
    assert.ok(result.message.startsWith(`GET ${url}: `), result.message);
    assert.match(result.message, /certificate/);
  });
});
