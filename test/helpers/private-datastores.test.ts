/**
 * The data-store harness is what it claims to be, so a probe test that fails
 * against it fails because of the probe: the TLS redis-server speaks only TLS
 * and checks client certificates, the Sentinels name the master and move it on
 * a failover, the cluster covers every slot, and the ssl=on PostgreSQL refuses
 * unencrypted clients.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { makeCa, makeServerCert } from './certs';
import { parseInfo, startRedisCluster, startSentinelSet, startTlsRedis, withRedis, type RedisClusterSet, type SentinelSet, type TlsRedis } from './private-datastores';
import { startPrivatePostgres, type PrivatePostgres } from './private-services';

describe('startTlsRedis', () => {
  let redis: TlsRedis;
  before(async () => {
    redis = await startTlsRedis({ authClients: 'yes', password: 'harness-pw' });
  });
  after(() => redis?.stop());

  test('TLS with a client certificate: PONG over an encrypted connection', async () => {
    const cipher = await withRedis({ port: redis.port, password: 'harness-pw', tls: redis.tlsOptions() }, async (r) => {
      assert.equal(await r.ping(), 'PONG');
      return (r.stream as import('node:tls').TLSSocket).getCipher().version;
    });
    assert.match(cipher, /^TLSv1\.[23]$/);
  });

  test('no client certificate: the handshake is refused (tls-auth-clients yes)', async () => {
    await assert.rejects(withRedis({ port: redis.port, password: 'harness-pw', tls: { ca: redis.ca.cert } }, (r) => r.ping()));
  });

  test('plaintext RESP on the port gets no PONG', async () => {
    const reply = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: redis.port });
      let text = '';
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('data', (chunk) => (text += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(text));
      setTimeout(() => socket.destroy(), 1000);
    });
    assert.ok(!reply.includes('+PONG'), reply);
  });
});

describe('startSentinelSet', () => {
  let set: SentinelSet;
  before(async () => {
    set = await startSentinelSet({ sentinels: 2, password: 'data-pw', sentinelPassword: 'sentinel-pw' });
  });
  after(() => set?.stop());

  test('every Sentinel names node 0 as master; node 1 replicates it', async () => {
    assert.deepEqual(await set.master(0), { host: '127.0.0.1', port: set.nodes[0]!.port });
    assert.deepEqual(await set.master(1), { host: '127.0.0.1', port: set.nodes[0]!.port });
    const replica = await set.replication(set.nodes[1]!.port);
    assert.deepEqual([replica.role, replica.master_port, replica.master_link_status], ['slave', String(set.nodes[0]!.port), 'up']);
  });

  test('the Sentinels need their password', async () => {
    await assert.rejects(withRedis({ port: set.sentinels[0]!.port }, (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', set.masterName)), /NOAUTH/);
  });

  test('failover() promotes node 1; killMaster() moves the master back to node 0', async () => {
    assert.equal(await set.failover(), set.nodes[1]!.port);
    assert.equal((await set.replication(set.nodes[1]!.port)).role, 'master');
    assert.equal(await set.killMaster(), set.nodes[0]!.port);
    assert.equal(set.nodes[1]!.running, false);
    assert.deepEqual(await set.master(1), { host: '127.0.0.1', port: set.nodes[0]!.port });
  });
});

describe('startRedisCluster', () => {
  let cluster: RedisClusterSet;
  before(async () => {
    cluster = await startRedisCluster();
  });
  after(() => cluster?.stop());

  test('3 masters, cluster_state ok, all 16384 slots served, and a key lives on exactly one node', async () => {
    const info = await cluster.info(2);
    assert.deepEqual([info.cluster_state, info.cluster_slots_ok, info.cluster_size, info.cluster_known_nodes], ['ok', '16384', '3', '3']);
    const owners = [];
    for (let i = 0; i < 3; i++) owners.push(await cluster.command(i, 'SET', 'harness-key', '1').then(() => i, (err: Error) => (/MOVED/.test(err.message) ? -1 : Promise.reject(err))));
    assert.equal(owners.filter((i) => i >= 0).length, 1, `owners ${owners}`);
    const roles = await Promise.all([0, 1, 2].map((i) => withRedis({ port: cluster.nodes[i]!.port }, async (r) => parseInfo(await r.info('replication')).role)));
    assert.deepEqual(roles, ['master', 'master', 'master']);
  });
});

describe('startPrivatePostgres with tls', () => {
  let server: PrivatePostgres;
  let ca: string;
  before(async () => {
    const authority = await makeCa(10, 'PG Test CA');
    const cert = await makeServerCert(authority, 10);
    ca = authority.cert;
    server = await startPrivatePostgres('harness-pw', { tls: { cert: cert.cert, key: cert.key } });
  });
  after(() => server?.stop());

  const client = (ssl: pg.ClientConfig['ssl']) => new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', password: 'harness-pw', database: 'postgres', ssl });

  test('a verified TLS connection is encrypted (pg_stat_ssl)', async () => {
    const c = client({ ca });
    await c.connect();
    try {
      const { rows } = await c.query('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      assert.equal(rows[0].ssl, true);
      assert.match(rows[0].version, /^TLSv1\.[23]$/);
    } finally {
      await c.end();
    }
  });

  test('an unencrypted client is rejected by pg_hba (hostnossl … reject)', async () => {
    await assert.rejects(client(false).connect(), /pg_hba\.conf rejects connection .* no encryption/);
  });
});
