/**
 * The shipped artifact keeps its client spans. The image runs the esbuild bundle
 * (scripts/bundle.mjs), where OpenTelemetry's require-hook instrumentations can
 * only patch what is still require()d by name: ioredis and pg (kept external)
 * and node's http. Here the bundle is laid out as the image lays it out — in a
 * directory outside the repository, with package.json beside it and only the
 * packages the bundle's own lockfile names, installed by `npm ci --omit=dev` —
 * and run with a Redis, a PostgreSQL and an HTTP check, exporting traces to the
 * OTLP receiver in test/helpers: each check's run → attempt → client span
 * (ioredis, pg, http) must arrive, from the instrumentation's scope.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOtlpReceiver, SPAN_KIND, STATUS_CODE, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver';
import { DATABASE_URL, REDIS_URL, startHttpServer, type TestHttpServer } from '../helpers/servers';
import { ensureBuilt, ROOT } from '../helpers/paths';
import { childEnv } from '../telemetry/support';
import { run } from './support';

const isRun = (name: string) => (s: ReceivedSpan) => s.name === `healthcheck ${name}` && s.parentSpanId === '';

describe('the shipped bundle: ioredis, pg and http client spans reach an OTLP receiver', () => {
  let work: string;
  let receiver: OtlpReceiver;
  let web: TestHttpServer;
  let child: ChildProcess | undefined;
  let output = '';

  before(async () => {
    ensureBuilt();
    work = mkdtempSync(join(tmpdir(), 'bundle-traces-'));
    const app = join(work, 'app');
    const deps = join(work, 'deps');
    mkdirSync(app);
    mkdirSync(deps);
    const bundled = await run(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), '--outdir', join(app, 'bundle')], { cwd: ROOT });
    assert.equal(bundled.code, 0, bundled.stderr);
    // as the Dockerfile: the external packages from the bundle's lockfile cut, package.json beside the bundle
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(app, 'bundle', f), join(deps, f));
    const env = { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', npm_config_loglevel: 'error' };
    const installed = await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: deps, env });
    assert.equal(installed.code, 0, installed.stderr);
    renameSync(join(deps, 'node_modules'), join(app, 'node_modules'));
    copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    assert.deepEqual(readdirSync(join(app, 'node_modules')).filter((d) => ['ioredis', 'pg', 'pino', '@opentelemetry', 'yaml'].includes(d)).sort(), ['ioredis', 'pg', 'pino']);

    receiver = await startOtlpReceiver();
    web = await startHttpServer((_req, res) => res.writeHead(200).end('ok'));
    const config = join(work, 'sidecar.yaml');
    writeFileSync(
      config,
      `
server: { port: 0, host: 127.0.0.1, drainDelay: 0s }
telemetry: { serviceName: bundle-traces }
defaults: { interval: 2s, timeout: 2s }
checks:
  - { name: cache, kind: redis, url: "${REDIS_URL}" }
  - { name: db, kind: postgres, url: "${DATABASE_URL}", query: "SELECT 1" }
  - { name: web, kind: http, url: "${web.url}/healthz" }
`,
    );
    child = spawn(process.execPath, ['--max-semi-space-size=2', '--v8-pool-size=1', join(app, 'bundle', 'cli.js'), 'run', '--config', config], {
      cwd: app,
      env: childEnv({ NODE_ENV: 'production', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const clientUnderRun = (spans: ReceivedSpan[], name: string, client: (s: ReceivedSpan) => boolean) =>
      spans.filter(isRun(name)).some((r) => receiver.children(r).some((attempt) => receiver.children(attempt).some(client)));
    const exited = new Promise<never>((_resolve, reject) => child!.once('exit', (code) => reject(new Error(`the bundle exited ${code}`))));
    await Promise.race([exited, receiver
      .waitFor(
        (spans) =>
          clientUnderRun(spans, 'cache', (s) => s.name === 'ping') &&
          clientUnderRun(spans, 'db', (s) => s.name.startsWith('pg.query')) &&
          clientUnderRun(spans, 'web', (s) => s.name === 'GET'),
        60_000,
      )])
      .catch((err: Error) => {
        throw new Error(`${err.message}\nspans: ${receiver.spans.map((s) => `${s.scope.name}: ${s.name}`).join(', ')}\noutput:\n${output}`);
      });
  });

  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await Promise.all([receiver?.close(), web?.close()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const clientOf = (check: string, match: (s: ReceivedSpan) => boolean) => {
    for (const r of receiver.spans.filter(isRun(check))) {
      for (const attempt of receiver.children(r)) {
        const client = receiver.children(attempt).find(match);
        if (client) return { run: r, attempt, client };
      }
    }
    assert.fail(`no client span under a ${check} run`);
  };

  it('decodes every export request without errors', () => {
    assert.deepEqual(receiver.errors, []);
  });

  it('redis: run → attempt → the ioredis `ping` client span', () => {
    const { run: r, attempt, client } = clientOf('cache', (s) => s.name === 'ping');
    assert.equal(r.status.code, STATUS_CODE.ok);
    assert.equal(attempt.name, 'healthcheck cache attempt');
    assert.deepEqual({ kind: client.kind, scope: client.scope.name, system: client.attributes['db.system.name'] }, { kind: SPAN_KIND.client, scope: '@opentelemetry/instrumentation-ioredis', system: 'redis' });
  });

  it('postgres: run → attempt → the pg query client span', () => {
    const { run: r, client } = clientOf('db', (s) => s.name.startsWith('pg.query'));
    assert.equal(r.status.code, STATUS_CODE.ok);
    assert.deepEqual(
      { kind: client.kind, scope: client.scope.name, system: client.attributes['db.system.name'], text: client.attributes['db.query.text'] },
      { kind: SPAN_KIND.client, scope: '@opentelemetry/instrumentation-pg', system: 'postgresql', text: 'SELECT 1' },
    );
  });

  it('http: run → attempt → the http client span', () => {
    const { run: r, client } = clientOf('web', (s) => s.name === 'GET');
    assert.equal(r.status.code, STATUS_CODE.ok);
    assert.deepEqual(
      { kind: client.kind, scope: client.scope.name, status: client.attributes['http.response.status_code'], url: client.attributes['url.full'] },
      { kind: SPAN_KIND.client, scope: '@opentelemetry/instrumentation-http', status: 200, url: `${web.url}/healthz` },
    );
  });
});
