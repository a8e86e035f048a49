/**
 * Real data-store topologies for the deeper redis/postgres checks, each on free
 * loopback ports, in a temp dir, removed by stop():
 *  - startTlsRedis: redis-server speaking only TLS (`--port 0 --tls-port P`),
 *    openssl-made CA, server and client certificates, `--tls-auth-clients`
 *    yes | no | optional;
 *  - startSentinelSet: a primary, a replica of it and 1..n Sentinels that
 *    monitor them, with a failover to trigger (SENTINEL FAILOVER) or to
 *    provoke (kill the primary);
 *  - startRedisCluster: an n-node Redis Cluster (`--cluster-enabled yes`,
 *    `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`).
 * (PostgreSQL with ssl=on: startPrivatePostgres(password, { tls }) in
 * private-services.ts.)
 * Every start waits for the event that proves readiness (PING answered, the
 * replica's link up, the Sentinels seeing the replica and each other,
 * cluster_state:ok on every node); nothing sleeps a fixed time.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis, { type RedisOptions } from 'ioredis';
import { makeCa, makeClientCert, makeServerCert, type Pem } from './certs';
import { REDIS_SERVER_BIN, stopChild } from './private-services';
import { freePort, waitFor } from './servers';

const run = promisify(execFile);
export const REDIS_CLI_BIN = '/usr/bin/redis-cli';
const HOST = '127.0.0.1';

/** INFO / CLUSTER INFO text → key/value pairs. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const at = line.indexOf(':');
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return out;
}

/** One short-lived admin connection: run `fn`, then disconnect. No retries, no queue. */
export async function withRedis<T>(options: RedisOptions & { port: number }, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: HOST, lazyConnect: true, enableReadyCheck: false, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 2000, commandTimeout: 2000, ...options });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** A redis-server process (any mode) that a test can kill like a crash. */
export interface RedisProcess {
  readonly port: number;
  readonly running: boolean;
  /** everything it logged (redis logs to stdout) */
  log(): string;
  /** signal it (default SIGKILL: a crash, no goodbye to clients) and resolve once it is gone */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

async function startRedisProcess(what: string, port: number, args: string[], cwd: string, ready: () => Promise<boolean>): Promise<RedisProcess> {
  const child: ChildProcess = spawn(REDIS_SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const handle: RedisProcess = {
    port,
    get running() {
      return !gone();
    },
    log: () => output,
    kill: (signal = 'SIGKILL') => stopChild(child, signal, 3000),
  };
  try {
    await waitFor(
      async () => {
        if (gone()) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}): ${output.slice(-2000)}`);
        return ready();
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `${what} on port ${port}` },
    );
  } catch (err) {
    await handle.kill();
    throw err;
  }
  return handle;
}

const NO_PERSISTENCE = ['--save', '', '--appendonly', 'no'];

// ---------------------------------------------------------------- TLS

export interface TlsRedis {
  /** the TLS port (there is no plaintext port) */
  port: number;
  ca: Pem;
  server: Pem;
  /** a client certificate the server accepts (signed by `ca`) */
  client: Pem;
  /** rediss://[:PASSWORD@]127.0.0.1:PORT */
  url(password?: string): string;
  /** ioredis `tls` options that verify the server and present the client certificate */
  tlsOptions(): { ca: string; cert: string; key: string };
  process: RedisProcess;
  stop(): Promise<void>;
}

export interface TlsRedisOptions {
  /** `--tls-auth-clients`: yes (a client certificate is required), no, optional (checked when sent). Default yes. */
  authClients?: 'yes' | 'no' | 'optional';
  password?: string;
  ca?: Pem;
  /** the server's certificate (default: one for localhost/127.0.0.1 from `ca`, valid 30 days) */
  server?: Pem;
}

/** redis-server listening only on a TLS port, certificates made by openssl. */
export async function startTlsRedis(options: TlsRedisOptions = {}): Promise<TlsRedis> {
  const ca = options.ca ?? (await makeCa(30, 'Redis Test CA'));
  const server = options.server ?? (await makeServerCert(ca, 30));
  const client = await makeClientCert(ca, 30, 'redis-client');
  const dir = mkdtempSync(join(tmpdir(), 'test-redis-tls-'));
  writeFileSync(join(dir, 'ca.pem'), ca.cert);
  writeFileSync(join(dir, 'server.pem'), server.cert);
  writeFileSync(join(dir, 'server.key'), server.key, { mode: 0o600 });
  const port = await freePort();
  const tls = { ca: ca.cert, cert: client.cert, key: client.key };
  const args = [
    '--port', '0', '--tls-port', String(port), '--bind', HOST, ...NO_PERSISTENCE,
    '--tls-cert-file', join(dir, 'server.pem'), '--tls-key-file', join(dir, 'server.key'), '--tls-ca-cert-file', join(dir, 'ca.pem'),
    '--tls-auth-clients', options.authClients ?? 'yes',
    ...(options.password === undefined ? [] : ['--requirepass', options.password]),
  ];
  let processHandle: RedisProcess;
  try {
    // ready = a PING over TLS answered (the name is not checked here: `server` may be made for another name)
    const ready = { ...tls, checkServerIdentity: () => undefined };
    processHandle = await startRedisProcess('redis-server (TLS)', port, args, dir, () =>
      withRedis({ port, tls: ready, password: options.password }, async (redis) => (await redis.ping()) === 'PONG'),
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    ca,
    server,
    client,
    url: (password) => `rediss://${password === undefined ? '' : `:${encodeURIComponent(password)}@`}${HOST}:${port}`,
    tlsOptions: () => tls,
    process: processHandle,
    async stop() {
      await processHandle.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- Sentinel

export interface SentinelSet {
  masterName: string;
  /** data nodes: [0] started as the primary, [1] as its replica */
  nodes: RedisProcess[];
  sentinels: RedisProcess[];
  /** "127.0.0.1:PORT" of every Sentinel, in start order */
  sentinelAddresses(): string[];
  /** the master as Sentinel `index` names it (SENTINEL GET-MASTER-ADDR-BY-NAME) */
  master(index?: number): Promise<{ host: string; port: number }>;
  /** INFO replication of a data node */
  replication(port: number): Promise<Record<string, string>>;
  /**
   * SENTINEL FAILOVER (no agreement needed, the current master is healthy);
   * resolves with the new master's port once every Sentinel names it and it
   * reports role:master. The old master keeps saying role:master until the
   * Sentinel's next INFO round reconfigures it (up to 10 s later): a client
   * that trusts the old address rather than asking the Sentinels is fooled
   * in that window.
   */
  failover(): Promise<number>;
  /** SIGKILL the current master; resolves with the new master's port once the Sentinels promoted the replica. */
  killMaster(): Promise<number>;
  stop(): Promise<void>;
}

export interface SentinelSetOptions {
  masterName?: string;
  /** requirepass / masterauth on the data nodes (Sentinel gets it as auth-pass) */
  password?: string;
  /** requirepass on the Sentinels (and sentinel-pass between them) */
  sentinelPassword?: string;
  /** how many Sentinels (quorum 1); default 1 */
  sentinels?: number;
  /** down-after-milliseconds: how soon a dead master is noticed; default 1000 */
  downAfterMs?: number;
}

function pairs(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const list = Array.isArray(reply) ? (reply as unknown[]) : [];
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = String(list[i + 1]);
  return out;
}

/** A primary, its replica and Sentinels that monitor them (quorum 1). */
export async function startSentinelSet(options: SentinelSetOptions = {}): Promise<SentinelSet> {
  const masterName = options.masterName ?? 'mymaster';
  const count = options.sentinels ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'test-redis-sentinel-'));
  const auth = options.password === undefined ? [] : ['--requirepass', options.password, '--masterauth', options.password];
  // a full sync starts at once (the default waits 5 s for more replicas to join it)
  const dataNode = (port: number) => ['--port', String(port), '--bind', HOST, ...NO_PERSISTENCE, ...auth, '--repl-diskless-sync-delay', '0'];
  const nodes: RedisProcess[] = [];
  const sentinels: RedisProcess[] = [];
  const dataClient = (port: number) => ({ port, password: options.password });
  const sentinelClient = (port: number) => ({ port, password: options.sentinelPassword });
  const replication = (port: number) => withRedis(dataClient(port), async (redis) => parseInfo(await redis.info('replication')));
  const stop = async () => {
    for (const p of [...sentinels, ...nodes]) await p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const primaryPort = await freePort();
    nodes.push(
      await startRedisProcess('redis primary', primaryPort, dataNode(primaryPort), dir, () =>
        withRedis(dataClient(primaryPort), async (r) => (await r.ping()) === 'PONG'),
      ),
    );
    const replicaPort = await freePort();
    // the replica of a primary that pings it every second, so its link state is fresh
    nodes.push(
      await startRedisProcess(
        'redis replica',
        replicaPort,
        [...dataNode(replicaPort), '--replicaof', HOST, String(primaryPort), '--repl-ping-replica-period', '1'],
        dir,
        async () => (await replication(replicaPort)).master_link_status === 'up',
      ),
    );
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          `bind ${HOST}`,
          `dir ${dir}`,
          `sentinel monitor ${masterName} ${HOST} ${primaryPort} 1`,
          `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${masterName} 10000`,
          ...(options.password === undefined ? [] : [`sentinel auth-pass ${masterName} ${options.password}`]),
          ...(options.sentinelPassword === undefined ? [] : [`requirepass ${options.sentinelPassword}`, `sentinel sentinel-pass ${options.sentinelPassword}`]),
          '',
        ].join('\n'),
      );
      sentinels.push(await startRedisProcess('redis-sentinel', port, [conf, '--sentinel'], dir, () => withRedis(sentinelClient(port), async (r) => (await r.ping()) === 'PONG')));
    }
    // ready when every Sentinel sees the replica with a working link and knows the other Sentinels
    await waitFor(
      async () => {
        for (const s of sentinels) {
          const ok = await withRedis(sentinelClient(s.port), async (r) => {
            const master = pairs(await r.call('SENTINEL', 'MASTER', masterName));
            const replicas = ((await r.call('SENTINEL', 'REPLICAS', masterName)) as unknown[]).map(pairs);
            return (
              Number(master['num-other-sentinels']) === count - 1 &&
              replicas.some((x) => x.port === String(replicaPort) && x['master-link-status'] === 'ok' && !/s_down|disconnected/.test(x.flags ?? ''))
            );
          });
          if (!ok) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'every Sentinel to see the replica and the other Sentinels' },
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const master = async (index = 0) => {
    const reply = (await withRedis(sentinelClient(sentinels[index]!.port), (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName))) as string[] | null;
    if (!reply) throw new Error(`Sentinel ${index} does not know ${masterName}`);
    return { host: reply[0]!, port: Number(reply[1]) };
  };
  /** every Sentinel names `port`, and that node says role:master */
  const promoted = async (port: number) => {
    for (let i = 0; i < sentinels.length; i++) if (!sentinels[i]!.running || (await master(i)).port !== port) return false;
    return (await replication(port)).role === 'master';
  };
  const other = (port: number) => nodes.find((n) => n.port !== port)!.port;

  return {
    masterName,
    nodes,
    sentinels,
    sentinelAddresses: () => sentinels.map((s) => `${HOST}:${s.port}`),
    master,
    replication,
    async failover() {
      const before = (await master()).port;
      const after = other(before);
      // NOGOODSLAVE until the Sentinel has fresh INFO from the replica: ask again until it is accepted
      await waitFor(async () => (await withRedis(sentinelClient(sentinels[0]!.port), (r) => r.call('SENTINEL', 'FAILOVER', masterName))) === 'OK', {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: 'SENTINEL FAILOVER accepted',
      });
      await waitFor(() => promoted(after), { timeoutMs: 30_000, intervalMs: 100, what: `failover from ${before} to ${after}` });
      return after;
    },
    async killMaster() {
      const before = (await master()).port;
      const after = other(before);
      await nodes.find((n) => n.port === before)!.kill('SIGKILL');
      await waitFor(() => promoted(after), { timeoutMs: 60_000, intervalMs: 100, what: `the Sentinels to promote ${after} after ${before} died` });
      return after;
    },
    stop,
  };
}

// ---------------------------------------------------------------- Cluster

export interface RedisClusterSet {
  /** the nodes, each a master owning about a third of the slots */
  nodes: RedisProcess[];
  /** redis://127.0.0.1:PORT of node `index` */
  url(index?: number): string;
  /** CLUSTER INFO of node `index` */
  info(index?: number): Promise<Record<string, string>>;
  /** run a command on node `index` */
  command(index: number, ...args: (string | number)[]): Promise<unknown>;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** default 3 (the smallest cluster redis-cli creates) */
  size?: number;
  /** cluster-node-timeout: how soon a dead node is flagged; default 1000 */
  nodeTimeoutMs?: number;
}

/** A Redis Cluster of masters on loopback ports (client and bus ports both chosen free). */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterSet> {
  const size = options.size ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'test-redis-cluster-'));
  const nodes: RedisProcess[] = [];
  const info = (index = 0) => withRedis({ port: nodes[index]!.port }, async (r) => parseInfo(String(await r.call('CLUSTER', 'INFO'))));
  const stop = async () => {
    for (const n of nodes) await n.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < size; i++) {
      const port = await freePort();
      const busPort = await freePort();
      nodes.push(
        await startRedisProcess(
          'redis cluster node',
          port,
          [
            '--port', String(port), '--bind', HOST, ...NO_PERSISTENCE,
            '--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-config-file', join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 1000),
          ],
          dir,
          () => withRedis({ port }, async (r) => (await r.ping()) === 'PONG'),
        ),
      );
    }
    await run(REDIS_CLI_BIN, ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    await waitFor(
      async () => {
        for (let i = 0; i < size; i++) {
          const state = await info(i);
          if (state.cluster_state !== 'ok' || state.cluster_slots_ok !== '16384' || state.cluster_known_nodes !== String(size)) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `cluster_state:ok on all ${size} nodes` },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes,
    url: (index = 0) => `redis://${HOST}:${nodes[index]!.port}`,
    info,
    command: (index, ...args) => withRedis({ port: nodes[index]!.port }, (r) => r.call(String(args[0]), ...args.slice(1).map(String))),
    stop,
  };
}
