/**
 * Nothing lost, nothing doubled (issue 16), with real processes and the real
 * Redis: the compiled sidecar (`node dist/cli.js run`) with `state.redis` on
 * a key prefix of its own, a real webhook receiver that counts what it
 * accepts by event id, and a real HTTP dependency whose health the test sets.
 *
 * 1. kill -9 while messages are in retry: the receiver refuses (503); two
 *    checks go DOWN; once both messages are in the outbox and have been
 *    refused, the process is SIGKILLed. A new process on the same config
 *    resumes them; when the receiver accepts, each arrives exactly once, with
 *    the id it had before the crash; the checks, still DOWN after the
 *    restart, are not paged again; their recoveries arrive once; the outbox is
 *    empty at the end.
 * 2. Restart reconciliation: a DOWN is delivered; the sidecar is stopped and
 *    started while the check is still DOWN → no second DOWN (the process says
 *    why, and counts it); stopped again, the dependency recovers, started →
 *    the recovery arrives (DOWN → UP, same incident as the DOWN).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Redis from 'ioredis';
import { REDIS_URL, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { ensureBuilt } from '../helpers/paths';
import { startCli, type CliProcess } from '../telemetry/support';
import { receiver } from './helpers';

const ADMIN_KEY = 'outbox-admin-key-0123456789';

interface Message {
  id: string;
  check: string;
  from: string;
  to: string;
  incidentId: string | null;
  timeline?: unknown[];
}

describe('durable notification outbox (state.redis, real processes)', () => {
  let redis: Redis;
  const running: CliProcess[] = [];
  const servers: TestHttpServer[] = [];
  const prefixes: string[] = [];

  before(async () => {
    ensureBuilt();
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });

  after(async () => {
    for (const cli of running) cli.kill();
    for (const server of servers) await server.close();
    for (const prefix of prefixes) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
    }
    redis.disconnect();
  });

  /** a dependency answering 500 until `heal()` */
  async function dependency(): Promise<TestHttpServer & { heal(): void }> {
    let status = 500;
    const server = await startHttpServer((_req, res) => {
      res.writeHead(status);
      res.end(status === 200 ? 'ok' : 'broken');
    });
    servers.push(server);
    return Object.assign(server, { heal: () => void (status = 200) });
  }

  function yamlFor(prefix: string, deps: Record<string, string>, hookUrl: string): string {
    return `
server: { port: 0, host: 127.0.0.1, drainDelay: 0s, drainTimeout: 5s, auth: { keys: [ { name: ops, key: '${ADMIN_KEY}' } ] } }
telemetry: { serviceName: outbox-test, traces: { enabled: false } }
state: { redis: '${REDIS_URL}', keyPrefix: '${prefix}' }
defaults: { interval: 200ms, timeout: 190ms, retry: { attempts: 1 }, thresholds: { failure: 1, success: 1 } }
checks:
${Object.entries(deps)
  .map(([name, url]) => `  - { name: ${name}, kind: http, url: '${url}/healthz' }`)
  .join('\n')}
notifications:
  - name: oncall
    kind: webhook
    url: '${hookUrl}'
    cooldown: 0s
    retry: { attempts: 1 }
    breaker: { failures: 2, halfOpenAfter: 100ms }
    redelivery: { initial: 50ms, max: 200ms }
    retention: 1h
`;
  }

  async function start(yaml: string): Promise<CliProcess> {
    const cli = await startCli(yaml, { LOG_LEVEL: 'info' });
    running.push(cli);
    return cli;
  }

  test('kill -9 with messages in retry: after the restart each arrives exactly once, under the same id; no second DOWN; recoveries once', async () => {
    const prefix = `outbox-kill-${process.pid}-${Date.now()}`;
    prefixes.push(prefix);
    let accepting = false;
    const hook = await receiver(() => (accepting ? 200 : 503));
    servers.push(hook);
    const a = await dependency();
    const b = await dependency();
    const yaml = yamlFor(prefix, { alpha: a.url, beta: b.url }, hook.url);

    const first = await start(yaml);
    const refused = () => hook.received.filter((r) => r.status === 503).map((r) => JSON.parse(r.body) as Message);
    // both DOWN messages written to the outbox; the first refused (twice: a redelivery), the second waiting behind it
    await waitFor(async () => refused().length >= 2 && (await redis.hlen(`${prefix}:outbox`)) === 2, { what: 'two messages in the outbox, the first in retry' });
    const stored = Object.values(await redis.hgetall(`${prefix}:outbox`)).map((text) => (JSON.parse(text) as { event: Message }).event);
    const before = new Map(stored.map((m) => [m.check, m.id]));
    assert.deepEqual([...before.keys()].sort(), ['alpha', 'beta']);
    assert.ok(refused().every((m) => m.id === before.get(m.check)), 'what the receiver refused is what the outbox holds');
    const pending = (await (await fetch(`http://127.0.0.1:${first.port}/admin/notifications/pending`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { count: number; pending: { target: string; id: string; check: string; to: string; attempts: number }[] };
    assert.equal(pending.count, 2);
    assert.deepEqual(pending.pending.map((p) => [p.target, p.check, p.id, p.to]).sort(), [...before].map(([check, id]) => ['oncall', check, id, 'DOWN']).sort());
    assert.ok(pending.pending.some((p) => p.attempts >= 1), 'the head has been attempted');
    first.kill(); // SIGKILL: no shutdown code runs
    await new Promise((resolve) => first.child.once('exit', resolve));
    assert.equal(await redis.hlen(`${prefix}:outbox`), 2, 'both messages survived the kill in Redis');

    const second = await start(yaml);
    const loaded = await waitFor(() => second.records().find((r) => typeof r.msg === 'string' && r.msg.startsWith('history loaded from Redis')), { what: 'history loaded' });
    assert.equal(loaded?.pendingNotifications, 2);
    // both checks are still DOWN in the new process: it is told it already paged them
    await waitFor(() => second.records().filter((r) => typeof r.msg === 'string' && r.msg.startsWith('not notifying oncall again')).length === 2, { what: 'no second DOWN for either check' });
    accepting = true;
    const accepted = () => hook.accepted().map((r) => JSON.parse(r.body) as Message);
    await waitFor(() => accepted().length === 2, { what: 'the two resumed messages delivered' });
    assert.deepEqual(new Map(accepted().map((m) => [m.check, m.id])), before, 'the same ids as before the crash');
    assert.deepEqual(accepted().map((m) => m.to), ['DOWN', 'DOWN']);
    // every attempt of one message carried the same Idempotency-Key as its body id
    for (const r of hook.received) assert.equal(r.headers['idempotency-key'], (JSON.parse(r.body) as Message).id);

    a.heal();
    b.heal();
    await waitFor(() => accepted().filter((m) => m.to === 'UP').length === 2, { what: 'both recoveries' });
    await waitFor(async () => (await redis.hlen(`${prefix}:outbox`)) === 0, { what: 'the outbox emptied' });
    const ids = accepted().map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, `each id accepted exactly once: ${ids.join(', ')}`);
    assert.deepEqual(accepted().map((m) => `${m.check}:${m.to}`).sort(), ['alpha:DOWN', 'alpha:UP', 'beta:DOWN', 'beta:UP']);
    for (const check of ['alpha', 'beta']) {
      const [down, up] = [accepted().find((m) => m.check === check && m.to === 'DOWN')!, accepted().find((m) => m.check === check && m.to === 'UP')!];
      assert.equal(up.incidentId, down.incidentId, `${check}: the recovery closes the incident the DOWN opened`);
    }
    const stopped = await second.stop();
    assert.equal(stopped.code, 0);
  });

  test('restart reconciliation: still DOWN after a restart → nothing; recovered while stopped → the recovery is sent', async () => {
    const prefix = `outbox-reconcile-${process.pid}-${Date.now()}`;
    prefixes.push(prefix);
    const hook = await receiver(() => 200);
    servers.push(hook);
    const dep = await dependency();
    const yaml = yamlFor(prefix, { app: dep.url }, hook.url);
    const messages = () => hook.accepted().map((r) => JSON.parse(r.body) as Message);

    const first = await start(yaml);
    await waitFor(() => messages().length === 1, { what: 'the DOWN delivered' });
    assert.equal((await first.stop()).code, 0);

    // still DOWN: the new process compares its first verdict with what the target was told
    const second = await start(yaml);
    await waitFor(() => second.records().some((r) => typeof r.msg === 'string' && r.msg.startsWith('not notifying oncall again: it was already told app is DOWN')), { what: 'the duplicate DOWN suppressed' });
    const metrics = await fetch(`http://127.0.0.1:${second.port}/metrics`).then((r) => r.text());
    assert.match(metrics, /healthcheck_notifications_duplicates_suppressed_total\{[^}]*notification_target="oncall"[^}]*\} 1\b/);
    assert.equal((await second.stop()).code, 0);
    assert.equal(messages().length, 1, 'no second DOWN');

    // recovered while no sidecar ran
    dep.heal();
    const third = await start(yaml);
    await waitFor(() => messages().length === 2, { what: 'the recovery' });
    const [down, up] = messages();
    assert.deepEqual({ check: up!.check, from: up!.from, to: up!.to, incidentId: up!.incidentId }, { check: 'app', from: 'DOWN', to: 'UP', incidentId: down!.incidentId });
    assert.ok(down!.incidentId, 'the DOWN named its incident');
    assert.equal((await third.stop()).code, 0);
  });
});
