/**
 * Webhook delivery to real local HTTP receivers: the payload and its
 * HMAC-SHA256 signature, retries (fail twice → delivered exactly once), and
 * dead letters retried through the admin API of a running sidecar.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Sidecar } from '../../src/sidecar';
import { createLogger } from '../../src/telemetry/log';
import { startHttpServer, waitFor } from '../helpers/servers';
import { config, receiver, run, wire } from './helpers';

const SECRET = 's3cret-signing-key';
const KEY = 'admin-key-0123456789abcdef';
const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

describe('webhook target', () => {
  test('a DOWN and an UP change are each delivered once, signed with HMAC-SHA256 over the exact body', async () => {
    const hook = await receiver();
    cleanups.push(() => hook.close());
    const cfg = config(`
telemetry: { serviceName: checkout-health }
checks:
  - { name: db, kind: tcp, url: "tcp://127.0.0.1:5432" }
notifications:
  - { name: oncall, kind: webhook, url: "${hook.url}/hook", secret: "${SECRET}", headers: { X-Team: payments } }
`);
    const { store, service, metrics } = wire(cfg);
    store.record('db', run(true)); // UNKNOWN → UP at start: not news
    for (let i = 0; i < 3; i++) store.record('db', run(false, `connect ECONNREFUSED (${i + 1})`)); // thresholds.failure 3
    const down = store.get('db')!;
    store.record('db', run(true));
    const up = store.get('db')!;
    await service.idle();

    assert.equal(hook.received.length, 2);
    const [first, second] = hook.received as [(typeof hook.received)[0], (typeof hook.received)[0]];
    for (const r of [first, second]) {
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['x-team'], 'payments');
      const expected = `sha256=${createHmac('sha256', SECRET).update(r.body).digest('hex')}`;
      assert.equal(r.headers['x-signature-256'], expected, 'signature verifies against the received bytes');
      assert.equal(r.headers['x-event-id'], JSON.parse(r.body).id);
    }
    const p1 = JSON.parse(first.body);
    assert.match(p1.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(p1, {
      type: 'healthcheck.state_changed',
      id: p1.id,
      service: 'checkout-health',
      check: 'db',
      checkKind: 'tcp',
      critical: true,
      severity: 'critical',
      from: 'UP',
      to: 'DOWN',
      message: 'connect ECONNREFUSED (3)',
      time: new Date(down.lastChangeAt!).toISOString(),
      incidentId: 'inc-db',
      suppressed: 0,
    });
    const p2 = JSON.parse(second.body);
    assert.deepEqual(p2, { ...p1, id: p2.id, from: 'DOWN', to: 'UP', message: 'HTTP 200', time: new Date(up.lastChangeAt!).toISOString(), incidentId: null });
    assert.notEqual(p2.id, p1.id);
    assert.deepEqual(await metrics.counters(), { 'healthcheck.notifications.sent{oncall}': 2, 'healthcheck.notification.attempts{oncall,success}': 2 });
    await service.close();
  });

  test('a receiver failing twice then succeeding gets the message exactly once (same body, same signature each attempt)', async () => {
    const hook = await receiver((n) => (n <= 2 ? 503 : 200));
    cleanups.push(() => hook.close());
    const cfg = config(`
checks: [ { name: db, kind: tcp, url: "tcp://127.0.0.1:5432" } ]
notifications:
  - { name: oncall, kind: webhook, url: "${hook.url}", secret: "${SECRET}", retry: { attempts: 4, backoff: { initial: 10ms, max: 50ms } } }
`);
    const { store, service, metrics } = wire(cfg);
    store.record('db', run(false)); // UNKNOWN → DOWN on the first result: news
    await service.idle();
    assert.deepEqual(hook.received.map((r) => r.status), [503, 503, 200]);
    assert.equal(hook.accepted().length, 1);
    assert.equal(new Set(hook.received.map((r) => r.body)).size, 1, 'every attempt carries the same body');
    assert.equal(new Set(hook.received.map((r) => r.headers['x-signature-256'])).size, 1);
    assert.equal(service.deadLetters.size, 0);
    assert.deepEqual(await metrics.counters(), { 'healthcheck.notifications.sent{oncall}': 1, 'healthcheck.notifications.failed{oncall}': 2, 'healthcheck.notification.attempts{oncall,failure}': 2, 'healthcheck.notification.attempts{oncall,success}': 1 });
    await service.close();
  });

  test('credentials in the URL go as Basic auth (fetch refuses them in a URL); they and credential headers are secrets', async () => {
    const hook = await receiver((n) => (n === 1 ? 401 : 200));
    cleanups.push(() => hook.close());
    const url = new URL(hook.url);
    const cfg = config(`
checks: [ { name: db, kind: tcp, url: "tcp://127.0.0.1:5432" } ]
notifications:
  - name: oncall
    kind: webhook
    url: "http://hook-user:p%40ss-in-url-77@${url.host}/hook"
    headers: { X-Auth-Token: tok-in-header-88, X-Team: payments }
    retry: { attempts: 2, backoff: { initial: 10ms, max: 20ms } }
`);
    const basic = Buffer.from('hook-user:p@ss-in-url-77').toString('base64');
    for (const secret of ['p%40ss-in-url-77', 'p@ss-in-url-77', basic, 'tok-in-header-88']) assert.ok(cfg.secrets.includes(secret), `${secret} is a secret`);
    assert.ok(!cfg.secrets.includes('payments'), 'an ordinary header value is not');
    const { store, service } = wire(cfg);
    store.record('db', run(false));
    await service.idle();
    assert.deepEqual(hook.received.map((r) => r.status), [401, 200]);
    for (const r of hook.received) {
      assert.equal(r.headers.authorization, `Basic ${basic}`);
      assert.equal(r.headers['x-auth-token'], 'tok-in-header-88');
    }
    assert.equal(service.deadLetters.size, 0);
    await service.close();
  });

  test('a receiver that always fails, retention 0: dead letter after the first round; after it recovers, POST /admin/notifications/dead delivers it', async () => {
    let receiverStatus = 503;
    const hook = await receiver(() => receiverStatus);
    let depStatus = 200;
    const dependency = await startHttpServer((_req, res) => {
      res.writeHead(depStatus);
      res.end(depStatus === 200 ? 'ok' : 'broken');
    });
    cleanups.push(() => hook.close(), () => dependency.close());
    const cfg = config(`
server: { port: 0, host: 127.0.0.1, auth: { keys: [ { name: ops, key: "${KEY}" } ] } }
defaults: { interval: 300ms, timeout: 290ms, retry: { attempts: 1 }, thresholds: { failure: 1 } }
checks: [ { name: app, kind: http, url: "${dependency.url}/healthz" } ]
notifications:
  - { name: oncall, kind: webhook, url: "${hook.url}/hook", secret: "${SECRET}", retention: 0s, retry: { attempts: 3, backoff: { initial: 10ms, max: 20ms } } }
`);
    const sidecar = new Sidecar(cfg, createLogger({ level: 'silent' }));
    cleanups.push(() => sidecar.shutdown({ drain: false }));
    const port = await sidecar.start();
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${KEY}` };
    await waitFor(() => sidecar.store.get('app')?.status === 'UP', { what: 'app UP' });
    depStatus = 500;
    await waitFor(() => sidecar.notifications.deadLetters.size === 1, { what: 'a dead letter', timeoutMs: 30_000 });
    assert.deepEqual(hook.received.map((r) => r.status), [503, 503, 503]);

    const anonymous = await fetch(`${base}/admin/notifications/dead`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    const listed = await fetch(`${base}/admin/notifications/dead`, { headers: auth });
    assert.equal(listed.status, 200);
    const list = (await listed.json()) as { deadLetters: { id: string; time: string; failedAt: string }[] };
    const letter = list.deadLetters[0];
    assert.deepEqual(list, {
      count: 1,
      dropped: 0,
      max: 100,
      deadLetters: [
        {
          id: JSON.parse(hook.received[0]!.body).id,
          target: 'oncall',
          check: 'app',
          from: 'UP',
          to: 'DOWN',
          message: `GET ${dependency.url}/healthz: status 500, expected 200-299`,
          time: letter.time,
          incidentId: sidecar.incidents.openFor('app')!.id,
          error: 'webhook oncall answered HTTP 503: receiver unhappy',
          attempts: 3,
          failedAt: letter.failedAt,
        },
      ],
    });

    receiverStatus = 200;
    const retried = await fetch(`${base}/admin/notifications/dead`, { method: 'POST', headers: auth });
    assert.equal(retried.status, 200);
    assert.deepEqual(await retried.json(), { retried: 1, delivered: 1, failed: 0, remaining: 0, results: [{ id: letter.id, target: 'oncall', check: 'app', delivered: true }] });
    const delivered = hook.accepted();
    assert.equal(delivered.length, 1);
    assert.equal(delivered[0]!.body, hook.received[0]!.body, 'the retried message is the original one');
    assert.equal(delivered[0]!.headers['x-signature-256'], `sha256=${createHmac('sha256', SECRET).update(delivered[0]!.body).digest('hex')}`);
    const after = await (await fetch(`${base}/admin/notifications/dead`, { headers: auth })).json();
    assert.deepEqual(after, { count: 0, dropped: 0, max: 100, deadLetters: [] });
  });
});
