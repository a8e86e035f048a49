/**
 * The health body fields (issue 21.4) on a real Sidecar (port 0) probing a
 * real HTTP server and a closed TCP port: timestamp (RFC 3339), uptimeSeconds,
 * summary per status, and per check lastCheckedAt, since, durationMs — which
 * follow every run, not only status changes — on /health and /health/{check}.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Sidecar } from '../../src/sidecar';
import { freePort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { sidecarFromYaml } from './helpers';
import { request } from '../helpers/http';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

let app: TestHttpServer;
let sidecar: Sidecar;
let port: number;
let closedPort: number;
/** the app's answers hold until released: gives runs a duration we know a lower bound of */
let appDelayMs = 0;

const json = async (path: string) => {
  const reply = await request(port, path);
  return { status: reply.status, body: JSON.parse(reply.body) as Record<string, any> };
};

describe('health body fields', () => {
  before(async () => {
    app = await startHttpServer((_req, res) => {
      setTimeout(() => res.end('ok'), appDelayMs);
    });
    closedPort = await freePort();
    ({ sidecar } = sidecarFromYaml(`
server: { port: 0, host: 127.0.0.1, showDetails: always }
defaults: { interval: 1h, timeout: 2s, retry: { attempts: 1 } }
checks:
  - { name: app, kind: http, url: "${app.url}/", groups: [ready] }
  - { name: gone, kind: tcp, url: "tcp://127.0.0.1:${closedPort}", groups: [live], critical: false }
`));
    port = await sidecar.start();
    await waitFor(() => sidecar.store.all().every((s) => s.status !== 'UNKNOWN'), { what: 'first results', timeoutMs: 30_000 });
  });
  after(async () => {
    await sidecar.shutdown({ drain: false });
    await app.close();
  });

  it('/health: timestamp (RFC 3339, the time of the answer), uptimeSeconds, summary per status', async () => {
    const before = Date.now();
    const { status, body } = await json('/health');
    const afterwards = Date.now();
    assert.equal(status, 200);
    assert.match(body.timestamp, RFC3339);
    const at = Date.parse(body.timestamp);
    assert.ok(at >= before && at <= afterwards, `${body.timestamp} within the request`);
    assert.ok(Number.isInteger(body.uptimeSeconds));
    assert.equal(body.uptimeSeconds, Math.floor((at - sidecar.startedAt) / 1000));
    assert.deepEqual(body.summary, { UP: 1, DOWN: 1, UNKNOWN: 0, total: 2 });
    // additive: the existing fields are still there, unchanged
    assert.equal(body.status, 'DEGRADED', 'a non-critical check DOWN');
    assert.deepEqual(Object.keys(body.checks), ['app', 'gone']);
    assert.equal(body.checks.app.status, 'UP');
    assert.equal(body.checks.gone.status, 'DOWN');
  });

  it('per check: lastCheckedAt and since (RFC 3339), durationMs of the last run; lastCheckedAt and durationMs move with every run, since only with a status change', async () => {
    const first = (await json('/health')).body.checks.app;
    assert.match(first.lastCheckedAt, RFC3339);
    assert.match(first.since, RFC3339);
    assert.ok(Date.parse(first.since) <= Date.parse(first.lastCheckedAt));
    assert.equal(typeof first.durationMs, 'number');

    appDelayMs = 150;
    const run = await sidecar.runNow('app')!;
    appDelayMs = 0;
    assert.equal(run.ok, true);
    const second = (await json('/health')).body.checks.app;
    assert.equal(second.lastCheckedAt, new Date(run.finishedAt).toISOString());
    assert.equal(second.durationMs, run.finishedAt - run.startedAt);
    assert.ok(second.durationMs >= 150, `${second.durationMs} ms covers the app's 150 ms delay`);
    assert.equal(second.since, first.since, 'still UP: since unchanged');

    const one = await json('/health/app');
    assert.equal(one.body.lastCheckedAt, second.lastCheckedAt);
    assert.equal(one.body.durationMs, second.durationMs);
    assert.equal(one.body.since, second.since);
  });

  it('/health/{check} of an http check: response with statusCode, bodyBytes and redirects of the last run, and its phases (issue 21.9)', async () => {
    const run = await sidecar.runNow('app')!;
    assert.equal(run.ok, true);
    const { body } = await json('/health/app');
    assert.equal(body.response.statusCode, 200);
    assert.equal(body.response.bodyBytes, 'ok'.length);
    assert.equal(body.response.redirects, 0);
    assert.ok(['new', 'reused'].includes(body.response.connection), body.response.connection);
    const phases = Object.keys(body.response.phasesMs);
    assert.deepEqual(phases, body.response.connection === 'new' ? ['dns', 'connect', 'ttfb', 'transfer'] : ['ttfb', 'transfer']);
    assert.deepEqual(body.response, run.response, 'the last run, as the runner reported it');
    assert.equal((await json('/health/gone')).body.response, undefined, 'a tcp check reports no response');
  });

  it('/health/{check}: timestamp and uptimeSeconds too; a DOWN check says since when', async () => {
    const before = Date.now();
    const { status, body } = await json('/health/gone');
    assert.equal(status, 503);
    assert.equal(body.status, 'DOWN');
    assert.match(body.timestamp, RFC3339);
    assert.ok(Date.parse(body.timestamp) >= before);
    assert.ok(Number.isInteger(body.uptimeSeconds));
    assert.equal(body.since, new Date(sidecar.store.get('gone')!.lastChangeAt!).toISOString());
  });
});

describe('health body fields without details (showDetails: never)', () => {
  let quiet: Sidecar;
  let quietPort: number;
  before(async () => {
    ({ sidecar: quiet } = sidecarFromYaml(`
server: { port: 0, host: 127.0.0.1, showDetails: never }
defaults: { interval: 1h, timeout: 2s, retry: { attempts: 1 } }
checks:
  - { name: gone, kind: tcp, url: "tcp://127.0.0.1:${await freePort()}", groups: [live] }
`));
    quietPort = await quiet.start();
    await waitFor(() => quiet.store.get('gone')?.status === 'DOWN', { what: 'first result' });
  });
  after(() => quiet.shutdown({ drain: false }));

  it('timestamp, uptimeSeconds and summary are always there; per-check timing stays with the details', async () => {
    const body = JSON.parse((await request(quietPort, '/health')).body) as Record<string, any>;
    assert.match(body.timestamp, RFC3339);
    assert.equal(typeof body.uptimeSeconds, 'number');
    assert.deepEqual(body.summary, { UP: 0, DOWN: 1, UNKNOWN: 0, total: 1 });
    assert.deepEqual(body.checks, { gone: { status: 'DOWN' } });
  });
});
