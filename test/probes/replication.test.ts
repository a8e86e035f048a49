/**
 * Replication-aware redis and postgres checks.
 *
 * Redis: two private redis-servers started here (a primary and a replica of
 * it, so the shared Redis is untouched): roles, lag while the primary is
 * frozen (SIGSTOP), recovery (SIGCONT), master link down when the primary
 * exits. PostgreSQL: the real primary (pg_is_in_recovery() = false) for
 * expectPrimary; standby behaviour on the pure evaluation of the query row.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import Redis from 'ioredis';
import { parseConfig } from '../../src/probes/registry';
import { ConfigError } from '../../src/errors';
import type { CheckRunner } from '../../src/health/runner';
import { evaluatePostgresReplication, evaluateRedisReplication, parseRedisInfo } from '../../src/probes/replication';
import { REDIS_SERVER_BIN } from '../helpers/private-services';
import { DATABASE_URL, freePort, hostPort, waitFor } from '../helpers/servers';
import { checkFromYaml, runnerFor, type CheckOptions } from './support';

interface RedisProcess {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startRedis(extra: string[]): Promise<RedisProcess> {
  const port = await freePort();
  const child = spawn(REDIS_SERVER_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], { stdio: 'ignore' });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  };
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  probe.on('error', () => undefined);
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        if (probe.status !== 'ready') await probe.connect().catch(() => undefined);
        return (await probe.ping()) === 'PONG';
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `redis-server on ${port}` },
    );
  } catch (err) {
    await stop();
    throw err;
  } finally {
    probe.disconnect();
  }
  return { port, child, stop };
}

async function replicationInfo(port: number): Promise<Record<string, string>> {
  const redis = new Redis({ port, host: '127.0.0.1', retryStrategy: () => null, maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  try {
    return parseRedisInfo(await redis.info('replication'));
  } finally {
    redis.disconnect();
  }
}

describe('redis replication checks against a private primary and its replica', () => {
  let primary: RedisProcess;
  let replica: RedisProcess;
  const runners: CheckRunner[] = [];

  function run(port: number, lines: string[], options: CheckOptions = {}) {
    const { check, redactor } = checkFromYaml(['kind: redis', `url: redis://127.0.0.1:${port}`, ...lines].join('\n    '), options);
    const r = runnerFor(check, redactor);
    runners.push(r);
    return r;
  }

  before(async () => {
    // the primary pings its replicas every second, so an idle replica's last-I/O age stays ~0-1 s
    primary = await startRedis(['--repl-ping-replica-period', '1']);
    replica = await startRedis(['--replicaof', '127.0.0.1', String(primary.port)]);
    await waitFor(async () => (await replicationInfo(replica.port)).master_link_status === 'up', { timeoutMs: 30_000, what: 'replica link up' });
  });

  after(async () => {
    for (const r of runners) await r.close();
    await replica?.stop();
    await primary?.stop();
  });

  test('role master on the primary, role replica on the replica: success with the whole message', async () => {
    const onPrimary = await run(primary.port, ['role: master']).run('manual');
    assert.deepEqual({ ok: onPrimary.ok, message: onPrimary.message }, { ok: true, message: 'PONG, role master, 1 connected replica(s)' });
    const onReplica = await run(replica.port, ['role: replica', 'maxReplicationLagSeconds: 5']).run('manual');
    assert.equal(onReplica.ok, true, onReplica.message);
    assert.match(onReplica.message, new RegExp(`^PONG, role replica of 127\\.0\\.0\\.1:${primary.port}, master link up, last I/O from the master [0-5]s ago$`));
  });

  test('the wrong role fails and says which role the server has', async () => {
    const onPrimary = await run(primary.port, ['role: replica']).run('manual');
    assert.deepEqual(
      { ok: onPrimary.ok, outcome: onPrimary.outcome, message: onPrimary.message },
      { ok: false, outcome: 'failure', message: `redis 127.0.0.1:${primary.port}: role master, expected replica` },
    );
    const onReplica = await run(replica.port, ['role: master']).run('manual');
    assert.deepEqual({ ok: onReplica.ok, message: onReplica.message }, { ok: false, message: `redis 127.0.0.1:${replica.port}: role replica (of 127.0.0.1:${primary.port}), expected master` });
  });

  test('lag: a frozen primary makes the replica fail maxReplicationLagSeconds; it recovers when the primary resumes', async () => {
    const r = run(replica.port, ['maxReplicationLagSeconds: 2']);
    assert.equal((await r.run('manual')).ok, true);
    primary.child.kill('SIGSTOP');
    try {
      await waitFor(async () => Number((await replicationInfo(replica.port)).master_last_io_seconds_ago) > 2, { timeoutMs: 30_000, intervalMs: 200, what: 'replica lag above 2s' });
      const lagging = await r.run('manual');
      assert.equal(lagging.ok, false);
      assert.equal(lagging.outcome, 'failure');
      assert.match(
        lagging.message,
        new RegExp(`^redis 127\\.0\\.0\\.1:${replica.port}: role replica of 127\\.0\\.0\\.1:${primary.port}, master link up, last I/O from the master \\d+s ago, more than maxReplicationLagSeconds 2$`),
      );
    } finally {
      primary.child.kill('SIGCONT');
    }
    await waitFor(async () => (await r.run('manual')).ok, { timeoutMs: 30_000, intervalMs: 200, what: 'replica check passes again' });
  });

  test('master link down (the primary exits): the replica fails even without a lag limit when role replica is required', async () => {
    const r = run(replica.port, ['role: replica']);
    assert.equal((await r.run('manual')).ok, true);
    await primary.stop();
    await waitFor(async () => (await replicationInfo(replica.port)).master_link_status === 'down', { timeoutMs: 30_000, what: 'replica link down' });
    const down = await r.run('manual');
    assert.equal(down.ok, false);
    assert.match(down.message, new RegExp(`^redis 127\\.0\\.0\\.1:${replica.port}: role replica of 127\\.0\\.0\\.1:${primary.port}, master link down( for \\d+s)?$`));
  });

  test('pure evaluation of INFO replication', () => {
    const info = parseRedisInfo('# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:7\r\n');
    assert.deepEqual(info, { role: 'slave', master_host: '10.0.0.1', master_port: '6379', master_link_status: 'up', master_last_io_seconds_ago: '7' });
    assert.deepEqual(evaluateRedisReplication(info, {}), { ok: true, message: 'role replica of 10.0.0.1:6379, master link up, last I/O from the master 7s ago' });
    assert.deepEqual(evaluateRedisReplication(info, { maxReplicationLagSeconds: 7 }).ok, true);
    assert.deepEqual(evaluateRedisReplication(info, { maxReplicationLagSeconds: 6 }), {
      ok: false,
      message: 'role replica of 10.0.0.1:6379, master link up, last I/O from the master 7s ago, more than maxReplicationLagSeconds 6',
    });
    assert.deepEqual(evaluateRedisReplication({ ...info, master_link_status: 'down', master_link_down_since_seconds: '12' }, {}), {
      ok: false,
      message: 'role replica of 10.0.0.1:6379, master link down for 12s',
    });
    assert.deepEqual(evaluateRedisReplication({}, {}), { ok: false, message: 'INFO replication has no role (got "")' });
  });
});

describe('postgres replication checks', () => {
  const runners: CheckRunner[] = [];
  const { host, port } = hostPort(DATABASE_URL);

  function run(lines: string[]) {
    const { check, redactor } = checkFromYaml(['kind: postgres', `url: ${DATABASE_URL}`, ...lines].join('\n    '));
    const r = runnerFor(check, redactor);
    runners.push(r);
    return r;
  }

  after(async () => {
    for (const r of runners) await r.close();
  });

  test('the real primary: expectPrimary true passes, expectPrimary false fails, a lag limit alone passes (no lag on a primary)', async () => {
    const primary = await run(['expectPrimary: true']).run('manual');
    assert.deepEqual({ ok: primary.ok, message: primary.message }, { ok: true, message: 'SELECT 1: 1 row(s); primary' });
    const standby = await run(['expectPrimary: false']).run('manual');
    assert.deepEqual(
      { ok: standby.ok, outcome: standby.outcome, message: standby.message },
      { ok: false, outcome: 'failure', message: `postgres ${host}:${port}: primary (pg_is_in_recovery() = false), expected a standby` },
    );
    const lagOnly = await run(['maxReplicationLagSeconds: 5']).run('manual');
    assert.deepEqual({ ok: lagOnly.ok, message: lagOnly.message }, { ok: true, message: 'SELECT 1: 1 row(s); primary' });
  });

  test('standby behaviour (pure evaluation of the replication row)', () => {
    const cases: [Parameters<typeof evaluatePostgresReplication>[0], Parameters<typeof evaluatePostgresReplication>[1], ReturnType<typeof evaluatePostgresReplication>][] = [
      [{ inRecovery: true, lagSeconds: 0 }, { expectPrimary: false }, { ok: true, message: 'standby, replay lag 0s' }],
      [{ inRecovery: true, lagSeconds: 0.42 }, {}, { ok: true, message: 'standby, replay lag 0.4s' }],
      [{ inRecovery: true, lagSeconds: null }, {}, { ok: true, message: 'standby' }],
      [{ inRecovery: true, lagSeconds: 1 }, { expectPrimary: true }, { ok: false, message: 'standby (pg_is_in_recovery() = true), expected the primary' }],
      [{ inRecovery: true, lagSeconds: 30 }, { maxReplicationLagSeconds: 10 }, { ok: false, message: 'standby, replay lag 30s, more than maxReplicationLagSeconds 10' }],
      [{ inRecovery: true, lagSeconds: 10 }, { expectPrimary: false, maxReplicationLagSeconds: 10 }, { ok: true, message: 'standby, replay lag 10s' }],
      [{ inRecovery: true, lagSeconds: null }, { maxReplicationLagSeconds: 10 }, { ok: false, message: 'standby, replay lag unknown (no transaction replayed yet)' }],
      [{ inRecovery: false, lagSeconds: null }, { maxReplicationLagSeconds: 10 }, { ok: true, message: 'primary' }],
    ];
    for (const [row, options, expected] of cases) assert.deepEqual(evaluatePostgresReplication(row, options), expected, JSON.stringify({ row, options }));
  });
});

describe('replication options in the config', () => {
  test('a lag limit contradicting the required role is an error at its place', () => {
    const text = [
      'checks:',
      '  - name: cache',
      '    kind: redis',
      '    url: redis://127.0.0.1:6379',
      '    role: master',
      '    maxReplicationLagSeconds: 5',
      '  - name: db',
      '    kind: postgres',
      '    url: postgres://127.0.0.1/x',
      '    expectPrimary: true',
      '    maxReplicationLagSeconds: 5',
      '  - name: cache2',
      '    kind: redis',
      '    url: redis://127.0.0.1:6379',
      '    role: primary',
      '',
    ].join('\n');
    assert.throws(
      () => parseConfig(text, 'r.yaml', { env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.message.split('\n').map((line) => line.replace(/ \(got .*\)$/, '')), [
          'r.yaml:6:31 checks[0].maxReplicationLagSeconds: applies only to a replica (role: master has no replication lag)',
          'r.yaml:11:31 checks[1].maxReplicationLagSeconds: applies only to a standby (expectPrimary: true has no replication lag)',
          'r.yaml:15:11 checks[2].role: must be one of master, replica',
        ]);
        return true;
      },
    );
  });
});
