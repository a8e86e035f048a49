/**
 * Reliability-suite helpers: server-side connection counts (Redis CLIENT LIST,
 * PostgreSQL pg_stat_activity) by the name each probe gives its connection
 * (`otel-health-sidecar:<check>`), client-side established sockets to a port
 * (`ss`), and a private redis-server and a private PostgreSQL cluster that
 * can really be stopped and started again on the same port.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Redis from 'ioredis';
import type pg from 'pg';
import { postgresBinDir, REDIS_SERVER_BIN } from '../helpers/private-services';
import { freePort, waitFor } from '../helpers/servers';

const run = promisify(execFile);

export const connectionName = (check: string) => `otel-health-sidecar:${check}`;

/** Connections named for `check` in CLIENT LIST of the server `admin` talks to. */
export async function redisConnections(admin: Redis, check: string): Promise<number> {
  const list = String(await admin.call('CLIENT', 'LIST'));
  const name = connectionName(check);
  return list.split('\n').filter((line) => line.split(' ').includes(`name=${name}`)).length;
}

/** Backends with application_name = otel-health-sidecar:<check>. */
export async function pgConnections(admin: pg.Client, check: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [connectionName(check)]);
  return rows[0]!.n;
}

/** Established TCP sockets (any local process) whose peer is 127.0.0.1:port. */
export async function establishedTo(port: number): Promise<number> {
  const { stdout } = await run('ss', ['-Htn', 'state', 'established', `dst 127.0.0.1:${port}`]);
  return stdout.split('\n').filter((l) => l.trim() !== '').length;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}

/** A server process that can be killed and started again, the same way, any number of times. */
interface Supervised {
  readonly running: boolean;
  /** signal it (default `defaultSignal`) and resolve once it is gone; SIGKILL after `hardKillMs` if set */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** spawn it and resolve once `ready` says so (it must not be running) */
  start(): Promise<void>;
}

function supervise(options: {
  what: string;
  spawn: () => ChildProcess;
  ready: () => Promise<boolean>;
  defaultSignal: NodeJS.Signals;
  hardKillMs?: number;
  timeoutMs: number;
  intervalMs: number;
}): Supervised {
  let child: ChildProcess | undefined;
  const gone = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;
  return {
    get running() {
      return child !== undefined && !gone(child);
    },
    async kill(signal = options.defaultSignal) {
      const c = child;
      child = undefined;
      if (!c || gone(c)) return;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill(signal);
      const hard = options.hardKillMs === undefined ? undefined : setTimeout(() => c.kill('SIGKILL'), options.hardKillMs);
      await exited;
      clearTimeout(hard);
    },
    async start() {
      if (child && !gone(child)) throw new Error(`${options.what} already running`);
      let stderr = '';
      const c = options.spawn();
      c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child = c;
      await waitFor(
        async () => {
          if (gone(c)) throw new Error(`${options.what} exited (${c.exitCode ?? c.signalCode}): ${stderr}`);
          return options.ready();
        },
        { timeoutMs: options.timeoutMs, intervalMs: options.intervalMs, what: `${options.what} on its port` },
      );
    },
  };
}

export interface RestartableRedis {
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  /** SIGKILL (a crash: no goodbye to clients) or SIGTERM; resolves once the process is gone */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** start redis-server again on the same port; resolves once it answers PING */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A private redis-server (no password, no persistence) on a free loopback port. */
export async function startRestartableRedis(): Promise<RestartableRedis> {
  const port = await freePort();
  const server = supervise({
    what: 'redis-server',
    spawn: () =>
      spawn(REDIS_SERVER_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        cwd: tmpdir(),
      }),
    ready: () => ping(port),
    defaultSignal: 'SIGKILL',
    timeoutMs: 30_000,
    intervalMs: 25,
  });
  await server.start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return server.running;
    },
    kill: (signal) => server.kill(signal),
    start: () => server.start(),
    stop: () => server.kill('SIGTERM'),
  };
}

export interface RestartablePostgres {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust auth) */
  readonly url: string;
  readonly running: boolean;
  /** SIGINT = fast shutdown (sessions terminated, like a service restart); SIGQUIT = immediate (crash recovery on start) */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** start the same cluster again on the same port; resolves once it accepts connections */
  start(): Promise<void>;
  /** stop and remove the cluster */
  stop(): Promise<void>;
}

async function osIds(user: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const uid = Number((await run('id', ['-u', user])).stdout.trim());
    const gid = Number((await run('id', ['-g', user])).stdout.trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/**
 * A private PostgreSQL cluster (trust auth on 127.0.0.1, temp dir) that can be
 * stopped and started again on the same port — the shared PostgreSQL service
 * is never restarted. As root the cluster belongs to the `postgres` OS user
 * (initdb refuses to run as root).
 */
export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin');
  const ids = process.getuid?.() === 0 ? await osIds('postgres') : undefined;
  if (process.getuid?.() === 0 && !ids) throw new Error('running as root and there is no postgres OS user to own the cluster');
  const dir = mkdtempSync(join(tmpdir(), 'reliability-pg-'));
  if (ids) chownSync(dir, ids.uid, ids.gid);
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' };
  const asOwner = ids ? { uid: ids.uid, gid: ids.gid } : {};
  try {
    await new Promise<void>((resolve, reject) =>
      execFile(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '--no-instructions', '-E', 'UTF8', '--locale=C'], { ...asOwner, env }, (err, _o, stderr) =>
        err ? reject(new Error(`initdb failed: ${stderr || err.message}`)) : resolve(),
      ),
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const port = await freePort();
  const server = supervise({
    what: 'private PostgreSQL',
    spawn: () =>
      spawn(
        join(bin, 'postgres'),
        ['-D', data, '-p', String(port), '-k', dir, '-h', '127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'shared_buffers=16MB', '-c', 'max_connections=20'],
        { ...asOwner, stdio: ['ignore', 'ignore', 'pipe'], env },
      ),
    ready: async () => {
      await run(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-t', '1']);
      return true;
    },
    defaultSignal: 'SIGINT',
    hardKillMs: 10_000,
    timeoutMs: 30_000,
    intervalMs: 50,
  });
  try {
    await server.start();
  } catch (err) {
    await server.kill('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    get running() {
      return server.running;
    },
    kill: (signal) => server.kill(signal),
    start: () => server.start(),
    async stop() {
      await server.kill('SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
