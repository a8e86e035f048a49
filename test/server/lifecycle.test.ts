/**
 * Sidecar lifecycle details that need a fresh sidecar each: startup latching
 * when nobody is asking, and the store knowing every check (503, not an empty
 * group's 200) from the moment the port opens.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Sidecar } from '../../src/sidecar';
import { startFaultProxy } from '../helpers/fault-proxy';
import { startHttpServer, waitFor } from '../helpers/servers';
import { sidecarFromYaml } from './helpers';
import { request } from '../helpers/http';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe('sidecar lifecycle', () => {
  it('startup latches when its members come UP even if nobody asked /startupz then', async () => {
    let appStatus = 200;
    const app = await startHttpServer((_req, res) => {
      res.writeHead(appStatus);
      res.end();
    });
    cleanups.push(() => app.close());
    const { sidecar } = sidecarFromYaml(`
server: { port: 0, host: 127.0.0.1, drainDelay: 0s }
defaults:
  interval: 100ms
  timeout: 100ms
  retry: { attempts: 1 }
  thresholds: { failure: 1, success: 1 }
checks:
  - name: app
    kind: http
    url: ${app.url}/
    groups: [startup, ready]
`);
    cleanups.push(() => sidecar.shutdown({ drain: false }));
    const port = await sidecar.start();
    // no request at all until the app has been UP and gone DOWN again
    await waitFor(() => sidecar.store.get('app')?.status === 'UP', { timeoutMs: 30_000, what: 'app UP' });
    appStatus = 500;
    await waitFor(() => sidecar.store.get('app')?.status === 'DOWN', { timeoutMs: 30_000, what: 'app DOWN' });
    const startup = await request(port, '/startupz?verbose');
    assert.equal(startup.status, 200);
    assert.equal(startup.body, '[+]startup started\n[-]app failed: reason withheld\nstartupz check passed\n');
    assert.equal((await request(port, '/readyz')).status, 503);
  });

  it('from the moment the port opens every check is known: /readyz is 503 (UNKNOWN), never an empty group 200', async () => {
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: 1 });
    proxy.setMode('blackhole'); // the first run hangs: no result for the whole test
    cleanups.push(() => proxy.close());
    const { sidecar } = sidecarFromYaml(`
server: { port: 0, host: 127.0.0.1, drainDelay: 0s }
defaults: { interval: 1m, timeout: 30s, retry: { attempts: 1 } }
checks:
  - name: dep
    kind: http
    url: http://127.0.0.1:${proxy.port}/
`);
    cleanups.push(() => sidecar.shutdown({ drain: false }));
    const started = sidecar.start();
    // poll as soon as the port is bound, before start() has resolved if possible
    const port = (await waitFor(() => sidecar.port, { intervalMs: 1, what: 'the port bound' }))!;
    const first = await request(port, '/readyz?verbose');
    await started;
    assert.equal(first.status, 503);
    assert.equal(first.body, '[-]dep failed: not checked yet\nreadyz check failed\n');
  });
});
