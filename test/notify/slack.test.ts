/** Slack incoming-webhook format delivered to a real local receiver; retried until accepted, once. */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { config, receiver, run, wire } from './helpers';
import { eventId } from '../../src/notify/outbox';

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

describe('slack target', () => {
  test('a DOWN change is posted in incoming-webhook format (text + blocks), escaped, after two refusals exactly once', async () => {
    const slack = await receiver((n) => (n <= 2 ? 500 : 200));
    cleanups.push(() => slack.close());
    const cfg = config(`
telemetry: { serviceName: checkout-health }
checks: [ { name: cache, kind: tcp, url: "tcp://127.0.0.1:6379", critical: false, thresholds: { failure: 1 } } ]
notifications:
  - { name: chat, kind: slack, url: "${slack.url}/services/T000/B000/XXXXXXXX", retry: { attempts: 3, backoff: { initial: 10ms, max: 20ms } } }
`);
    assert.ok(cfg.secrets.includes(`${slack.url}/services/T000/B000/XXXXXXXX`), 'the Slack webhook URL is a secret');
    const { store, service, metrics } = wire(cfg);
    store.record('cache', run(true));
    store.record('cache', run(false, 'reply <timeout> & retry'));
    const changedAt = store.get('cache')!.lastChangeAt!;
    await service.idle();

    assert.deepEqual(slack.received.map((r) => r.status), [500, 500, 200]);
    const accepted = slack.accepted();
    assert.equal(accepted.length, 1);
    assert.equal(accepted[0]!.headers['content-type'], 'application/json');
    const time = new Date(changedAt).toISOString();
    assert.deepEqual(JSON.parse(accepted[0]!.body), {
      text: ':large_orange_circle: cache is DOWN (was UP): reply &lt;timeout&gt; &amp; retry',
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: ':large_orange_circle: *cache is DOWN (was UP)* — checkout-health' } },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*Check*\ncache (tcp)' },
            { type: 'mrkdwn', text: '*State*\nUP → DOWN' },
            { type: 'mrkdwn', text: '*Severity*\nwarning' },
            { type: 'mrkdwn', text: `*Time*\n${time}` },
            { type: 'mrkdwn', text: '*Incident*\ninc-cache' },
          ],
        },
        { type: 'context', elements: [{ type: 'mrkdwn', text: 'reply &lt;timeout&gt; &amp; retry' }, { type: 'mrkdwn', text: `event ${eventId('checkout-health', 'cache', 'DOWN', 'inc-cache', changedAt)}` }] },
      ],
    });
    assert.deepEqual(await metrics.counters(), { 'healthcheck.notifications.sent{chat}': 1, 'healthcheck.notifications.failed{chat}': 2, 'healthcheck.notification.attempts{chat,failure}': 2, 'healthcheck.notification.attempts{chat,success}': 1 });
    await service.close();
  });

  test('a Slack receiver that never accepts, retention 0: one dead letter after the first round, counted, with the refusal and no webhook URL in it', async () => {
    const slack = await receiver(() => 404);
    cleanups.push(() => slack.close());
    const url = `${slack.url}/services/T000/B000/SECRETTOKEN`;
    const cfg = config(`
checks: [ { name: cache, kind: tcp, url: "tcp://127.0.0.1:6379", thresholds: { failure: 1 } } ]
notifications:
  - { name: chat, kind: slack, url: "${url}", retention: 0s, retry: { attempts: 2, backoff: { initial: 10ms, max: 20ms } } }
`);
    const { store, service, metrics } = wire(cfg);
    store.record('cache', run(false));
    await service.idle();
    assert.equal(slack.received.length, 2);
    const [letter] = service.listDead().deadLetters;
    assert.equal(service.deadLetters.size, 1);
    assert.equal(letter!.error, 'slack chat answered HTTP 404: receiver unhappy');
    assert.equal(letter!.attempts, 2);
    assert.ok(!JSON.stringify(service.listDead()).includes('SECRETTOKEN'));
    assert.deepEqual(await metrics.counters(), { 'healthcheck.notifications.failed{chat}': 2, 'healthcheck.notifications.dead{chat}': 1, 'healthcheck.notification.attempts{chat,failure}': 2 });
    await service.close();
  });
});
