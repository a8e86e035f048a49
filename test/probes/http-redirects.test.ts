/**
 * Redirects never carry credentials to another origin (issue 14, defect 1).
 * Real servers: the check's origin on 127.0.0.1, "elsewhere" on 127.0.0.2
 * (another origin on loopback), and an https origin that redirects to http.
 * Each server records every request it receives with its headers, so the
 * assertions are about what really crossed the wire.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { CheckRunner } from '../../src/health/runner';
import { redirectAllowed } from '../../src/probes/http';
import { selfSignedCert } from '../helpers/private-services';
import { checkFromYaml, leaks, runnerFor } from './support';

const CANARY = {
  bearer: 'canary-bearer-7f3a9c1e5d',
  cookie: 'canary-cookie-2b8e4f6a0c',
  declared: 'canary-declared-9d1c3e5f7a',
  apiKey: 'canary-apikey-4a6c8e0b2d',
};
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'x-internal', 'x-api-key'];

interface Received {
  server: string;
  url: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
const received: Received[] = [];

type Route = (req: http.IncomingMessage, res: http.ServerResponse) => void;
interface Origin {
  url: string;
  close(): Promise<void>;
}

async function listen(server: http.Server | https.Server, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

async function startOrigin(name: string, host: string, routes: Record<string, Route>, tls?: { cert: string; key: string }): Promise<Origin> {
  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ server: name, url: req.url ?? '', method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      const route = routes[(req.url ?? '').split('?')[0]!];
      if (route) route(req, res);
      else {
        res.statusCode = 404;
        res.end('no such path');
      }
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  const port = await listen(server, host);
  return {
    url: `${tls ? 'https' : 'http'}://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const redirect = (to: () => string, status = 302): Route => (_req, res) => {
  res.writeHead(status, { location: to() });
  res.end();
};
const ok: Route = (_req, res) => res.end('ok');

let home: Origin; // the check's origin, 127.0.0.1
let elsewhere: Origin; // another origin, 127.0.0.2
let secure: Origin; // an https origin that redirects to plain http
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

before(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  elsewhere = await startOrigin('elsewhere', '127.0.0.2', {
    '/landing': ok,
    '/back-home': redirect(() => `${home.url}/landing`),
    '/post-target': ok,
  });
  home = await startOrigin('home', '127.0.0.1', {
    '/to-elsewhere': redirect(() => `${elsewhere.url}/landing?token=path-canary-6e2f`),
    '/to-elsewhere-and-back': redirect(() => `${elsewhere.url}/back-home`),
    '/same-origin': redirect(() => '/landing'),
    '/landing': ok,
    '/to-ftp': redirect(() => 'ftp://127.0.0.1/file'),
    '/post-303': redirect(() => '/landing', 303),
    '/post-307-elsewhere': redirect(() => `${elsewhere.url}/post-target`, 307),
    '/loop': redirect(() => '/loop'),
  });
  const { cert, key } = await selfSignedCert();
  secure = await startOrigin('secure', '127.0.0.1', { '/downgrade': redirect(() => `${home.url}/landing`) }, { cert, key });
});

const runners: CheckRunner[] = [];
after(async () => {
  await Promise.all(runners.map((r) => r.close()));
  await Promise.all([home?.close(), elsewhere?.close(), secure?.close()]);
  await provider.shutdown();
  trace.disable();
  context.disable();
});

/** An http check with every kind of credential header, following redirects per `follow`. */
function checkWith(url: string, follow: string, extra = '') {
  const built = checkFromYaml(
    `kind: http
    url: ${url}
    followRedirects: ${follow}
    headers:
      Authorization: Bearer ${CANARY.bearer}
      Cookie: session=${CANARY.cookie}
      X-Internal: ${CANARY.declared}
      X-API-Key: ${CANARY.apiKey}
      X-Request-Source: health-probe
    secretHeaders: [X-Internal]
    ${extra}`,
  );
  const runner = runnerFor(built.check, built.redactor);
  runners.push(runner);
  return { ...built, runner };
}

/** Requests one server received during `fn`. */
async function during<T>(fn: () => Promise<T>): Promise<{ value: T; requests: Received[] }> {
  const start = received.length;
  const value = await fn();
  return { value, requests: received.slice(start) };
}

function credentialsIn(request: Received): string[] {
  return CREDENTIAL_HEADERS.filter((h) => request.headers[h] !== undefined);
}

describe('http probe redirects: credentials never leave their origin', () => {
  test('followRedirects: true means same-origin: a redirect to another origin is not followed, nothing reaches it', async () => {
    const { runner, check, secrets } = checkWith(`${home.url}/to-elsewhere`, 'true');
    assert.equal(check.kind === 'http' && check.followRedirects, 'same-origin');
    const { value: run, requests } = await during(() => runner.run('manual'));
    assert.equal(run.ok, false);
    assert.match(run.message, /redirect to http:\/\/127\.0\.0\.2:\d+ not followed: another origin \(followRedirects: same-origin\)/);
    assert.deepEqual(requests.map((r) => r.server), ['home']);
    assert.deepEqual(leaks(run.message, [...secrets, 'path-canary-6e2f']), []);
  });

  test('same-origin redirects are followed with the credentials', async () => {
    const { runner } = checkWith(`${home.url}/same-origin`, 'same-origin');
    const { value: run, requests } = await during(() => runner.run('manual'));
    assert.equal(run.ok, true, run.message);
    assert.deepEqual(requests.map((r) => `${r.server} ${r.url}`), ['home /same-origin', 'home /landing']);
    assert.deepEqual(credentialsIn(requests[1]!), CREDENTIAL_HEADERS);
    assert.equal(requests[1]!.headers.authorization, `Bearer ${CANARY.bearer}`);
  });

  test('"any": the other origin is reached without Authorization, Cookie, X-API-Key or declared secret headers; other headers kept', async () => {
    const { runner, secrets } = checkWith(`${home.url}/to-elsewhere`, 'any');
    const { value: run, requests } = await during(() => runner.run('manual'));
    assert.equal(run.ok, true, run.message);
    assert.deepEqual(requests.map((r) => r.server), ['home', 'elsewhere']);
    assert.deepEqual(credentialsIn(requests[0]!), CREDENTIAL_HEADERS, 'the check origin gets its credentials');
    const foreign = requests[1]!;
    assert.deepEqual(credentialsIn(foreign), []);
    assert.equal(foreign.headers['x-request-source'], 'health-probe');
    const raw = JSON.stringify(foreign.headers);
    for (const canary of Object.values(CANARY)) assert.ok(!raw.includes(canary), `${canary} reached the other origin`);
    // the message names the final origin only: not the redirect's path or query
    assert.match(run.message, new RegExp(`^GET ${elsewhere.url.replace(/\./g, '\\.')} \\(after 1 redirect from GET ${home.url.replace(/\./g, '\\.')}/to-elsewhere\\): status 200$`));
    assert.ok(!run.message.includes('path-canary-6e2f'));
    assert.deepEqual(leaks(run.message, secrets), []);
  });

  test('once dropped, credentials stay dropped: back on the check origin after a foreign hop, none are sent', async () => {
    const { runner } = checkWith(`${home.url}/to-elsewhere-and-back`, 'any');
    const { value: run, requests } = await during(() => runner.run('manual'));
    assert.equal(run.ok, true, run.message);
    assert.deepEqual(requests.map((r) => `${r.server} ${r.url}`), ['home /to-elsewhere-and-back', 'elsewhere /back-home', 'home /landing']);
    assert.deepEqual(credentialsIn(requests[2]!), []);
  });

  test('an allow-list follows the listed hosts only', async () => {
    const allowed = checkWith(`${home.url}/to-elsewhere`, '["127.0.0.2"]');
    const followed = await during(() => allowed.runner.run('manual'));
    assert.equal(followed.value.ok, true, followed.value.message);
    assert.deepEqual(followed.requests.map((r) => r.server), ['home', 'elsewhere']);
    assert.deepEqual(credentialsIn(followed.requests[1]!), []);

    const other = checkWith(`${home.url}/to-elsewhere`, '["api.example.com", "*.example.org"]');
    const refused = await during(() => other.runner.run('manual'));
    assert.equal(refused.value.ok, false);
    assert.match(refused.value.message, /not followed: host not in followRedirects/);
    assert.deepEqual(refused.requests.map((r) => r.server), ['home']);
  });

  test('https → http is refused even under "any"', async () => {
    const { runner } = checkWith(`${secure.url}/downgrade`, 'any', 'tls: { insecureSkipVerify: true }');
    const { value: run, requests } = await during(() => runner.run('manual'));
    assert.equal(run.ok, false);
    assert.match(run.message, /redirect to http:\/\/127\.0\.0\.1:\d+ not followed: https → http downgrade/);
    assert.deepEqual(requests.map((r) => r.server), ['secure']);
  });

  test('schemes other than http(s) are not followed; redirect loops stop', async () => {
    const ftp = await checkWith(`${home.url}/to-ftp`, 'any').runner.run('manual');
    assert.equal(ftp.ok, false);
    assert.match(ftp.message, /redirect to ftp: not followed: only http and https are followed/);
    const loop = await checkWith(`${home.url}/loop`, 'same-origin').runner.run('manual');
    assert.equal(loop.ok, false);
    assert.match(loop.message, /more than 5 redirects/);
  });

  test('303 turns a POST into a GET without the body; a body never goes to another origin (307)', async () => {
    const seeOther = checkWith(`${home.url}/post-303`, 'same-origin', 'method: POST\n    body: "{\\"ping\\": 1}"');
    const { value: run, requests } = await during(() => seeOther.runner.run('manual'));
    assert.equal(run.ok, true, run.message);
    assert.deepEqual(requests.map((r) => `${r.method} ${r.url} ${r.body}`), ['POST /post-303 {"ping": 1}', 'GET /landing ']);

    const temporary = checkWith(`${home.url}/post-307-elsewhere`, 'any', 'method: POST\n    body: "{\\"ping\\": 1}"');
    const refused = await during(() => temporary.runner.run('manual'));
    assert.equal(refused.value.ok, false);
    assert.match(refused.value.message, /the request has a body, which is not sent to another origin/);
    assert.deepEqual(refused.requests.map((r) => r.server), ['home']);
  });

  test('the hops are recorded on the attempt span', async () => {
    exporter.reset();
    const { runner } = checkWith(`${home.url}/to-elsewhere-and-back`, 'any');
    const run = await runner.run('manual');
    assert.equal(run.ok, true, run.message);
    const attempt = exporter.getFinishedSpans().find((s) => s.name.endsWith(' attempt'));
    assert.ok(attempt, 'attempt span exported');
    const hops = attempt.events.filter((e) => e.name === 'http.redirect').map((e) => e.attributes);
    assert.deepEqual(hops, [
      { 'http.response.status_code': 302, 'healthcheck.redirect.to': elsewhere.url, 'healthcheck.redirect.credentials': 'dropped' },
      { 'http.response.status_code': 302, 'healthcheck.redirect.to': home.url, 'healthcheck.redirect.credentials': 'dropped' },
    ]);
    assert.equal(attempt.attributes['healthcheck.http.redirects'], 2);
  });
});

describe('redirectAllowed (pure)', () => {
  const origin = new URL('https://api.example.com/health');
  const cases: [policy: Parameters<typeof redirectAllowed>[0], to: string, allowed: boolean][] = [
    ['same-origin', 'https://api.example.com/other', true],
    ['same-origin', 'https://api.example.com:8443/other', false],
    ['same-origin', 'https://www.example.com/', false],
    ['any', 'https://anywhere.test/', true],
    [['www.example.com'], 'https://www.example.com/x', true],
    [['www.example.com'], 'https://WWW.Example.com/x', true],
    [['www.example.com:8443'], 'https://www.example.com/x', false],
    [['www.example.com:443'], 'https://www.example.com/x', true],
    [['*.example.org'], 'https://a.b.example.org/', true],
    [['*.example.org'], 'https://example.org/', false],
    [['*.example.org'], 'https://badexample.org/', false],
    [['[::1]:8080'], 'http://[::1]:8080/', true],
  ];
  for (const [policy, to, allowed] of cases) {
    test(`${JSON.stringify(policy)} → ${to}: ${allowed ? 'followed' : 'refused'}`, () => {
      assert.equal(redirectAllowed(policy, new URL(to), origin), allowed);
    });
  }
});
