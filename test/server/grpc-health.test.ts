/**
 * The sidecar's own grpc.health.v1 server (server.grpcPort) asked by a real
 * @grpc/grpc-js client: Check per service name, Watch streaming a change when a
 * check flips, NOT_SERVING for ready as soon as shutdown starts.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { parseConfig } from '../../src/probes/registry';
import { ConfigError } from '../../src/errors';
import { Sidecar } from '../../src/sidecar';
import { createLogger } from '../../src/telemetry/log';
import { startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' | 'UNKNOWN';
interface HealthClient extends grpc.Client {
  check(request: { service: string }, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, reply?: { status: Status }) => void): grpc.ClientUnaryCall;
  watch(request: { service: string }): grpc.ClientReadableStream<{ status: Status }>;
}
const HealthClientCtor = grpc.makeClientConstructor(healthService as unknown as grpc.ServiceDefinition, 'grpc.health.v1.Health') as unknown as new (
  target: string,
  credentials: grpc.ChannelCredentials,
) => HealthClient;

function check(client: HealthClient, service: string): Promise<Status> {
  return new Promise((resolve, reject) =>
    client.check({ service }, { deadline: Date.now() + 5000 }, (err, reply) => (err ? reject(err) : resolve(reply!.status))),
  );
}

/** A Watch stream and the statuses it has delivered so far. */
function watch(client: HealthClient, service: string) {
  const seen: Status[] = [];
  const stream = client.watch({ service });
  let ended: grpc.ServiceError | undefined;
  stream.on('data', (reply: { status: Status }) => seen.push(reply.status));
  stream.on('error', (err: grpc.ServiceError) => (ended = err));
  return { seen, stream, ended: () => ended };
}

function config(appUrl: string, drainDelay: string) {
  return parseConfig(
    [
      'server:',
      '  host: 127.0.0.1',
      '  port: 0',
      '  grpcPort: 0',
      `  drainDelay: ${drainDelay}`,
      'log: { level: silent }',
      'telemetry: { prometheus: { enabled: false }, traces: { enabled: false } }',
      'defaults:',
      '  interval: 100ms',
      '  timeout: 100ms',
      '  retry: { attempts: 1 }',
      '  thresholds: { failure: 1, success: 1 }',
      'checks:',
      '  - name: app',
      '    kind: http',
      `    url: ${appUrl}/healthz`,
      '    groups: [ready, startup]',
      '',
    ].join('\n'),
    'grpc-health-test.yaml',
    { env: {} },
  );
}

describe('gRPC health server of the sidecar (server.grpcPort)', () => {
  let app: TestHttpServer;
  let healthy = true;
  const sidecars: Sidecar[] = [];
  const clients: HealthClient[] = [];

  async function startSidecar(drainDelay = '0s') {
    const sidecar = new Sidecar(config(app.url, drainDelay), createLogger({ level: 'silent' }));
    sidecars.push(sidecar);
    await sidecar.start();
    assert.ok(sidecar.grpcPort && sidecar.grpcPort > 0, 'gRPC port bound');
    const client = new HealthClientCtor(`127.0.0.1:${sidecar.grpcPort}`, grpc.credentials.createInsecure());
    clients.push(client);
    return { sidecar, client };
  }

  before(async () => {
    app = await startHttpServer((_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeHead(healthy ? 200 : 503).end(healthy ? 'ok' : 'down');
    });
  });

  after(async () => {
    for (const client of clients) client.close();
    for (const sidecar of sidecars) await sidecar.shutdown({ drain: false });
    await app?.close();
  });

  test('Check: live, ready, startup and "" follow the groups; an unknown name is NOT_FOUND', async () => {
    healthy = true;
    const { client } = await startSidecar();
    await waitFor(async () => (await check(client, 'ready')) === 'SERVING', { what: 'ready SERVING' });
    assert.deepEqual(
      { live: await check(client, 'live'), ready: await check(client, 'ready'), startup: await check(client, 'startup'), whole: await check(client, '') },
      { live: 'SERVING', ready: 'SERVING', startup: 'SERVING', whole: 'SERVING' },
    );
    await assert.rejects(check(client, 'nope'), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);

    healthy = false;
    try {
      await waitFor(async () => (await check(client, 'ready')) === 'NOT_SERVING', { what: 'ready NOT_SERVING' });
      // live has no members (UP); startup latched once it was UP; "" is ready
      assert.deepEqual(
        { live: await check(client, 'live'), ready: await check(client, 'ready'), startup: await check(client, 'startup'), whole: await check(client, '') },
        { live: 'SERVING', ready: 'NOT_SERVING', startup: 'SERVING', whole: 'NOT_SERVING' },
      );
    } finally {
      healthy = true;
    }
  });

  test('Watch: the current status at once, then one message per change when the check flips', async () => {
    healthy = true;
    const { client } = await startSidecar();
    await waitFor(async () => (await check(client, 'ready')) === 'SERVING', { what: 'ready SERVING' });
    const ready = watch(client, 'ready');
    const whole = watch(client, '');
    const unknown = watch(client, 'nope');
    await waitFor(() => ready.seen.length === 1 && whole.seen.length === 1 && unknown.seen.length === 1, { what: 'first Watch messages' });
    healthy = false;
    await waitFor(() => ready.seen.length === 2, { what: 'Watch(ready) hears NOT_SERVING' });
    healthy = true;
    await waitFor(() => ready.seen.length === 3, { what: 'Watch(ready) hears SERVING again' });
    // the loop keeps probing; nothing more changes, so nothing more is sent
    const settled = await check(client, 'ready');
    assert.equal(settled, 'SERVING');
    assert.deepEqual(ready.seen, ['SERVING', 'NOT_SERVING', 'SERVING']);
    assert.deepEqual(whole.seen, ['SERVING', 'NOT_SERVING', 'SERVING']);
    assert.deepEqual(unknown.seen, ['SERVICE_UNKNOWN']);
    assert.equal(ready.ended(), undefined, 'the stream stays open');
    for (const w of [ready, whole, unknown]) w.stream.cancel();
  });

  test('shutdown: Watch(ready) hears NOT_SERVING at once, Check keeps answering during drainDelay, then the port closes', async () => {
    healthy = true;
    const { sidecar, client } = await startSidecar('400ms');
    await waitFor(async () => (await check(client, 'ready')) === 'SERVING', { what: 'ready SERVING' });
    const ready = watch(client, 'ready');
    await waitFor(() => ready.seen.length === 1, { what: 'first Watch message' });
    const stopping = sidecar.shutdown();
    await waitFor(() => ready.seen.length === 2, { what: 'NOT_SERVING on the Watch stream' });
    assert.deepEqual(ready.seen, ['SERVING', 'NOT_SERVING']);
    assert.equal(await check(client, 'live'), 'SERVING', 'still answering while draining');
    assert.equal(await check(client, 'ready'), 'NOT_SERVING');
    await stopping;
    await waitFor(() => ready.ended() !== undefined, { what: 'Watch stream ended by the shutdown' });
    await assert.rejects(check(client, 'live'), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
  });

  test('config: grpcPort must be a port number; absent means no gRPC server', async () => {
    const bad = () => parseConfig('server:\n  grpcPort: 70000\n', 'bad.yaml', { env: {} });
    assert.throws(bad, (err: unknown) => err instanceof ConfigError && /^bad\.yaml:2:13 server\.grpcPort: /.test(err.message));
    const sidecar = new Sidecar(parseConfig('server: { host: 127.0.0.1, port: 0 }\n', 'none.yaml', { env: {} }), createLogger({ level: 'silent' }));
    sidecars.push(sidecar);
    await sidecar.start();
    assert.equal(sidecar.grpcPort, undefined);
  });
});
