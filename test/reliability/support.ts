/**
 * Reliability-suite helpers: server-side connection counts (Redis CLIENT LIST,
 * PostgreSQL pg_stat_activity) by the name each probe gives its connection
 * (`otel-health-sidecar:<check>`), client-side established sockets to a port
 * (`ss`), and a private redis-server that can really be killed and started
 * again on the same port.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import type Redis from 'ioredis';
import type pg from 'pg';
import { REDIS_SERVER_BIN } from '../helpers/private-services';
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
  let child: ChildProcess | undefined;
  const gone = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const c = child;
    child = undefined;
    if (!c || gone(c)) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill(signal);
    await exited;
  };
  const start = async () => {
    if (child && !gone(child)) throw new Error('redis-server already running');
    let stderr = '';
    const c = spawn(REDIS_SERVER_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      cwd: tmpdir(),
    });
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child = c;
    await waitFor(
      async () => {
        if (gone(c)) throw new Error(`redis-server exited (${c.exitCode ?? c.signalCode}): ${stderr}`);
        return ping(port);
      },
      { timeoutMs: 10_000, intervalMs: 25, what: `redis-server on port ${port}` },
    );
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined && !gone(child);
    },
    kill,
    start,
    stop: () => kill('SIGTERM'),
  };
}
