/**
 * server.probeListener (issue 14.2): the kubelet paths on a port of their own,
 * from a worker thread (`thread: true`, the default) or from the main event
 * loop (`thread: false`). Whichever way, every kubelet request answers there
 * exactly as on the main port (status, body, content type), including the
 * forms the thread forwards (`?exclude=`, a key asking for details, a
 * trailing slash, an unknown check); nothing else is served there; the
 * answers follow a drain and a reload; the port closes at shutdown. The
 * thread does not hide a stuck main loop: without its heartbeat it answers 503.
 * How fast it answers under a flood: test/security/flood.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { HealthSnapshots } from '../../src/health/snapshot';
import { HealthStore } from '../../src/health/state';
import { parseConfig } from '../../src/probes/registry';
import { startKubeletListener } from '../../src/server/kubelet-listener';
import type { HealthView } from '../../src/server/view';
import { createLogger } from '../../src/telemetry/log';
import { request, type Reply } from '../helpers/http';
import { freePort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { captureLog, sidecarFromYaml } from './helpers';

const KEY = 'kubelet-listener-key-0123456789abcdef';
const TARGETS = [
  '/livez',
  '/readyz',
  '/startupz',
  '/health/live',
  '/health/ready',
  '/health/startup',
  '/ready',
  '/livez?verbose',
  '/readyz?verbose',
  '/startupz?verbose',
  '/livez/up',
  '/startupz/up',
  '/startupz/down',
  '/startupz/down?verbose',
  '/startupz?exclude=down',
  '/readyz?exclude=up',
  '/readyz?bogus=1',
  '/readyz/nope',
  '/livez/',
  '/-/healthy',
];

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const yaml = (thread: boolean, closedPort: number, app: TestHttpServer, path = '/ready') => `
server:
  port: 0
  host: 127.0.0.1
  drainDelay: 1s
  drainTimeout: 2s
  probeListener: { port: 0, thread: ${thread} }
  paths: { ${path}: readyz }
  auth: { keys: [{ name: ops, key: "${KEY}" }] }
checks:
  - { name: up, kind: tcp, url: "tcp://127.0.0.1:${new URL(app.url).port}", interval: 1s, timeout: 500ms, groups: [live, ready, startup] }
  - { name: down, kind: tcp, url: "tcp://127.0.0.1:${closedPort}", interval: 1s, timeout: 500ms, groups: [startup] }
`;

const seen = (reply: Reply) => ({ status: reply.status, body: reply.body, type: reply.headers['content-type'] });

for (const thread of [true, false]) {
  describe(`server.probeListener with thread: ${thread}`, () => {
    it('answers every kubelet request as the main port does, follows a reload and a drain, and closes at shutdown', async () => {
      const app = await startHttpServer((_req, res) => res.end('ok'));
      cleanups.push(() => app.close());
      const closedPort = await freePort();
      const { sidecar } = sidecarFromYaml(yaml(thread, closedPort, app));
      cleanups.push(() => sidecar.shutdown({ drain: false }));
      await sidecar.start();
      const main = sidecar.port!;
      const probe = sidecar.probePort!;
      assert.ok(probe > 0 && probe !== main, 'a port of its own');
      // both verdicts known, and (thread) the table with them posted
      await waitFor(() => sidecar.health.current().checks.every((c) => c.status !== 'UNKNOWN'), { what: 'both checks run' });
      await waitFor(async () => /reason withheld/.test((await request(probe, '/startupz/down')).body), { what: 'the verdicts on the kubelet port' });

      for (const target of TARGETS) {
        const [onMain, onProbe] = await Promise.all([request(main, target), request(probe, target)]);
        assert.deepEqual(seen(onProbe), seen(onMain), `${target}: the same answer on both ports`);
      }
      const head = await request(probe, '/startupz', { method: 'HEAD' });
      assert.equal(head.status, 503);
      assert.equal(head.body, '');
      // a key asking for details gets them, as on the main port (showDetails: when-authorized)
      const keyed = { authorization: `Bearer ${KEY}` };
      const [detailsMain, detailsProbe] = await Promise.all([request(main, '/startupz/down', { headers: keyed }), request(probe, '/startupz/down', { headers: keyed })]);
      assert.deepEqual(seen(detailsProbe), seen(detailsMain));
      assert.doesNotMatch(detailsProbe.body, /reason withheld/, 'the key sees the reason');
      assert.match((await request(probe, '/startupz/down')).body, /reason withheld/, 'without a key it is withheld');
      // nothing but the kubelet paths
      for (const path of ['/health', '/metrics', '/', '/admin/config', '/health/up']) {
        const reply = await request(probe, path, { headers: keyed });
        assert.equal(reply.status, 404, `${path} is not served on the kubelet port`);
        assert.equal(reply.json().error.code, 'not_found');
      }

      // a reload replaces the aliases there too
      await sidecar.applyConfig(parseConfig(yaml(thread, closedPort, app, '/healthz'), 'reloaded.yaml', { env: {} }));
      await waitFor(async () => (await request(probe, '/healthz')).status === 200, { what: 'the new alias on the kubelet port' });
      assert.equal((await request(probe, '/ready')).status, 404, 'the removed alias is gone');

      // SIGTERM: readiness fails there at once, while the main port still serves
      const stopping = sidecar.shutdown();
      const draining: Reply = await waitFor(async () => {
        const reply = await request(probe, '/readyz');
        return reply.status === 503 ? reply : undefined;
      }, { what: '/readyz 503 on the kubelet port while draining' }) as Reply;
      assert.equal(draining.body, (await request(main, '/readyz')).body, 'the same failure body');
      assert.equal((await request(probe, '/livez')).status, 200, 'liveness is unaffected by the drain');
      await stopping;
      await assert.rejects(request(probe, '/livez'), /ECONNREFUSED/, 'closed at shutdown');
    });
  });
}

describe('server.probeListener start-up', () => {
  it('a taken port fails the start with the key named, and the main port is closed again', async () => {
    const app = await startHttpServer((_req, res) => res.end('ok'));
    cleanups.push(() => app.close());
    const taken = await startHttpServer((_req, res) => res.end('taken'));
    cleanups.push(() => taken.close());
    const takenPort = Number(new URL(taken.url).port);
    const { sidecar } = sidecarFromYaml(yaml(true, await freePort(), app).replace('probeListener: { port: 0', `probeListener: { port: ${takenPort}`));
    cleanups.push(() => sidecar.shutdown({ drain: false }));
    await assert.rejects(sidecar.start(), (err: Error) => {
      assert.equal(err.message, `probe port (server.probeListener.port) ${takenPort} on 127.0.0.1 is already in use (EADDRINUSE)`);
      return true;
    });
    assert.equal(sidecar.port, undefined, 'the main port is closed again');
  });
});

/** a threaded kubelet listener over `store`, anonymous, its main port a free (closed) one */
async function threadListener(store: HealthStore, health: HealthSnapshots, destination: { write(line: string): void }, overrides: Partial<Parameters<typeof startKubeletListener>[0]>) {
  return startKubeletListener({
    host: '127.0.0.1',
    port: 0,
    thread: true,
    view: { health } as unknown as HealthView,
    anonymousDetails: () => false,
    extraPaths: () => new Map(),
    subscribe: (listener_) => store.onChange(listener_),
    main: { host: '127.0.0.1', port: await freePort() },
    identify: () => ({ kind: 'anonymous' }),
    logger: createLogger({ level: 'info', destination }),
    ...overrides,
  });
}

describe('server.probeListener thread and a stuck main loop', () => {
  it('answers 503 main-loop failed once the main thread has been silent for staleAfterMs, and 200 again when it is back', async () => {
    const store = new HealthStore();
    const health = new HealthSnapshots(store);
    const { log, destination } = captureLog();
    const listener = await threadListener(store, health, destination, { heartbeatMs: 50, staleAfterMs: 300 });
    cleanups.push(() => listener.close());
    assert.equal((await request(listener.port, '/livez')).status, 200, 'no check in live: 200');
    // this thread (the main loop) blocks in spawnSync while the child asks the listener, well after staleAfterMs
    const ask = `setTimeout(() => require('node:http').get({ host: '127.0.0.1', port: ${listener.port}, path: '/livez' }, (r) => { let b = ''; r.on('data', (c) => (b += c)); r.on('end', () => console.log(JSON.stringify({ status: r.statusCode, body: b }))); }), 1000)`;
    const child = spawnSync(process.execPath, ['-e', ask], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(child.status, 0, child.stderr);
    const seen = JSON.parse(child.stdout) as { status: number; body: string };
    assert.equal(seen.status, 503, 'a stuck main loop fails liveness on the kubelet port too');
    assert.match(seen.body, /^\[-\]main-loop failed: the sidecar's main event loop has not answered for \d+s\nlivez check failed\n$/);
    await waitFor(async () => (await request(listener.port, '/livez')).status === 200, { what: '200 once the heartbeat is back' });
    await listener.close();
    assert.deepEqual(log.records().filter((r) => r.level === 50), [], 'no error logged by a requested close');
  });
});

describe('server.probeListener thread and the request metrics', () => {
  it('its answers are recorded in http.server.request.duration as the main port records them (method, route, status)', async () => {
    const store = new HealthStore();
    const health = new HealthSnapshots(store);
    const { destination } = captureLog();
    const recorded: string[] = [];
    const listener = await threadListener(store, health, destination, {
      extraPaths: () => new Map([['/ready', '/readyz']]),
      metrics: {
        bind: (method, route, status) => ({ record: (seconds) => void recorded.push(`${method} ${route} ${status} ${seconds >= 0 && seconds < 60}`) }),
        refused: () => undefined,
        shed: () => undefined,
      },
    });
    cleanups.push(() => listener.close());
    for (const [method, path] of [['GET', '/livez'], ['HEAD', '/readyz'], ['GET', '/ready'], ['GET', '/-/healthy']] as const) {
      assert.equal((await request(listener.port, path, { method })).status, 200);
    }
    // posted back once a second
    await waitFor(() => recorded.length >= 4, { what: 'the durations posted back' });
    assert.deepEqual(recorded.sort(), ['GET /-/healthy 200 true', 'GET /livez 200 true', 'GET /readyz 200 true', 'HEAD /readyz 200 true']);
    await listener.close();
  });
});
