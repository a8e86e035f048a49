/**
 * Secret canaries (SPEC §5, §8): unique strings configured as a Redis password
 * (a private redis-server with requirepass, right and wrong), PostgreSQL
 * passwords (the shared trust-auth server ignores them; a closed port fails),
 * HTTP URL passwords and secret header values, a TLS private key, a webhook
 * Authorization header and HMAC secret, and API keys (a valid one and a wrong one
 * presented by the client); and, really used against real servers: the client
 * private keys of a TLS-only redis-server and of an ssl=on PostgreSQL (every
 * base64 line of each key is a canary of its own), the password of Sentinels
 * (right and wrong) and of the master they name. Every endpoint, error path and log line is driven;
 * no canary may appear in any response (headers or body), log line, exported
 * span (ours and the ioredis/pg/http instrumentations'), or webhook body.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, test } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

// Telemetry first: the instrumentations patch ioredis/pg/http when those are first
// loaded, so the product (which loads them) is imported only after this.
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);
registerInstrumentations({ tracerProvider: provider, instrumentations: [new HttpInstrumentation(), new IORedisInstrumentation(), new PgInstrumentation()] });

const canary = (label: string) => `CANARY${label}${randomBytes(8).toString('hex')}`;
const C = {
  REDIS_PW: canary('redispw'),
  REDIS_WRONG_PW: canary('rediswrong'),
  REDIS_USER_PW: canary('redisuserpw'),
  PG_PW: canary('pgpw'),
  PG_DOWN_PW: canary('pgdownpw'),
  HTTP_URL_PW: canary('httpurlpw'),
  HTTP_REFUSED_PW: canary('httprefusedpw'),
  HTTP_BEARER: canary('httpbearer'),
  HTTP_TOKEN: canary('httptoken'),
  TLS_KEY: canary('tlskey'),
  HOOK_PW: canary('hookpw'),
  HOOK_SECRET: canary('hooksecret'),
  API_KEY: canary('apikey'),
  SENTINEL_PW: canary('sentinelpw'),
  SENTINEL_WRONG_PW: canary('sentinelwrong'),
  SENTINEL_DATA_PW: canary('sentineldatapw'),
  PG_TLS_PW: canary('pgtlspw'),
  /** PEM private keys of client certificates, made in before() */
  REDIS_TLS_KEY: '',
  PG_TLS_KEY: '',
};
/**
 * Issue 14.3/14.4: not secrets to the Redactor, yet never shown. SERVICE_NAME is
 * telemetry.serviceName read with ${file:…} (a secret source: never in any output);
 * the ENV_* values are plain ${VAR}s in a check's body, query string and a
 * non-secret header: they reach the dependency, and no HTTP response (the
 * diagnostics' effective config above all) shows them.
 */
const SERVICE_NAME = canary('servicename');
const ENV_PLAIN = { ENV_BODY: canary('envbody'), ENV_QUERY: canary('envquery'), ENV_HEADER: canary('envheader') };
/** presented by a client, never configured: the Redactor does not know it, so only "never echo input credentials" protects it */
const WRONG_KEY = canary('wrongkey');
/** a leak of part of a PEM key is a leak too: each of its base64 lines is looked for */
const pemLines = (pem: string) => pem.split('\n').filter((line) => line.length >= 16 && !line.startsWith('-----'));
const allCanaries = () => [...Object.values(C).filter((v) => v !== ''), ...pemLines(C.REDIS_TLS_KEY), ...pemLines(C.PG_TLS_KEY), WRONG_KEY, SERVICE_NAME];
/** environment for the config: the canaries, and the certificates that go with the keys (not secrets) */
const ENV: Record<string, string> = {};

type Support = typeof import('./support');
type Servers = typeof import('../helpers/servers');
type Private = typeof import('../helpers/private-services');
type Datastores = typeof import('../helpers/private-datastores');

let support: Support;
let servers: Servers;
let running: Awaited<ReturnType<Support['startSidecar']>>;
let dependency: Awaited<ReturnType<Servers['startHttpServer']>>;
let hook: Awaited<ReturnType<Servers['startHttpServer']>>;
let redis: Awaited<ReturnType<Private['startPrivateRedis']>>;
let tlsRedis: Awaited<ReturnType<Datastores['startTlsRedis']>>;
let sentinels: Awaited<ReturnType<Datastores['startSentinelSet']>>;
let tlsPostgres: Awaited<ReturnType<Private['startPrivatePostgres']>>;
let yaml = '';
const CHECK_NAMES = [
  'redis-ok', 'redis-wrongpass', 'redis-user', 'pg-ok', 'pg-badquery', 'pg-down', 'http-ok', 'http-500', 'http-refused', 'https-badkey',
  'redis-tls', 'redis-sentinel', 'redis-sentinel-wrongpw', 'pg-tls', 'http-env', 'http-internal-secret',
];
const dependencyAuth: string[] = [];
/** what the dependency received from http-env: url, X-Tenant header, body */
const dependencyEnv: string[] = [];
const hookBodies: string[] = [];

before(async () => {
  support = await import('./support');
  servers = await import('../helpers/servers');
  const { startPrivateRedis, startPrivatePostgres } = await import('../helpers/private-services');
  const { startTlsRedis, startSentinelSet } = await import('../helpers/private-datastores');
  const { makeCa, makeClientCert, makeServerCert } = await import('../helpers/certs');
  redis = await startPrivateRedis(C.REDIS_PW);
  tlsRedis = await startTlsRedis({ authClients: 'yes' });
  C.REDIS_TLS_KEY = tlsRedis.client.key;
  sentinels = await startSentinelSet({ password: C.SENTINEL_DATA_PW, sentinelPassword: C.SENTINEL_PW });
  const pgCa = await makeCa(10, 'Canary PG CA');
  const pgServerCert = await makeServerCert(pgCa, 10);
  const pgClientCert = await makeClientCert(pgCa, 10, 'postgres');
  C.PG_TLS_KEY = pgClientCert.key;
  // ssl_ca_file set: the server asks for the client certificate, so the key is really used in the handshake
  tlsPostgres = await startPrivatePostgres(C.PG_TLS_PW, { tls: { cert: pgServerCert.cert, key: pgServerCert.key, ca: pgCa.cert } });
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const serviceNameFile = join(mkdtempSync(join(tmpdir(), 'canary-')), 'service-name');
  writeFileSync(serviceNameFile, `${SERVICE_NAME}\n`);
  Object.assign(ENV, C, ENV_PLAIN, {
    REDIS_TLS_CA: tlsRedis.ca.cert,
    REDIS_TLS_CERT: tlsRedis.client.cert,
    PG_TLS_CA: pgCa.cert,
    PG_TLS_CERT: pgClientCert.cert,
  });
  dependency = await servers.startHttpServer((req, res) => {
    dependencyAuth.push(`${req.headers.authorization} ${req.headers['x-token']}`);
    if (req.url?.startsWith('/env')) {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        dependencyEnv.push(`${req.url} ${req.headers['x-tenant']} ${body}`);
        res.end('ok');
      });
      return;
    }
    res.statusCode = req.url === '/fail' ? 500 : 200;
    res.end(req.url === '/fail' ? 'failing' : 'ok');
  });
  hook = await servers.startHttpServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hookBodies.push(body);
      res.end('ok');
    });
  });
  const closed = await servers.freePort();
  const { hostPort, DATABASE_URL } = servers;
  const pg = hostPort(DATABASE_URL);
  const db = new URL(DATABASE_URL).pathname;
  yaml = `
server:
  port: 0
  host: 127.0.0.1
  showDetails: when-authorized
  auth:
    keys:
      - { name: ops, key: "\${API_KEY}", rateLimit: 10000/1m }
    anonymousRateLimit: 200/1m
telemetry:
  serviceName: "\${file:${serviceNameFile}}"
defaults:
  retry: { attempts: 2, backoff: { initial: 10ms, max: 20ms }, jitter: false }
  timeout: 2s
  thresholds: { failure: 1 }
checks:
  - { name: redis-ok, kind: redis, url: "redis://:\${REDIS_PW}@127.0.0.1:${redis.port}", interval: 1h }
  - { name: redis-wrongpass, kind: redis, url: "redis://:\${REDIS_WRONG_PW}@127.0.0.1:${redis.port}", interval: 1h, critical: false, retry: { attempts: 1 } }
  - { name: redis-user, kind: redis, url: "redis://nobody:\${REDIS_USER_PW}@127.0.0.1:${redis.port}", interval: 1h, critical: false, retry: { attempts: 1 } }
  - { name: pg-ok, kind: postgres, url: "postgres://postgres:\${PG_PW}@${pg.host}:${pg.port}${db}", interval: 1h }
  - { name: pg-badquery, kind: postgres, url: "postgres://postgres:\${PG_PW}@${pg.host}:${pg.port}${db}", query: "SELECT * FROM no_such_table_for_canaries", interval: 1h, critical: false }
  - { name: pg-down, kind: postgres, url: "postgres://postgres:\${PG_DOWN_PW}@127.0.0.1:${closed}/x", interval: 1h, critical: false }
  - name: http-ok
    kind: http
    url: "http://user:\${HTTP_URL_PW}@127.0.0.1:${dependency.port}/ok"
    interval: 1h
    headers: { Authorization: "Bearer \${HTTP_BEARER}", X-Token: "\${HTTP_TOKEN}" }
    secretHeaders: [X-Token]
  - name: http-500
    kind: http
    url: "http://user:\${HTTP_URL_PW}@127.0.0.1:${dependency.port}/fail"
    interval: 1h
    critical: false
    headers: { Authorization: "Bearer \${HTTP_BEARER}", X-Token: "\${HTTP_TOKEN}" }
    secretHeaders: [X-Token]
  - { name: http-refused, kind: http, url: "http://user:\${HTTP_REFUSED_PW}@127.0.0.1:${closed}/", interval: 1h, critical: false }
  - name: http-env
    kind: http
    method: POST
    url: "http://127.0.0.1:${dependency.port}/env?tenant=\${ENV_QUERY}&page=1"
    headers: { X-Tenant: "\${ENV_HEADER}", Content-Type: application/json }
    body: '{"tenant":"\${ENV_BODY}"}'
    interval: 1h
  - { name: http-internal-secret, kind: http, url: "http://127.0.0.1:${dependency.port}/internal-secret", interval: 1h }
  - { name: https-badkey, kind: http, url: "https://127.0.0.1:${dependency.port}/", interval: 1h, critical: false, tls: { key: "\${TLS_KEY}" } }
  - { name: redis-tls, kind: redis, url: "rediss://127.0.0.1:${tlsRedis.port}", interval: 1h, tls: { ca: "\${REDIS_TLS_CA}", cert: "\${REDIS_TLS_CERT}", key: "\${REDIS_TLS_KEY}" } }
  - { name: redis-sentinel, kind: redis, url: "redis://:\${SENTINEL_DATA_PW}@mymaster", sentinels: ["${sentinels.sentinelAddresses()[0]}"], masterName: mymaster, sentinelPassword: "\${SENTINEL_PW}", interval: 1h }
  - { name: redis-sentinel-wrongpw, kind: redis, url: "redis://:\${SENTINEL_DATA_PW}@mymaster", sentinels: ["${sentinels.sentinelAddresses()[0]}"], masterName: mymaster, sentinelPassword: "\${SENTINEL_WRONG_PW}", interval: 1h, critical: false, retry: { attempts: 1 } }
  - { name: pg-tls, kind: postgres, url: "postgres://postgres:\${PG_TLS_PW}@127.0.0.1:${tlsPostgres.port}/postgres", sslmode: verify-full, tls: { ca: "\${PG_TLS_CA}", cert: "\${PG_TLS_CERT}", key: "\${PG_TLS_KEY}" }, interval: 1h }
notifications:
  - { name: hook, kind: webhook, url: "http://127.0.0.1:${hook.port}/hook", headers: { Authorization: "Bearer \${HOOK_PW}" }, secret: "\${HOOK_SECRET}", cooldown: 0s, retry: { attempts: 1 } }
`;
  running = await support.startSidecar(yaml, { env: ENV });
  await servers.waitFor(() => running.sidecar.store.all().every((s) => s.status !== 'UNKNOWN'), { what: 'every check has a result', timeoutMs: 30_000 });
});

after(async () => {
  await running?.stop();
  await dependency?.close();
  await hook?.close();
  await redis?.stop();
  await tlsRedis?.stop();
  await sentinels?.stop();
  await tlsPostgres?.stop();
  await provider.shutdown();
});

function headerText(headers: IncomingHttpHeaders): string {
  return Object.entries(headers)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`)
    .join('\n');
}

function spanText(span: ReadableSpan): string {
  return JSON.stringify({ name: span.name, attributes: span.attributes, status: span.status, events: span.events.map((e) => ({ name: e.name, attributes: e.attributes })), resource: span.resource.attributes });
}

interface Output {
  where: string;
  text: string;
}

/** Every endpoint, method and error path, as anonymous, with the key (both styles) and with a wrong key. */
async function drive(port: number): Promise<{ outputs: Output[]; statuses: Map<string, number> }> {
  const { call, bearer, apiKey } = support;
  const outputs: Output[] = [];
  const checks = CHECK_NAMES;
  const credentials: Record<string, Record<string, string>> = { anonymous: {}, key: bearer(C.API_KEY), xkey: apiKey(C.API_KEY), wrong: bearer(WRONG_KEY), wrongX: apiKey(WRONG_KEY) };
  const gets = [
    '/', '/?refresh=5', '/status/fragment', '/livez', '/readyz', '/startupz', '/livez?verbose', '/readyz?verbose', '/startupz?verbose', '/health/ready?verbose&exclude=pg-ok',
    '/health', '/health/system', '/health/stats', '/health/stats?recent=5', '/health/incidents', '/metrics', '/-/healthy',
    '/admin/diagnostics', '/admin/notifications/dead', '/health/nope', '/health?bad=1', '/readyz?bad', '/nope',
    ...checks.map((name) => `/health/${name}`),
  ];
  const statuses = new Map<string, number>();
  for (const [who, headers] of Object.entries(credentials)) {
    for (const path of gets) {
      const reply = await call(port, 'GET', path, headers);
      statuses.set(`${who} GET ${path}`, reply.status);
      outputs.push({ where: `${who} GET ${path} → ${reply.status}`, text: `${headerText(reply.headers)}\n${reply.text}` });
    }
    for (const name of [...checks, 'nope']) {
      for (const action of ['run', 'reset', 'run']) {
        const reply = await call(port, 'POST', `/admin/checks/${name}/${action}`, headers);
        statuses.set(`${who} POST ${name}/${action}`, reply.status);
        outputs.push({ where: `${who} POST /admin/checks/${name}/${action} → ${reply.status}`, text: `${headerText(reply.headers)}\n${reply.text}` });
      }
    }
    for (const [method, path, body] of [
      ['DELETE', '/health', undefined],
      ['POST', '/admin/notifications/dead', undefined],
      ['PUT', '/admin/diagnostics', `{"key":"${WRONG_KEY}"}`],
      ['POST', '/admin/checks/http-ok/run', Buffer.alloc(20_000, 'x')],
      ['POST', '/admin/checks/http-ok/run', `password=${WRONG_KEY}`],
    ] as const) {
      const reply = await call(port, method, path, headers, body);
      outputs.push({ where: `${who} ${method} ${path} → ${reply.status}`, text: `${headerText(reply.headers)}\n${reply.text}` });
    }
  }
  // a flood: 429s are outputs too
  for (let i = 0; i < 250; i++) {
    const reply = await call(port, 'GET', '/health', i % 2 ? bearer(WRONG_KEY) : {});
    if (reply.status === 429) outputs.push({ where: `flood → 429`, text: `${headerText(reply.headers)}\n${reply.text}` });
  }
  return { outputs, statuses };
}

function scan(outputs: Output[]): string[] {
  const leaks: string[] = [];
  const canaries = allCanaries();
  for (const output of outputs) {
    for (const secret of canaries) if (output.text.includes(secret)) leaks.push(`${output.where}: ${secret.slice(0, 20)}… in ${output.text.slice(0, 300)}`);
  }
  return leaks;
}

test('no canary appears in any response, log line, exported span or notification', async (t) => {
  const port = running.port;
  // Positive controls, before anything is re-run: the secrets really were used (a test that could not see a leak proves nothing).
  const state = (name: string) => running.sidecar.store.get(name)!;
  assert.equal(state('redis-ok').status, 'UP', state('redis-ok').message);
  assert.equal(state('pg-ok').status, 'UP', state('pg-ok').message);
  assert.equal(state('http-ok').status, 'UP', state('http-ok').message);
  // (the transition log keeps the first failure; later re-probes of a refused AUTH may word it differently)
  const firstFailure = (name: string) => running.logs.map((l) => JSON.parse(l)).find((l) => l.check === name && l.to === 'DOWN')?.reason ?? '';
  assert.match(firstFailure('redis-wrongpass'), /authentication failed \(WRONGPASS/);
  assert.match(firstFailure('redis-user'), /authentication failed \(WRONGPASS/);
  assert.match(state('pg-badquery').message, /no_such_table_for_canaries/);
  assert.match(state('pg-down').message, /connection refused/);
  assert.match(state('http-500').message, /status 500/);
  assert.match(state('http-refused').message, /connection refused/);
  assert.equal(state('https-badkey').status, 'DOWN');
  // the new secrets, really used: mutual TLS with each key, the Sentinel and master passwords; a wrong Sentinel password
  assert.equal(state('redis-tls').status, 'UP', state('redis-tls').message);
  assert.equal(state('redis-sentinel').status, 'UP', state('redis-sentinel').message);
  assert.equal(state('pg-tls').status, 'UP', state('pg-tls').message);
  assert.match(state('pg-tls').message, /TLSv1\.[23] \(sslmode verify-full\)$/);
  assert.match(state('redis-sentinel-wrongpw').message, /no Sentinel named the master \(.*authentication failed \(WRONGPASS/);
  assert.ok(pemLines(C.REDIS_TLS_KEY).length >= 2 && pemLines(C.PG_TLS_KEY).length >= 2, 'the PEM keys give canary lines');
  const { outputs, statuses } = await drive(port);
  assert.ok(outputs.some((o) => o.where === 'flood → 429'), 'the flood reached the anonymous limit');
  // issue 14.3/14.4: the plain ${VAR} values were really sent, and no response shows them
  const envSent = dependencyEnv.find((line) => line.startsWith('/env')) ?? '';
  for (const value of Object.values(ENV_PLAIN)) assert.ok(envSent.includes(value), `the dependency received ${value.slice(0, 14)}… (${envSent.slice(0, 200)})`);
  const envLeaks = outputs.flatMap((o) => Object.values(ENV_PLAIN).filter((v) => o.text.includes(v)).map((v) => `${o.where}: ${v.slice(0, 20)}…`));
  assert.deepEqual(envLeaks, [], 'environment values of a body, a query string or a non-secret header in a response');
  const diagnostics = outputs.find((o) => o.where.startsWith('key GET /admin/diagnostics'))!.text;
  for (const written of ['${ENV_QUERY}', '${ENV_HEADER}', '${ENV_BODY}']) assert.ok(diagnostics.includes(written), `diagnostics shows ${written} as written`);
  // a secret serviceName is not the page title; the default is
  assert.match(outputs.find((o) => o.where.startsWith('anonymous GET / →'))!.text, /<h1>health-sidecar health<\/h1>/);
  // no over-masking: a path with "secret" in it is not a credential
  assert.equal(state('http-internal-secret').status, 'UP', state('http-internal-secret').message);
  assert.match(state('http-internal-secret').message, /internal-secret/);
  assert.doesNotMatch(state('http-internal-secret').message, /\*\*\*/);

  assert.ok(dependencyAuth.includes(`Bearer ${C.HTTP_BEARER} ${C.HTTP_TOKEN}`), 'the dependency received the secret headers');
  assert.equal(statuses.get('key GET /admin/diagnostics'), 200);
  assert.equal(statuses.get('wrong GET /admin/diagnostics'), 401);

  await servers.waitFor(() => hookBodies.length > 0, { what: 'a webhook delivery', timeoutMs: 30_000 });
  await new Promise((resolve) => setTimeout(resolve, 200)); // let in-flight deliveries and their logs land
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  const names = new Set(spans.map((s) => s.name));
  assert.ok(names.has('healthcheck redis-wrongpass') && names.has('healthcheck pg-down attempt'), `our spans exported (${[...names].slice(0, 12).join(', ')})`);
  assert.ok(spans.some((s) => s.instrumentationScope.name.includes('ioredis')), 'ioredis client spans exported');
  assert.ok(spans.some((s) => s.instrumentationScope.name.includes('pg')), 'pg client spans exported');

  for (const span of spans) outputs.push({ where: `span ${span.name}`, text: spanText(span) });
  for (const line of running.logs) outputs.push({ where: 'log', text: line });
  for (const body of hookBodies) outputs.push({ where: 'webhook body', text: body });
  assert.ok(running.logs.length > 20, `log lines captured (${running.logs.length})`);

  const leaks = scan(outputs);
  assert.deepEqual(leaks, [], `${leaks.length} leak(s)`);
  t.diagnostic(`canary scan: ${outputs.length} outputs (${spans.length} spans, ${running.logs.length} log lines, ${hookBodies.length} webhook bodies), ${allCanaries().length} canaries, 0 leaks; /metrics answered ${statuses.get('anonymous GET /metrics')}`);
});

test('production path (compiled CLI, OTLP traces, metrics and logs, /metrics): no canary in any response, log line, /metrics text or OTLP request body', async (t) => {
  const { startCli } = await import('../telemetry/support');
  const { ensureBuilt } = await import('../helpers/paths');
  const { startOtlpReceiver } = await import('../helpers/otlp-receiver');
  ensureBuilt();
  const receiver = await startOtlpReceiver();
  const cli = await startCli(yaml, {
    ...ENV,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    LOG_LEVEL: 'debug',
    // all three signals over OTLP (metrics beside /metrics, logs beside stdout)
    OTEL_METRICS_EXPORTER: 'prometheus,otlp',
    OTEL_METRIC_EXPORT_INTERVAL: '300',
    OTEL_LOGS_EXPORTER: 'otlp',
    OTEL_BLRP_SCHEDULE_DELAY: '100',
  });
  try {
    const { call, bearer } = support;
    await servers.waitFor(
      async () => {
        const health = (await call(cli.port, 'GET', '/health', bearer(C.API_KEY))).json();
        return Object.values(health.checks as Record<string, { status: string }>).every((c) => c.status !== 'UNKNOWN');
      },
      { what: 'every check has a result', timeoutMs: 30_000 },
    );
    const { outputs, statuses } = await drive(cli.port);
    // positive controls: metrics served, spans of failing runs exported, logs written
    assert.equal(statuses.get('anonymous GET /metrics'), 200);
    const metrics = outputs.find((o) => o.where.startsWith('anonymous GET /metrics'))!.text;
    assert.match(metrics, /healthcheck_probe_duration_seconds_bucket\{[^}]*healthcheck_name="redis-wrongpass"/);
    await receiver.waitFor((spans) => ['pg-down', 'redis-wrongpass', 'http-refused'].every((name) => spans.some((s) => s.name === `healthcheck ${name}` && s.status.code === 2)), 20_000);
    // positive controls for the other two signals: the failing checks' data points and state-change records arrived
    await receiver.until(
      () =>
        receiver.metrics.some((m) => m.name === 'healthcheck.probe.duration' && m.points.some((p) => p.attributes['healthcheck.name'] === 'redis-wrongpass')) &&
        ['pg-down', 'redis-wrongpass', 'http-refused'].every((name) => receiver.logs.some((r) => r.attributes.check === name && r.attributes.to === 'DOWN')),
      'OTLP metrics of redis-wrongpass and the DOWN records of the failing checks',
      20_000,
    );
    const exit = await cli.stop(); // SIGTERM: flushes pending spans, data points and log records
    assert.equal(exit.code, 0);
    for (const line of cli.lines) outputs.push({ where: 'cli log', text: line });
    for (const body of hookBodies) outputs.push({ where: 'webhook body', text: body });
    for (const request of receiver.requests) outputs.push({ where: `OTLP request ${request.path}`, text: request.body.toString('latin1') });
    const asJson = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
    for (const span of receiver.spans) outputs.push({ where: `OTLP span ${span.name}`, text: asJson(span) });
    for (const metric of receiver.metrics) outputs.push({ where: `OTLP metric ${metric.name}`, text: asJson(metric) });
    for (const record of receiver.logs) outputs.push({ where: `OTLP log record ${String(record.body).slice(0, 60)}`, text: asJson(record) });
    assert.ok(receiver.requests.some((r) => r.path === '/v1/metrics') && receiver.requests.some((r) => r.path === '/v1/logs'), 'metrics and logs requests scanned');
    assert.ok(receiver.spans.some((s) => s.scope.name.includes('ioredis')) && receiver.spans.some((s) => s.scope.name.includes('pg')), 'client spans of the ioredis and pg instrumentations exported');
    const leaks = scan(outputs);
    assert.deepEqual(leaks, [], `${leaks.length} leak(s)`);
    t.diagnostic(`canary scan (CLI): ${outputs.length} outputs (${receiver.requests.length} OTLP requests with ${receiver.spans.length} spans, ${receiver.metrics.length} metrics, ${receiver.logs.length} log records, ${cli.lines.length} log lines, /metrics ${metrics.length} bytes), ${allCanaries().length} canaries, 0 leaks`);
  } finally {
    cli.kill();
    await receiver.close();
  }
});

/**
 * The Redactor's fallback patterns (src/redact.ts), for credentials nobody
 * configured as secrets: each shape of the table loses its secret and keeps
 * the rest; ordinary text (paths and words that merely contain "secret",
 * "token", "password") comes out unchanged.
 */
test('redactor fallback patterns: common secret shapes masked, ordinary text untouched', async () => {
  const { Redactor } = await import('../../src/redact');
  const redactor = new Redactor(); // nothing configured: only the patterns work
  const S = canary('shape');
  const shapes: [string, string, string][] = [
    // [shape, input, expected output]
    ['JSON', `{"password":"${S}"}`, '{"password":"***"}'],
    ['JSON, spaced, among other keys', `{"user": "bob", "client_secret": "${S}", "n": 1}`, '{"user": "bob", "client_secret": "***", "n": 1}'],
    ['JSON, single quotes', `{'api_key': '${S}'}`, "{'api_key': '***'}"],
    ['JSON, escaped quote inside', `{"token":"${S}\\"x"}`, '{"token":"***"}'],
    ['form body', `grant_type=client_credentials&client_secret=${S}&scope=a`, 'grant_type=client_credentials&client_secret=***&scope=a'],
    ['query string', `GET /cb?code=1&access_token=${S}&state=x`, 'GET /cb?code=1&access_token=***&state=x'],
    ['libpq', `host=db user=app password=${S} sslmode=require`, 'host=db user=app password=*** sslmode=require'],
    ['header: Authorization Bearer', `Authorization: Bearer ${S}`, 'Authorization: Bearer ***'],
    ['header: Authorization without scheme', `authorization: ${S}`, 'authorization: ***'],
    ['header: Proxy-Authorization Basic', `Proxy-Authorization: Basic ${S}`, 'Proxy-Authorization: Basic ***'],
    ['header: X-Api-Key', `X-Api-Key: ${S}`, 'X-Api-Key: ***'],
    ['header: Cookie', `Cookie: session=${S}; theme=dark`, 'Cookie: ***'],
    ['URL userinfo', `connect to postgres://app:${S}@db:5432/x failed`, 'connect to postgres://app:***@db:5432/x failed'],
    ['URL userinfo, empty user', `redis://:${S}@cache:6379`, 'redis://:***@cache:6379'],
    ['URL userinfo, @ in the password', `https://u:${S}@x@host/p`, 'https://u:***@host/p'],
  ];
  for (const [shape, input, expected] of shapes) {
    const out = redactor.text(input);
    assert.equal(out, expected, shape);
    assert.ok(!out.includes(S), `${shape}: the secret is gone`);
  }
  const ordinary = [
    'GET http://app:8080/internal-secret: status 200 in 3 ms',
    'GET http://app:8080/internal-secret: HTTP 200',
    '/api/tokens: 200',
    'the token bucket is full',
    'password reset page returned 200',
    'tokenizer: ok',
    'passwords: 3 rotated',
    'secret santa',
    'keys: 3, status: 200, message: ok',
    'https://user@host/x',
    'connect ECONNREFUSED 127.0.0.1:5432',
    'GET http://app/secret-store/health: 200',
  ];
  for (const text of ordinary) assert.equal(redactor.text(text), text, `over-masked: ${text}`);
});
