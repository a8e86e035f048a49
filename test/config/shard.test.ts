/**
 * Check sharding (`shard: { index, count }`): validation in the usual
 * FILE:LINE:COL form, `index: auto` from the StatefulSet ordinal, and the
 * properties the assignment promises — every check in exactly one shard, a
 * roughly even split, no dependence on list order, nothing moves when a check
 * is added, and only about 1/count moves when the count grows (rendezvous
 * hashing; a plain hash mod count would move most).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/probes/registry';
import { ConfigError } from '../../src/errors';
import { ordinalFromEnv, ownsCheck, shardOf } from '../../src/config/shard';

function problems(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(yaml, 'shard.yaml', { env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message.split('\n');
  }
  assert.fail('the config was accepted');
}

function checksYaml(names: string[], extra = ''): string {
  return `${names.map((n) => `  - { name: ${n}, kind: tcp, url: "tcp://127.0.0.1:1"${extra} }`).join('\n')}\n`;
}

function owned(names: string[], index: number | string, count: number, env: Record<string, string> = {}): string[] {
  return parseConfig(`shard: { index: ${index}, count: ${count} }\nchecks:\n${checksYaml(names)}`, 'shard.yaml', { env }).checks.map((c) => c.name);
}

const names = (n: number, prefix = 'check') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('shard: validation', () => {
  test('index must be below count, with FILE:LINE:COL and the key path', () => {
    assert.deepEqual(problems('shard:\n  index: 2\n  count: 2\n'), ['shard.yaml:2:10 shard.index: must be less than shard.count (2): shards are numbered 0 … 1']);
  });

  test('negative index, zero count, a word that is not auto, a missing count', () => {
    assert.deepEqual(problems('shard: { index: -1, count: 0 }\n'), ['shard.yaml:1:17 shard.index: must be at least 0', 'shard.yaml:1:28 shard.count: must be at least 1']);
    assert.deepEqual(problems('shard: { index: first, count: 2 }\n'), ['shard.yaml:1:17 shard.index: must be a whole number ≥ 0 or "auto"']);
    assert.deepEqual(problems('shard: { index: 0 }\n'), ['shard.yaml:1:8 shard.count: is required']);
    assert.deepEqual(problems('shard: { index: 0, count: 2, replicas: 3 }\n'), ['shard.yaml:1:30 shard.replicas: unknown key']);
  });

  test('a per-check pin needs the top-level shard and must be below its count', () => {
    assert.deepEqual(problems(`checks:\n${checksYaml(['a'], ', shard: 0')}`), ['shard.yaml:2:60 checks[0].shard: pins the check to a shard, but there is no top-level shard: { index, count }']);
    assert.deepEqual(problems(`shard: { index: 0, count: 2 }\nchecks:\n${checksYaml(['a'], ', shard: 2')}`), ['shard.yaml:3:60 checks[0].shard: must be less than shard.count (2)']);
  });

  test('index: auto without a pod name, with one that has no ordinal, or with an ordinal beyond count', () => {
    assert.deepEqual(problems('shard: { index: auto, count: 2 }\n'), ['shard.yaml:1:17 shard.index: auto needs K8S_POD_NAME or HOSTNAME set to the pod name (e.g. checks-monitor-0)']);
    assert.deepEqual(problems('shard: { index: auto, count: 2 }\n', { HOSTNAME: 'laptop' }), [
      'shard.yaml:1:17 shard.index: auto needs a pod name ending in -N (a StatefulSet ordinal), but HOSTNAME is "laptop"',
    ]);
    assert.deepEqual(problems('shard: { index: auto, count: 2 }\n', { K8S_POD_NAME: 'checks-monitor-2' }), [
      'shard.yaml:1:17 shard.index: auto: ordinal 2 (from K8S_POD_NAME) is not less than shard.count (2); more replicas than shards?',
    ]);
  });

  test('index and count from ${VAR} substitution; an unset variable is an error', () => {
    const config = parseConfig('shard: { index: ${SHARD_INDEX}, count: ${SHARD_COUNT:-3} }\n', 'shard.yaml', { env: { SHARD_INDEX: '2' } });
    assert.deepEqual(config.shard, { index: 2, count: 3, indexFrom: 'config', owned: 0, total: 0 });
    assert.deepEqual(problems('shard: { index: ${SHARD_INDEX}, count: 3 }\n'), ['shard.yaml:1:17 shard.index: environment variable SHARD_INDEX is not set and has no default']);
  });

  test('no shard block: every check is loaded and config.shard is absent', () => {
    const config = parseConfig(`checks:\n${checksYaml(names(5))}`, 'shard.yaml', { env: {} });
    assert.equal(config.checks.length, 5);
    assert.equal(config.shard, undefined);
  });
});

describe('shard: index: auto', () => {
  test('reads the trailing ordinal of K8S_POD_NAME first, then HOSTNAME', () => {
    assert.deepEqual(ordinalFromEnv({ K8S_POD_NAME: 'checks-monitor-3', HOSTNAME: 'checks-monitor-1' }), { index: 3, from: 'K8S_POD_NAME' });
    assert.deepEqual(ordinalFromEnv({ HOSTNAME: 'checks-monitor-1' }), { index: 1, from: 'HOSTNAME' });
    assert.deepEqual(ordinalFromEnv({ K8S_POD_NAME: '', HOSTNAME: 'web-2-10' }), { index: 10, from: 'HOSTNAME' });
    const config = parseConfig(`shard: { index: auto, count: 4 }\nchecks:\n${checksYaml(names(40))}`, 'shard.yaml', { env: { HOSTNAME: 'mon-3' } });
    assert.equal(config.shard?.index, 3);
    assert.equal(config.shard?.indexFrom, 'HOSTNAME');
    assert.deepEqual(config.checks.map((c) => c.name), owned(names(40), 3, 4));
  });
});

describe('shard: assignment', () => {
  test('1000 names across 4 shards: each check in exactly one shard, each shard within ±20% of an even split', () => {
    const all = names(1000);
    const counts = [0, 0, 0, 0];
    for (const name of all) {
      const owners = [0, 1, 2, 3].filter((index) => ownsCheck({ index, count: 4 }, name));
      assert.equal(owners.length, 1, `${name} owned by ${owners.join(',')}`);
      counts[owners[0]!]!++;
    }
    for (const c of counts) assert.ok(c >= 200 && c <= 300, `uneven split: ${counts.join(', ')}`);
  });

  test('through the loader: the replicas of a 4-way split together load every check once', () => {
    const all = names(200, 'svc');
    const byShard = [0, 1, 2, 3].map((index) => owned(all, index, 4));
    const union = byShard.flat();
    assert.equal(union.length, all.length, 'no check in two shards');
    assert.deepEqual(new Set(union), new Set(all), 'no check in no shard');
    const config = parseConfig(`shard: { index: 1, count: 4 }\nchecks:\n${checksYaml(all)}`, 'shard.yaml', { env: {} });
    assert.deepEqual(config.shard, { index: 1, count: 4, indexFrom: 'config', owned: byShard[1]!.length, total: 200 });
  });

  test('independent of list order, and adding or removing a check moves no other check', () => {
    const all = names(100);
    for (const index of [0, 1, 2]) {
      const before = owned(all, index, 3);
      assert.deepEqual(new Set(owned([...all].reverse(), index, 3)), new Set(before), 'order changed ownership');
      const added = owned(['brand-new', ...all], index, 3);
      assert.deepEqual(added.filter((n) => n !== 'brand-new'), before, 'adding a check moved others');
      const removed = owned(all.slice(1), index, 3);
      assert.deepEqual(removed, before.filter((n) => n !== all[0]), 'removing a check moved others');
    }
  });

  test('growing from 4 to 5 shards moves about 1/5 of the checks, only onto the new shard', () => {
    const all = names(1000);
    const moved = all.filter((n) => shardOf(n, 4) !== shardOf(n, 5));
    assert.ok(moved.length > 100 && moved.length < 300, `${moved.length} of 1000 moved (expected about 200)`);
    for (const n of moved) assert.equal(shardOf(n, 5), 4, `${n} moved between old shards`);
  });

  test('the hash is part of the contract: replicas of different versions agree (fixed values)', () => {
    assert.deepEqual(['app', 'cache', 'db', 'check-0', 'check-999'].map((n) => shardOf(n, 4)), [3, 1, 2, 2, 3]);
    assert.deepEqual(['app', 'cache', 'db', 'check-0', 'check-999'].map((n) => shardOf(n, 3)), [2, 1, 2, 2, 0]);
    assert.equal(shardOf('anything', 1), 0);
  });

  test('a pinned check belongs to its pinned shard only', () => {
    const yaml = (index: number) => `shard: { index: ${index}, count: 4 }\nchecks:\n  - { name: app, kind: tcp, url: "tcp://127.0.0.1:1", shard: 0 }\n`;
    assert.equal(shardOf('app', 4), 3, 'the hash alone would put app on shard 3');
    assert.deepEqual([0, 1, 2, 3].map((i) => parseConfig(yaml(i), 'shard.yaml', { env: {} }).checks.length), [1, 0, 0, 0]);
  });

  test('a skipped check (unset URL variable) is reported only by the shard that owns it; notifications may name any check', () => {
    const yaml = (index: number) =>
      `shard: { index: ${index}, count: 4 }\nchecks:\n  - { name: app, kind: http, url: "\${APP_URL}" }\n  - { name: db, kind: tcp, url: "tcp://127.0.0.1:1" }\nnotifications:\n  - { name: hook, kind: webhook, url: "http://127.0.0.1:1/", checks: [app, db] }\n`;
    const skippedBy = [0, 1, 2, 3].filter((i) => parseConfig(yaml(i), 'shard.yaml', { env: {} }).skipped.some((s) => s.name === 'app'));
    assert.deepEqual(skippedBy, [shardOf('app', 4)]);
  });
});
