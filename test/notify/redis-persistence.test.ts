/**
 * With state.redis, a restarted sidecar (a new Sidecar on the same key
 * prefix) finds its incidents and dead letters; an incident open at the
 * restart is resumed and closed when the check comes back. Real Redis.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import Redis from 'ioredis';
import { Sidecar } from '../../src/sidecar';
import { createLogger } from '../../src/telemetry/log';
import { REDIS_URL, startHttpServer, waitFor } from '../helpers/servers';
import { config, receiver } from './helpers';

const KEY = 'admin-key-0123456789abcdef';
const prefix = `test-notify-${randomUUID()}`;
const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
  await redis.del(`${prefix}:incidents`, `${prefix}:dead-letters`).catch(() => undefined);
  redis.disconnect();
});

interface IncidentsBody {
  open: number;
  total: number;
  incidents: { id: string; check: string; open: boolean; firstError: string; closedBy: string | null; end: string | null }[];
}

describe('state.redis', () => {
  test('incidents and dead letters survive a restart; the open incident is resumed, then closed on recovery', async () => {
    await redis.connect();
    let depStatus = 500;
    const dependency = await startHttpServer((_req, res) => {
      res.writeHead(depStatus);
      res.end();
    });
    const hook = await receiver(() => 503);
    cleanups.push(() => dependency.close(), () => hook.close());
    const yaml = `
server: { port: 0, host: 127.0.0.1, showDetails: always, auth: { keys: [ { name: ops, key: "${KEY}" } ] } }
state: { redis: "${REDIS_URL}", keyPrefix: "${prefix}" }
defaults: { interval: 300ms, timeout: 290ms, retry: { attempts: 1 }, thresholds: { failure: 1 } }
checks: [ { name: app, kind: http, url: "${dependency.url}/healthz" } ]
notifications:
  - { name: oncall, kind: webhook, url: "${hook.url}", retention: 0s, retry: { attempts: 1 } }
`;
    const first = new Sidecar(config(yaml), createLogger({ level: 'silent' }));
    cleanups.push(() => first.shutdown({ drain: false }));
    await first.start();
    await waitFor(() => first.notifications.deadLetters.size === 1 && first.incidents.openFor('app'), { what: 'incident and dead letter', timeoutMs: 30_000 });
    const incidentId = first.incidents.openFor('app')!.id;
    const letterId = first.notifications.listDead().deadLetters[0]!.id;
    await first.shutdown({ drain: false });

    const stored = JSON.parse((await redis.get(`${prefix}:incidents`)) ?? 'null') as { id: string; endedAt: number | null }[];
    assert.deepEqual(stored.map((i) => [i.id, i.endedAt]), [[incidentId, null]]);
    const storedDead = JSON.parse((await redis.get(`${prefix}:dead-letters`)) ?? 'null') as { letters: { id: string }[]; dropped: number };
    assert.deepEqual({ ids: storedDead.letters.map((l) => l.id), dropped: storedDead.dropped }, { ids: [letterId], dropped: 0 });

    // restart; meanwhile the dependency recovered
    depStatus = 200;
    const second = new Sidecar(config(yaml), createLogger({ level: 'silent' }));
    cleanups.push(() => second.shutdown({ drain: false }));
    const port = await second.start();
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${KEY}` };
    const dead = (await (await fetch(`${base}/admin/notifications/dead`, { headers: auth })).json()) as { count: number; deadLetters: { id: string; check: string; to: string }[] };
    assert.deepEqual(dead.deadLetters.map((l) => [l.id, l.check, l.to]), [[letterId, 'app', 'DOWN']]);

    await waitFor(async () => ((await (await fetch(`${base}/health/incidents`)).json()) as IncidentsBody).open === 0, { what: 'incident closed', timeoutMs: 30_000 });
    const incidents = (await (await fetch(`${base}/health/incidents`)).json()) as IncidentsBody;
    assert.equal(incidents.total, 1, 'the resumed incident, not a new one');
    const [incident] = incidents.incidents;
    assert.deepEqual({ id: incident!.id, check: incident!.check, open: incident!.open, closedBy: incident!.closedBy, firstError: incident!.firstError }, { id: incidentId, check: 'app', open: false, closedBy: 'recovered', firstError: `GET ${dependency.url}/healthz: status 500, expected 200-299` });
    await second.settle();
    const after = JSON.parse((await redis.get(`${prefix}:incidents`)) ?? 'null') as { id: string; closedBy: string }[];
    assert.deepEqual(after.map((i) => [i.id, i.closedBy]), [[incidentId, 'recovered']], 'the closing is persisted too');
  });
});
