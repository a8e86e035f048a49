/**
 * Deeper redis checks against real servers: `cluster: true` on a real 3-node
 * Redis Cluster (all slots ok; slots taken away; a node killed), `maxMemoryRatio`
 * on a private redis-server whose maxmemory the test moves, and `roundTrip`
 * (its key, its expiry, a write the server refuses, and the cluster case where
 * the key must live on the node the check talks to).
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import type { CheckRunner } from '../../src/health/runner';
import type { RunResult } from '../../src/health/state';
import { parseConfig } from '../../src/probes/registry';
import { evaluateCluster, evaluateMemory, formatBytes } from '../../src/probes/redis-checks';
import { parseInfo, startRedisCluster, withRedis, type RedisClusterSet } from '../helpers/private-datastores';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-services';
import { waitFor } from '../helpers/servers';
import { checkFromYaml, runnerFor } from './support';

const PASSWORD = 'CANARY-REDIS-DEEP-PW-3f9e';
const runners: CheckRunner[] = [];

function redisCheck(url: string, extra: string[], name = 'probe-under-test') {
  const { check, redactor } = checkFromYaml([`kind: redis`, `url: ${url}`, ...extra].join('\n    '), { timeout: '2s' });
  const runner = runnerFor({ ...check, name }, redactor);
  runners.push(runner);
  return runner;
}

after(async () => {
  for (const r of runners.splice(0)) await r.close();
});

describe('cluster: true against a real 3-node Redis Cluster', () => {
  let cluster: RedisClusterSet;
  before(async () => {
    cluster = await startRedisCluster({ nodeTimeoutMs: 1000 });
  });
  after(() => cluster?.stop());

  test('every slot served: success with the cluster summary', async () => {
    const result = await redisCheck(cluster.url(0), ['cluster: true']).run('manual');
    assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: 'PONG, cluster_state ok, 16384/16384 slots ok, 3 master(s) serving slots, 3 node(s) known' });
  });

  test('roundTrip in a cluster: the key lives on the node the check talks to (no MOVED), with its expiry', async () => {
    const result = await redisCheck(cluster.url(1), ['cluster: true', 'roundTrip: true']).run('manual');
    assert.equal(result.ok, true, result.message);
    const base = `otel-health-sidecar:roundtrip:${hostname()}:probe-under-test`;
    const match = new RegExp(`, round trip ok \\((${base.replace(/[.]/g, '\\.')}:\\d+)\\)$`).exec(result.message);
    assert.ok(match, result.message);
    const key = match[1]!;
    const ttl = Number(await cluster.command(1, 'TTL', key));
    assert.ok(ttl > 0 && ttl <= 60, `TTL ${ttl}`);
    // on the other nodes the same key is somebody else's slot
    await assert.rejects(cluster.command(0, 'GET', key), /MOVED/);
  });

  test('slots taken away from a node: cluster_state fail, slot counts in the message; back when they return', async () => {
    const runner = redisCheck(cluster.url(0), ['cluster: true']);
    const owned = ((await cluster.command(0, 'CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][]).find((range) => range[2][1] === cluster.nodes[0]!.port)!;
    const slots = [owned[0], owned[0] + 1, owned[0] + 2];
    await cluster.command(0, 'CLUSTER', 'DELSLOTS', ...slots);
    try {
      const failed = await waitFor<RunResult | undefined>(
        async () => {
          const r = await runner.run('manual');
          return r.ok ? undefined : r;
        },
        { what: 'the probe to see the uncovered slots', timeoutMs: 30_000, intervalMs: 50 },
      );
      assert.equal(failed!.message, `redis 127.0.0.1:${cluster.nodes[0]!.port}: cluster_state fail, 16381/16384 slots assigned, 16381 ok, 3 master(s) serving slots, 3 node(s) known`);
    } finally {
      await cluster.command(0, 'CLUSTER', 'ADDSLOTS', ...slots);
    }
    await waitFor(async () => (await runner.run('manual')).ok, { what: 'the probe to pass once the slots are back', timeoutMs: 30_000, intervalMs: 50 });
  });

  test('a node killed: the surviving node reports its slots in trouble (pfail, then fail) and the probe fails', async () => {
    const runner = redisCheck(cluster.url(0), ['cluster: true']);
    assert.equal((await runner.run('manual')).ok, true);
    await cluster.nodes[2]!.kill('SIGKILL');
    const failed = await waitFor<RunResult | undefined>(
      async () => {
        const r = await runner.run('manual');
        return r.ok ? undefined : r;
      },
      { what: 'the probe to notice the dead node', timeoutMs: 30_000, intervalMs: 50 },
    );
    assert.match(failed!.message, new RegExp(`^redis 127\\.0\\.0\\.1:${cluster.nodes[0]!.port}: cluster_state (ok|fail), 16384/16384 slots assigned, \\d+ ok, \\d+ (pfail|fail), 3 master\\(s\\) serving slots, 3 node\\(s\\) known$`));
  });
});

describe('maxMemoryRatio and roundTrip on a private redis-server', () => {
  let redis: PrivateRedis;
  const admin = <T>(fn: (r: import('ioredis').default) => Promise<T>) => withRedis({ port: redis.port, password: PASSWORD }, fn);
  const usedMemory = () => admin(async (r) => Number(parseInfo(await r.info('memory')).used_memory));
  before(async () => {
    redis = await startPrivateRedis(PASSWORD);
  });
  after(async () => {
    await redis?.stop();
  });

  test('maxMemoryRatio: fine at half of maxmemory, failing above the ratio, not applicable without maxmemory', async (t) => {
    const runner = redisCheck(redis.url(PASSWORD), ['maxMemoryRatio: 0.9']);
    t.after(() => admin((r) => r.config('SET', 'maxmemory', '0')));
    const unlimited = await runner.run('manual');
    assert.equal(unlimited.ok, true);
    assert.match(unlimited.message, /^PONG, memory \d+(\.\d)?[KM]iB used, no maxmemory set \(maxMemoryRatio not applicable\)$/);

    await admin(async (r) => r.config('SET', 'maxmemory', String((await usedMemory()) * 2)));
    const roomy = await runner.run('manual');
    assert.equal(roomy.ok, true, roomy.message);
    // about half: the server's own use moves a little between the test's INFO and the probe's
    assert.match(roomy.message, /^PONG, memory ([3-6]\d)% of maxmemory \(.+ of .+\)$/);

    await admin(async (r) => r.config('SET', 'maxmemory', String(await usedMemory())));
    const tight = await runner.run('manual');
    assert.equal(tight.outcome, 'failure');
    assert.match(tight.message, new RegExp(`^redis 127\\.0\\.0\\.1:${redis.port}: memory (9[1-9]|1\\d\\d)% of maxmemory \\(.+ of .+\\), more than maxMemoryRatio 0\\.9$`));
    assert.ok(!tight.message.includes(PASSWORD));
  });

  test('roundTrip: SET and GET of the documented key, with a 60 s expiry; another check writes another key', async () => {
    const result = await redisCheck(redis.url(PASSWORD), ['roundTrip: true']).run('manual');
    const key = `otel-health-sidecar:roundtrip:${hostname()}:probe-under-test`;
    assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: `PONG, round trip ok (${key})` });
    const ttl = await admin((r) => r.ttl(key));
    assert.ok(ttl > 0 && ttl <= 60, `TTL ${ttl}`);
    const other = await redisCheck(redis.url(PASSWORD), ['roundTrip: true'], 'other-check').run('manual');
    assert.equal(other.message, `PONG, round trip ok (otel-health-sidecar:roundtrip:${hostname()}:other-check)`);
    assert.deepEqual((await admin((r) => r.keys('otel-health-sidecar:roundtrip:*'))).sort(), [key.replace('probe-under-test', 'other-check'), key].sort());
  });

  test('roundTrip: a write the server refuses fails the run with the server\'s reason', async () => {
    await admin((r) => r.config('SET', 'min-replicas-to-write', '1'));
    try {
      const result = await redisCheck(redis.url(PASSWORD), ['roundTrip: true']).run('manual');
      assert.equal(result.outcome, 'failure');
      assert.equal(result.message, `redis 127.0.0.1:${redis.port}: SET otel-health-sidecar:roundtrip:${hostname()}:probe-under-test failed: NOREPLICAS Not enough good replicas to write.`);
    } finally {
      await admin((r) => r.config('SET', 'min-replicas-to-write', '0'));
    }
  });

  test('all of it on one connection: role, memory and round trip in one message', async () => {
    const result = await redisCheck(redis.url(PASSWORD), ['role: master', 'maxMemoryRatio: 0.9', 'roundTrip: true']).run('manual');
    assert.equal(result.ok, true, result.message);
    assert.match(result.message, /^PONG, role master, 0 connected replica\(s\), memory .* used, no maxmemory set \(maxMemoryRatio not applicable\), round trip ok \(otel-health-sidecar:roundtrip:.*:probe-under-test\)$/);
  });
});

describe('pure verdicts', () => {
  test('evaluateCluster', () => {
    const ok = { cluster_state: 'ok', cluster_slots_assigned: '16384', cluster_slots_ok: '16384', cluster_slots_pfail: '0', cluster_slots_fail: '0', cluster_size: '3', cluster_known_nodes: '6' };
    assert.deepEqual(evaluateCluster(ok), { ok: true, message: 'cluster_state ok, 16384/16384 slots ok, 3 master(s) serving slots, 6 node(s) known' });
    assert.deepEqual(evaluateCluster({ ...ok, cluster_slots_ok: '10923', cluster_slots_pfail: '5461' }), {
      ok: false,
      message: 'cluster_state ok, 16384/16384 slots assigned, 10923 ok, 5461 pfail, 3 master(s) serving slots, 6 node(s) known',
    });
    assert.deepEqual(evaluateCluster({}), { ok: false, message: 'CLUSTER INFO has no cluster_state (is cluster-enabled set?)' });
  });

  test('evaluateMemory and formatBytes', () => {
    assert.deepEqual(evaluateMemory({ used_memory: String(9 * 1024 * 1024), maxmemory: String(10 * 1024 * 1024) }, 0.8), {
      ok: false,
      message: 'memory 90% of maxmemory (9.0MiB of 10MiB), more than maxMemoryRatio 0.8',
    });
    assert.deepEqual(evaluateMemory({ used_memory: '1000', maxmemory: '4000' }, 0.8), { ok: true, message: 'memory 25% of maxmemory (1000B of 3.9KiB)' });
    assert.deepEqual([formatBytes(0), formatBytes(1536), formatBytes(20 * 1024 ** 3)], ['0B', '1.5KiB', '20GiB']);
  });
});

test('cluster, roundTrip and maxMemoryRatio go together', () => {
  const config = parseConfig('checks:\n  - { name: c, kind: redis, url: "redis://cache:6379", cluster: true, roundTrip: true, maxMemoryRatio: 0.9 }\n', 'ok.yaml', { env: {} });
  assert.deepEqual([config.checks[0]!.kind, config.checks.length], ['redis', 1]);
});
