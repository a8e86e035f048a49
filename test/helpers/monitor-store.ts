/**
 * For the monitors API tests (issue 20): a private database per test on the
 * machine's PostgreSQL (CREATE DATABASE with a random name, dropped after),
 * and the compiled CLI run as a monitor with a store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { CLI, ROOT } from './paths';
import { get, request, type Reply } from './http';
import { DATABASE_URL, freePort, waitFor } from './servers';

export interface PrivateDatabase {
  url: string;
  name: string;
  query<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

export async function privateDatabase(base = DATABASE_URL): Promise<PrivateDatabase> {
  const name = `ohs_api_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  pool.on('error', () => undefined);
  return {
    url: url.toString(),
    name,
    query: async (text, values) => (await pool.query(text, values)).rows,
    async drop() {
      await pool.end();
      const admin2 = new pg.Client({ connectionString: base });
      await admin2.connect();
      try {
        await admin2.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin2.end();
      }
    },
  };
}

export interface MonitorProcess {
  port: number;
  /** the config file it runs with (rewrite it and send SIGHUP to reload) */
  file: string;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** What differs between the monitor configs of the tests; `monitorYaml` writes the rest. */
export interface MonitorYamlOptions {
  port: number;
  /** server.auth.keys */
  keys: readonly { name: string; key: string; scopes?: readonly string[] }[];
  /** server.auth.jwt, a YAML flow mapping */
  jwt?: string;
  /** server.overload, a YAML flow mapping */
  overload?: string;
  /** shard, a YAML flow mapping */
  shard?: string;
  /** store.postgres is `${STORE_URL}`; these are the other store settings (false: no store section) */
  store?: Readonly<Record<string, string>> | false;
  /** defaults.interval and .timeout, one attempt a run with a 10 ms backoff; `breaker`, a YAML flow mapping */
  defaults?: { interval: string; timeout: string; breaker?: string };
  /** the file's checks, one YAML flow mapping each */
  checks?: readonly string[];
}

/**
 * A `mode: monitor` config for startMonitor: loopback, details shown, no drain delay, no traces,
 * `store.postgres: ${STORE_URL}` (pass STORE_URL in startMonitor's env).
 */
export function monitorYaml(options: MonitorYamlOptions): string {
  const flow = (fields: Readonly<Record<string, string | undefined>>) =>
    `{ ${Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}: ${value}`)
      .join(', ')} }`;
  const key = (k: MonitorYamlOptions['keys'][number]) => `      - ${flow({ name: k.name, key: JSON.stringify(k.key), scopes: k.scopes && `[${k.scopes.join(', ')}]` })}`;
  const { defaults, store = {} } = options;
  const lines = [
    'mode: monitor',
    'server:',
    `  port: ${options.port}`,
    '  host: 127.0.0.1',
    '  showDetails: always',
    '  drainDelay: 0s',
    ...(options.overload ? [`  overload: ${options.overload}`] : []),
    '  auth:',
    '    keys:',
    ...options.keys.map(key),
    ...(options.jwt ? [`    jwt: ${options.jwt}`] : []),
    'telemetry: { traces: { enabled: false } }',
    ...(options.shard ? [`shard: ${options.shard}`] : []),
    ...(store ? [`store: ${flow({ postgres: '${STORE_URL}', ...store })}`] : []),
    ...(defaults
      ? [`defaults: ${flow({ interval: defaults.interval, timeout: defaults.timeout, retry: '{ attempts: 1, backoff: { initial: 10ms, max: 10ms }, jitter: false }', breaker: defaults.breaker })}`]
      : []),
    ...(options.checks?.length ? ['checks:', ...options.checks.map((check) => `  - ${check}`)] : []),
  ];
  return `${lines.join('\n')}\n`;
}

/** `node dist/cli.js run --config <file>` with the text as its config; resolves once /readyz… answers at all (-/healthy 200). */
export async function startMonitor(configText: (port: number) => string, env: NodeJS.ProcessEnv = {}): Promise<MonitorProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'monitors-api-'));
  const port = await freePort();
  const file = join(dir, 'monitor.yaml');
  writeFileSync(file, configText(port));
  const childEnv: NodeJS.ProcessEnv = { ...process.env, OTEL_TRACES_EXPORTER: 'none', ...env };
  delete childEnv.NODE_OPTIONS;
  if (!('K8S_POD_NAME' in env)) delete childEnv.K8S_POD_NAME;
  const proc = spawn(process.execPath, [CLI, 'run', '--config', file], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`monitor exited with ${proc.exitCode}: ${out.slice(-2000)}`);
        return (await get(port, '/-/healthy').catch(() => ({ status: 0 }))).status === 200 && out.includes('monitor store');
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `monitor on port ${port} ready` },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, file, proc, output: () => out, stop };
}

/** JSON request to the API with a key */
export function api(port: number, method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return request(port, path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(text !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(text !== undefined ? { body: text } : {}),
  });
}

/** A private PostgreSQL (initdb in a temp dir, trust on loopback) that a test can stop and start again on the same port and data. */
export interface RestartablePostgres {
  port: number;
  url: string;
  start(): Promise<void>;
  /** fast shutdown (sessions cut), data kept */
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  const { postgresBinDir, stopChild } = await import('./private-services');
  const { execFile } = await import('node:child_process');
  const { chownSync, chmodSync } = await import('node:fs');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin');
  let ids: { uid?: number; gid?: number } = {};
  if (process.getuid?.() === 0) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    ids = { uid, gid };
  }
  const dir = mkdtempSync(join(tmpdir(), 'store-restart-pg-'));
  if (ids.uid !== undefined) chownSync(dir, ids.uid, ids.gid!);
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' };
  await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '--no-instructions', '-E', 'UTF8', '--locale=C'], { ...ids, env });
  const port = await freePort();
  let child: ChildProcess | undefined;
  let stderr = '';
  const start = async () => {
    child = spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-h', '127.0.0.1', '-c', 'fsync=off', '-c', 'shared_buffers=16MB', '-c', 'max_connections=40'], { ...ids, env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const started = child;
    await waitFor(
      async () => {
        if (started.exitCode !== null) throw new Error(`postgres exited with ${started.exitCode}: ${stderr.slice(-1000)}`);
        await run(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-t', '1']);
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `private PostgreSQL on port ${port}` },
    );
  };
  const stop = async () => {
    if (child) await stopChild(child, 'SIGINT', 5000);
    child = undefined;
  };
  await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
