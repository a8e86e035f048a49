/**
 * Trailing slashes and server.paths (issue 21.5) on a real Sidecar (port 0)
 * probing a real TCP listener: every GET path answers the same with a
 * trailing slash; extra paths answer as the endpoint they map to — probe
 * aliases exempt from rate limits like the kubelet paths, JSON aliases with
 * the same document — and a reload replaces them.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/probes/registry';
import type { Sidecar } from '../../src/sidecar';
import { waitFor } from '../helpers/servers';
import { sidecarFromYaml } from './helpers';
import { type Reply, request } from '../helpers/http';

const KEY = 'paths-test-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };

let listener: net.Server;
let target: number;
let sidecar: Sidecar;
let port: number;

const yaml = (paths: string) => `
server:
  port: 0
  host: 127.0.0.1
  showDetails: when-authorized
  auth: { keys: [{ name: ops, key: ${KEY}, rateLimit: 100000/1m }], anonymousRateLimit: 1000/1m }
  paths:
${paths}
defaults: { interval: 1h, timeout: 1s, retry: { attempts: 1 } }
checks:
  - { name: app, kind: tcp, url: "tcp://127.0.0.1:${target}", groups: [live, ready, startup] }
`;

const PATHS = `    /ready: readyz
    /alive: livez
    /api/health/v2: health
    /api/health/v2/app-info: system
    /legacy/status: status`;

/** the answer without what changes between two requests (time, uptime, process figures) */
const same = (reply: Reply) => {
  if (!String(reply.headers['content-type']).startsWith('application/json')) return { status: reply.status, type: reply.headers['content-type'], body: reply.body };
  const { timestamp: _t, uptimeSeconds: _u, memory: _m, cpu: _c, eventLoopDelayMs: _e, ...rest } = JSON.parse(reply.body) as Record<string, unknown>;
  return { status: reply.status, type: reply.headers['content-type'], body: rest };
};

describe('trailing slashes and server.paths', () => {
  before(async () => {
    listener = net.createServer((socket) => {
      socket.on('error', () => undefined); // the probe resets its connection
      socket.end();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    target = (listener.address() as net.AddressInfo).port;
    ({ sidecar } = sidecarFromYaml(yaml(PATHS)));
    port = await sidecar.start();
    await waitFor(() => sidecar.store.get('app')?.status === 'UP', { what: 'app UP' });
  });
  after(async () => {
    await sidecar.shutdown({ drain: false });
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  });

  it('every GET path answers the same with a trailing slash (one or more)', async () => {
    const paths = ['/livez', '/readyz', '/startupz', '/health/live', '/health/ready', '/health/startup', '/-/healthy', '/health', '/health/app', '/health/system', '/health/stats', '/health/incidents', '/status/app.css', '/status/app.js', '/status/fragment', '/admin/diagnostics'];
    for (const path of paths) {
      const plain = await request(port, path, { headers: AUTH });
      assert.equal(plain.status, 200, `${path}: ${plain.body}`);
      for (const slashed of [`${path}/`, `${path}//`]) {
        const reply = await request(port, slashed, { headers: AUTH });
        assert.deepEqual(same(reply), same(plain), slashed);
      }
    }
    const verbose = await request(port, '/readyz/?verbose');
    assert.equal(verbose.body, '[+]app ok\nreadyz check passed\n');
    // a slash does not make an unknown path known, nor a check of that name
    assert.equal((await request(port, '/nope/')).status, 404);
    assert.equal(JSON.parse((await request(port, '/health/nope/')).body).error.code, 'unknown_check');
  });

  it('an extra path answers as its endpoint: probes (exempt from rate limits, like the kubelet paths), JSON, the status page', async () => {
    for (const [alias, builtIn] of [['/ready', '/readyz'], ['/alive', '/livez'], ['/ready/', '/readyz'], ['/ready?verbose', '/readyz?verbose']]) {
      assert.deepEqual(same(await request(port, alias!)), same(await request(port, builtIn!)), alias);
    }
    for (const method of ['HEAD', 'POST']) {
      const [viaAlias, direct] = [await request(port, '/ready', { method }), await request(port, '/readyz', { method })];
      assert.deepEqual({ status: viaAlias.status, allow: viaAlias.headers.allow }, { status: direct.status, allow: direct.headers.allow }, method);
    }
    assert.deepEqual(same(await request(port, '/api/health/v2', { headers: AUTH })), same(await request(port, '/health', { headers: AUTH })));
    assert.deepEqual(same(await request(port, '/api/health/v2/', { headers: AUTH })), same(await request(port, '/health', { headers: AUTH })));
    assert.deepEqual(Object.keys(same(await request(port, '/api/health/v2/app-info', { headers: AUTH })).body as object).sort(), ['pid', 'status', 'versions']);
    const page = await request(port, '/legacy/status');
    assert.equal(page.status, 200);
    assert.match(page.body, /<html/i);
  });

  it('the probe aliases are never rate limited; the JSON ones are, like their endpoint', async () => {
    const strict = parseConfig(yaml(PATHS).replace('anonymousRateLimit: 1000/1m', 'anonymousRateLimit: 2/1h'), 'strict.yaml', { env: {} });
    await sidecar.applyConfig(strict);
    sidecar.rateLimit.ipLimiter.clear();
    for (let i = 0; i < 10; i++) assert.equal((await request(port, '/ready')).status, 200, `/ready #${i + 1}`);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(port, '/api/health/v2')).status);
    assert.deepEqual(statuses, [200, 200, 429, 429]);
    sidecar.rateLimit.ipLimiter.clear();
  });

  it('a reload replaces the extra paths: the removed one is 404, the new one answers', async () => {
    await sidecar.applyConfig(parseConfig(yaml('    /healthz: readyz'), 'reloaded.yaml', { env: {} }));
    assert.equal((await request(port, '/ready')).status, 404);
    assert.deepEqual(same(await request(port, '/healthz')), same(await request(port, '/readyz')));
    assert.deepEqual(same(await request(port, '/healthz/')), same(await request(port, '/readyz')));
  });
});
