/**
 * The `slo` config block on its own: objectives as percentages or ratios,
 * windows from 1h to 30d, clear messages for each way to get it wrong, and
 * the key-by-key merge with defaults.slo (with `slo: false` opting out).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseObjective, resolveSlo, sloSchema } from '../../src/config/slo';

const messages = (value: unknown) => {
  const result = sloSchema.safeParse(value);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('slo config', () => {
  test('objectives: "99.9%" and 0.999 are the same; exact ratios', () => {
    assert.deepEqual(['99.9%', '99.95 %', '99%', '99.999%', '50%', 0.999, 0.5].map((v) => parseObjective(v)), [
      { ratio: 0.999 }, { ratio: 0.9995 }, { ratio: 0.99 }, { ratio: 0.99999 }, { ratio: 0.5 }, { ratio: 0.999 }, { ratio: 0.5 },
    ]);
    assert.deepEqual(sloSchema.parse({ objective: '99.9%', window: '7d' }), { objective: 0.999, window: { ms: 7 * 86_400_000, label: '7d' } });
  });

  test('every mistake has its own message', () => {
    assert.deepEqual(messages({ objective: 99.9 }), ['objective: 99.9 is ambiguous: write "99.9%" (a percentage) or 0.999 (a ratio)']);
    assert.deepEqual(messages({ objective: '100%' }), ['objective: an objective of 100% leaves no error budget (every failed run would be an infinite burn rate): use at most 99.999%']);
    assert.deepEqual(messages({ objective: '0%' }), ['objective: must be above 0%']);
    assert.deepEqual(messages({ objective: 'three nines' }), ['objective: "three nines" is not a percentage such as "99.9%" (or a ratio such as 0.999)']);
    assert.deepEqual(messages({ objective: -0.5 }), ['objective: must be above 0']);
    assert.deepEqual(messages({ objective: true }), ['objective: must be a percentage such as "99.9%" or a ratio such as 0.999']);
    assert.deepEqual(messages('99.9%'), [': Invalid input: expected object, received string']);
    assert.deepEqual(messages({ objective: '99%', window: '45d' }), ['window: 45d is longer than the 30 days of history kept']);
    assert.deepEqual(messages({ objective: '99%', window: '30m' }), ['window: 30m is shorter than 1h (the shortest SLO window)']);
    assert.deepEqual(messages({ objective: '99%', window: '36h30m' }), ['window: 36h30m: a window over 24h counts whole hours (e.g. 37h)']);
    assert.deepEqual(messages({ objective: '99%', window: 30 }), ['window: must be a duration such as "30d", "7d" or "24h"']);
    assert.deepEqual(messages({ objective: '99%', windw: '7d' }), [': Unrecognized key: "windw"']);
    assert.deepEqual(messages({ objective: '99.9%', enabled: 'no' }), ['enabled: Invalid input: expected boolean, received string']);
    assert.deepEqual(messages({ objective: '99.9%', window: '30d' }), []);
    assert.deepEqual(messages({ enabled: false }), []);
  });

  test('a check overrides defaults.slo key by key; enabled: false opts out; an objective must exist somewhere', () => {
    const defaults = sloSchema.parse({ objective: '99.9%' });
    assert.deepEqual(resolveSlo(undefined, defaults), { objective: 0.999, windowMs: 30 * 86_400_000, window: '30d' });
    assert.deepEqual(resolveSlo(sloSchema.parse({ window: '7d' }), defaults), { objective: 0.999, windowMs: 7 * 86_400_000, window: '7d' });
    assert.deepEqual(resolveSlo(sloSchema.parse({ objective: 0.99 }), sloSchema.parse({ objective: '99.9%', window: '28d' })), { objective: 0.99, windowMs: 28 * 86_400_000, window: '28d' });
    assert.equal(resolveSlo(sloSchema.parse({ enabled: false }), defaults), undefined);
    assert.equal(resolveSlo(undefined, sloSchema.parse({ objective: '99%', enabled: false })), undefined);
    assert.deepEqual(resolveSlo(sloSchema.parse({ enabled: true }), sloSchema.parse({ objective: '99%', enabled: false })), { objective: 0.99, windowMs: 30 * 86_400_000, window: '30d' });
    assert.equal(resolveSlo(undefined, undefined), undefined);
    assert.throws(() => resolveSlo(sloSchema.parse({ window: '7d' }), undefined), /objective is required \(here or in defaults\.slo\)/);
  });
});

describe('slo in a config file', () => {
  test('the loader resolves each check against defaults.slo', async () => {
    const { parseConfig } = await import('../../src/probes/registry');
    const config = parseConfig(
      `defaults: { slo: { objective: 99.9%, window: 7d } }
checks:
  - { name: a, kind: tcp, url: "tcp://127.0.0.1:1" }
  - { name: b, kind: tcp, url: "tcp://127.0.0.1:2", slo: { objective: 0.99 } }
  - { name: c, kind: tcp, url: "tcp://127.0.0.1:3", slo: { enabled: false } }
`,
      'slo.yaml',
      { env: {} },
    );
    assert.deepEqual(config.checks.map((c) => [c.name, c.slo]), [
      ['a', { objective: 0.999, windowMs: 7 * 86_400_000, window: '7d' }],
      ['b', { objective: 0.99, windowMs: 7 * 86_400_000, window: '7d' }],
      ['c', undefined],
    ]);
    assert.ok(!('slo' in config.checks[2]!), 'no slo key at all when there is none');
  });
});
