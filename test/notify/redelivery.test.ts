/**
 * Redelivery instead of dead letters (issue 16.4): a receiver that is down
 * for longer than the target's breaker window loses nothing. Messages wait
 * behind the open breaker, are retried round after round, fold per check
 * into one message that tells the whole story, and arrive in order per check
 * once the receiver is back; only a message older than `retention` becomes a
 * dead letter.
 *
 * Time: the sidecar's clock is injected — real time plus an offset that the
 * test moves forward by hours at once, so "not before retention" does not
 * depend on how fast this machine is; the waits between rounds are real but
 * short (redelivery 5–40 ms), and the test waits for counted events (rounds,
 * deliveries), never for time.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { waitFor } from '../helpers/servers';
import { config, receiver, run, wire } from './helpers';

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

interface Body {
  id: string;
  check: string;
  from: string;
  to: string;
  suppressed: number;
  timeline?: { status: string; time: string }[];
}

const HOUR = 3600_000;

describe('redelivery while a receiver is down', () => {
  test('down longer than the breaker window: nothing dead-lettered before retention, everything delivered afterwards, in order per check, folded per check', async () => {
    let up = false;
    const hook = await receiver(() => (up ? 200 : 503));
    cleanups.push(() => hook.close());
    const cfg = config(`
checks:
  - { name: api, kind: tcp, url: "tcp://127.0.0.1:80", thresholds: { failure: 1, success: 1 } }
  - { name: db, kind: tcp, url: "tcp://127.0.0.1:5432", thresholds: { failure: 1, success: 1 } }
notifications:
  - name: oncall
    kind: webhook
    url: "${hook.url}"
    cooldown: 0s
    retry: { attempts: 2, backoff: { initial: 1ms, max: 2ms } }
    breaker: { failures: 2, halfOpenAfter: 20ms }
    redelivery: { initial: 5ms, max: 40ms }
    retention: 24h
`);
    let offset = 0;
    const { store, service, metrics } = wire(cfg, { now: () => Date.now() + offset });
    store.record('api', run(true));
    store.record('db', run(true));

    store.record('api', run(false)); // api DOWN: the head, attempted, refused
    await waitFor(async () => ((await metrics.counters())['healthcheck.notifications.redeliveries{oncall}'] ?? 0) >= 1, { what: 'the first round failed' });
    // while the receiver is down, both checks flap; api's head may be in flight, everything else folds
    store.record('db', run(false));
    store.record('api', run(true));
    store.record('db', run(true));
    store.record('api', run(false));
    store.record('db', run(false));
    // many rounds, far beyond the breaker's window (it opens after 2 failures, half-opens after 20 ms)
    await waitFor(async () => ((await metrics.counters())['healthcheck.notifications.redeliveries{oncall}'] ?? 0) >= 15, { what: '15 failed rounds' });
    offset += 23 * HOUR; // nearly the whole retention passes on the sidecar's clock
    const rounds = (await metrics.counters())['healthcheck.notifications.redeliveries{oncall}']!;
    await waitFor(async () => (await metrics.counters())['healthcheck.notifications.redeliveries{oncall}']! >= rounds + 3, { what: 'three more rounds after 23 h' });
    assert.equal(service.deadLetters.size, 0, 'nothing dead-lettered before the retention');
    assert.ok(hook.received.length >= 15 && hook.accepted().length === 0, 'every round reached the receiver or the open breaker, none was accepted');
    const queue = await metrics.queue();
    assert.ok(queue.depth >= 2 && queue.depth <= 3, `at most one waiting message per check plus the one in flight: ${queue.depth}`);
    assert.ok(queue.oldestAgeSeconds >= 23 * 3600 && queue.oldestAgeSeconds < 24 * 3600, `the oldest message is 23 h old on the sidecar clock: ${queue.oldestAgeSeconds} s`);

    up = true;
    await waitFor(() => service.listPending().length === 0, { what: 'the queue drained once the receiver is back' });
    const bodies = hook.accepted().map((r) => JSON.parse(r.body) as Body);
    const ids = bodies.map((b) => b.id);
    assert.equal(new Set(ids).size, ids.length, 'each message accepted once');
    // per check, the last message tells the current state, and the story has every state in order
    for (const check of ['api', 'db']) {
      const mine = bodies.filter((b) => b.check === check);
      const states = mine.flatMap((b) => (b.timeline ? b.timeline.map((s) => s.status) : [b.to]));
      assert.deepEqual(states, check === 'api' ? ['DOWN', 'UP', 'DOWN'] : ['DOWN', 'UP', 'DOWN'], `${check}: every state told, in order`);
      assert.equal(mine.at(-1)!.to, store.get(check)!.status);
      const times = mine.flatMap((b) => (b.timeline ? b.timeline.map((s) => Date.parse(s.time)) : []));
      assert.deepEqual(times, [...times].sort((x, y) => x - y), `${check}: the timeline is in time order`);
    }
    assert.ok(bodies.some((b) => (b.timeline?.length ?? 0) > 1), 'waiting messages were folded into one that tells the story');
    assert.equal(service.deadLetters.size, 0);
    await service.close();
  });

  test('a message still undelivered at the end of its retention becomes a dead letter (its last round is made at the deadline)', async () => {
    const hook = await receiver(() => 503);
    cleanups.push(() => hook.close());
    const cfg = config(`
checks: [ { name: api, kind: tcp, url: "tcp://127.0.0.1:80", thresholds: { failure: 1 } } ]
notifications:
  - { name: oncall, kind: webhook, url: "${hook.url}", retry: { attempts: 1 }, redelivery: { initial: 5ms, max: 10ms }, retention: 1h }
`);
    let offset = 0;
    const { store, service, metrics } = wire(cfg, { now: () => Date.now() + offset });
    store.record('api', run(false));
    const queuedAt = service.listPending()[0]!.queuedAt;
    await waitFor(async () => ((await metrics.counters())['healthcheck.notifications.redeliveries{oncall}'] ?? 0) >= 3, { what: 'three failed rounds' });
    offset = queuedAt + HOUR - 60_000 - Date.now(); // a minute before the retention ends
    const rounds = (await metrics.counters())['healthcheck.notifications.redeliveries{oncall}']!;
    await waitFor(async () => (await metrics.counters())['healthcheck.notifications.redeliveries{oncall}']! >= rounds + 2, { what: 'rounds go on a minute before the retention ends' });
    assert.equal(service.deadLetters.size, 0);
    offset += 60_000;
    await waitFor(() => service.deadLetters.size === 1, { what: 'the dead letter at the end of the retention' });
    const [letter] = service.listDead().deadLetters;
    assert.match(letter!.error, /^webhook oncall answered HTTP 503: receiver unhappy \(not delivered within retention, \d+ round\(s\)\)$/);
    assert.equal(letter!.attempts, hook.received.length, 'every attempt that reached the receiver counted');
    assert.equal(service.listPending().length, 0);
    await service.close();
  });
});
