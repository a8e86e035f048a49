/**
 * Every reader of the health state reads the one snapshot (health/snapshot.ts):
 * the probe paths, /health, the status page and admin diagnostics agree on the
 * latched startup group and on draining.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Sidecar } from '../../src/sidecar';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { sidecarFromYaml } from './helpers';
import { request } from '../helpers/http';

const KEY = 'snapshot-admin-key-0123456789';

describe('one health snapshot for every reader', () => {
  let app: TestHttpServer;
  let appStatus = 200;
  let sidecar: Sidecar;
  let port: number;

  after(async () => {
    await sidecar?.shutdown({ drain: false });
    await app?.close();
  });

  const groupsOnPage = async () => {
    const page = (await request(port, '/status/fragment')).body;
    return Object.fromEntries([...page.matchAll(/<li>(live|ready|startup) <span class="badge s-([a-z]+)"/g)].map((m) => [m[1], m[2]]));
  };
  const overallOnPage = async () => /data-overall="([A-Z]+)"/.exec((await request(port, '/status/fragment')).body)?.[1];
  const diagnostics = async () => JSON.parse((await request(port, '/admin/diagnostics', { headers: { authorization: `Bearer ${KEY}` } })).body) as { status: string };
  const health = async () => JSON.parse((await request(port, '/health')).body) as { status: string; groups: Record<string, string> };

  test('a latched startup group stays UP everywhere after its member fails; draining is DOWN everywhere', async () => {
    app = await startHttpServer((_req, res) => {
      res.writeHead(appStatus);
      res.end();
    });
    ({ sidecar } = sidecarFromYaml(`
server: { port: 0, host: 127.0.0.1, showDetails: always, auth: { keys: [ { name: ops, key: "${KEY}" } ] } }
defaults: { interval: 100ms, timeout: 90ms, retry: { attempts: 1 }, thresholds: { failure: 1, success: 1 } }
checks:
  - { name: app, kind: http, url: "${app.url}/", groups: [startup, ready] }
`));
    port = await sidecar.start();
    await waitFor(async () => (await request(port, '/startupz')).status === 200, { what: 'startup latched', timeoutMs: 30_000 });

    appStatus = 500;
    await waitFor(() => sidecar.store.get('app')?.status === 'DOWN', { what: 'app DOWN', timeoutMs: 30_000 });
    assert.equal((await request(port, '/startupz')).status, 200, 'startup stays latched');
    assert.equal((await request(port, '/readyz')).status, 503);
    assert.deepEqual((await health()).groups, { live: 'UP', ready: 'DOWN', startup: 'UP' });
    assert.deepEqual(await groupsOnPage(), { live: 'up', ready: 'down', startup: 'up' }, 'the status page shows the latched startup group');

    appStatus = 200;
    await waitFor(() => sidecar.store.get('app')?.status === 'UP', { what: 'app UP again', timeoutMs: 30_000 });
    assert.equal((await diagnostics()).status, 'UP');
    sidecar.health.startDraining(); // what SIGTERM does first (shutdown() then waits drainDelay)
    assert.equal((await request(port, '/readyz')).status, 503);
    assert.equal((await health()).status, 'DOWN');
    assert.equal(await overallOnPage(), 'DOWN');
    assert.equal((await diagnostics()).status, 'DOWN', 'diagnostics honour draining');
  });
});
