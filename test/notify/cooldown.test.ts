/**
 * Cooldown: at most one message per check and state in the window, so a
 * flapping check pages once; the state the flapping ends in is still told
 * when the window closes. Plus the target filters (checks, groups, severity)
 * and which changes are news at all. The window runs on node:test's fake clock
 * (setTimeout and Date): the test moves time to 1 ms before the window closes
 * and to its end; the messages are real HTTP requests to a real receiver.
 */
import assert from 'node:assert/strict';
import { after, describe, test, type TestContext } from 'node:test';
import { config, receiver, run, wire } from './helpers';

function fakeClock(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2030-01-01T00:00:00Z') });
  return { tick: (ms: number) => t.mock.timers.tick(ms) };
}

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

const states = (hook: Awaited<ReturnType<typeof receiver>>) => hook.received.map((r) => JSON.parse(r.body) as { from: string; to: string; suppressed: number });

describe('notification cooldown', () => {
  test('a check flapping 5 times within the cooldown: one DOWN message and one UP message', async () => {
    const hook = await receiver();
    cleanups.push(() => hook.close());
    const cfg = config(`
checks: [ { name: api, kind: tcp, url: "tcp://127.0.0.1:80", thresholds: { failure: 1, success: 1 } } ]
notifications: [ { name: oncall, kind: webhook, url: "${hook.url}", cooldown: 1h } ]
`);
    const { store, service } = wire(cfg);
    store.record('api', run(true));
    let transitions = 0;
    store.onTransition(() => transitions++);
    for (let i = 0; i < 5; i++) {
      store.record('api', run(false));
      store.record('api', run(true));
    }
    await service.idle();
    assert.equal(transitions, 10, 'the store saw every flap');
    assert.deepEqual(states(hook).map((s) => `${s.from}→${s.to}`), ['UP→DOWN', 'DOWN→UP']);
    await service.close();
  });

  test('flapping that ends DOWN: the held-back DOWN is sent when the window closes, with the count of suppressed changes', async (t) => {
    const hook = await receiver();
    cleanups.push(() => hook.close());
    const cooldownMs = 60_000;
    const cfg = config(`
checks: [ { name: api, kind: tcp, url: "tcp://127.0.0.1:80", thresholds: { failure: 1, success: 1 } } ]
notifications: [ { name: oncall, kind: webhook, url: "${hook.url}", cooldown: ${cooldownMs}ms } ]
`);
    const clock = fakeClock(t);
    const { store, service } = wire(cfg, { now: () => Date.now() });
    store.record('api', run(true));
    store.record('api', run(false)); // sent
    store.record('api', run(true)); // sent (first UP)
    store.record('api', run(false)); // suppressed: DOWN was sent within the window
    await service.idle();
    assert.deepEqual(states(hook).map((s) => `${s.from}→${s.to}`), ['UP→DOWN', 'DOWN→UP']);
    clock.tick(cooldownMs - 1);
    await service.idle();
    assert.equal(hook.received.length, 2, 'not before the window closed');
    clock.tick(1);
    await service.idle();
    assert.equal(hook.received.length, 3, 'the held-back state once the window closed');
    assert.deepEqual(states(hook)[2], { ...states(hook)[2], from: 'UP', to: 'DOWN', suppressed: 1 });
    await service.close();
  });

  test('flapping that ends in the state last told: nothing more after the window', async (t) => {
    const hook = await receiver();
    cleanups.push(() => hook.close());
    const cooldownMs = 60_000;
    const cfg = config(`
checks: [ { name: api, kind: tcp, url: "tcp://127.0.0.1:80", thresholds: { failure: 1, success: 1 } } ]
notifications: [ { name: oncall, kind: webhook, url: "${hook.url}", cooldown: ${cooldownMs}ms } ]
`);
    const clock = fakeClock(t);
    const { store, service } = wire(cfg, { now: () => Date.now() });
    store.record('api', run(true));
    for (let i = 0; i < 3; i++) {
      store.record('api', run(false));
      store.record('api', run(true));
    }
    await service.idle();
    // the window closes: the flapping ended UP, which was the last state told, so nothing is sent
    clock.tick(cooldownMs);
    await service.idle();
    assert.deepEqual(states(hook).map((s) => `${s.from}→${s.to}`), ['UP→DOWN', 'DOWN→UP']);
    // a third state change after the window: sent, since its own cooldown is over
    store.record('api', run(false));
    await service.idle();
    assert.deepEqual(states(hook).map((s) => `${s.from}→${s.to}`), ['UP→DOWN', 'DOWN→UP', 'UP→DOWN']);
    await service.close();
  });
});

describe('what each target hears', () => {
  test('checks, groups and minSeverity select; start-up UNKNOWN→UP is not news; after an operator reset the verdict is compared with what each target was told', async () => {
    const all = await receiver();
    const critical = await receiver();
    const onlyDb = await receiver();
    const live = await receiver();
    cleanups.push(() => all.close(), () => critical.close(), () => onlyDb.close(), () => live.close());
    const cfg = config(`
defaults: { thresholds: { failure: 1 } }
checks:
  - { name: db, kind: tcp, url: "tcp://127.0.0.1:5432" }
  - { name: cache, kind: tcp, url: "tcp://127.0.0.1:6379", critical: false }
  - { name: app, kind: tcp, url: "tcp://127.0.0.1:8080", groups: [live, ready] }
notifications:
  - { name: all, kind: webhook, url: "${all.url}", cooldown: 0s }
  - { name: critical, kind: webhook, url: "${critical.url}", minSeverity: critical, cooldown: 0s }
  - { name: only-db, kind: webhook, url: "${onlyDb.url}", checks: [db], cooldown: 0s }
  - { name: live, kind: webhook, url: "${live.url}", groups: [live], cooldown: 0s }
`);
    const { store, service } = wire(cfg);
    for (const name of ['db', 'cache', 'app']) store.record(name, run(true)); // UNKNOWN → UP: silent
    for (const name of ['db', 'cache', 'app']) store.record(name, run(false));
    store.reset('db'); // DOWN → UNKNOWN: silent
    store.record('db', run(true)); // UNKNOWN → UP after a reset: the targets that were told db is DOWN hear the recovery
    store.reset('app'); // DOWN → UNKNOWN: silent
    store.record('app', run(false)); // UNKNOWN → DOWN after a reset: they were told already, nothing
    store.record('cache', run(true)); // DOWN → UP: news
    await service.idle();
    const seen = (hook: typeof all) => states(hook).map((s) => `${(s as unknown as { check: string }).check}:${s.from}→${s.to}`).sort();
    assert.deepEqual(seen(all), ['app:UP→DOWN', 'cache:DOWN→UP', 'cache:UP→DOWN', 'db:DOWN→UP', 'db:UP→DOWN']);
    assert.deepEqual(seen(critical), ['app:UP→DOWN', 'db:DOWN→UP', 'db:UP→DOWN']);
    assert.deepEqual(seen(onlyDb), ['db:DOWN→UP', 'db:UP→DOWN']);
    assert.deepEqual(seen(live), ['app:UP→DOWN']);
    await service.close();
  });
});
