/**
 * Private, throw-away instances of real services for tests that need something
 * the shared ones cannot give (a password-protected Redis, a PostgreSQL that
 * demands a password, a port that drops SYNs, a self-signed certificate).
 * Everything runs on 127.0.0.1 on a free port and is removed by stop().
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from './servers';

const run = promisify(execFile);

/** Exit code / signal of a child, or a promise of it. */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Signal a child and resolve once it is gone (SIGKILL after `graceMs`). */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
}

/** Send raw bytes to host:port and collect the reply until `done(reply)` or close. */
function exchange(port: number, payload: string, done: (reply: string) => boolean, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const timer = setTimeout(() => finish(new Error(`no reply from 127.0.0.1:${port}`)), timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply);
    };
    socket.setEncoding('latin1');
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (done(reply)) finish();
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(done(reply) ? undefined : new Error(`connection closed, reply ${JSON.stringify(reply)}`)));
  });
}

// ---------------------------------------------------------------- Redis

export interface PrivateRedis {
  port: number;
  /** redis://:PASSWORD@127.0.0.1:PORT */
  url(password: string): string;
  stop(): Promise<void>;
}

export const REDIS_SERVER_BIN = '/usr/bin/redis-server';

/** A redis-server with `requirepass`, no persistence, on a free loopback port. */
export async function startPrivateRedis(password: string): Promise<PrivateRedis> {
  const port = await freePort();
  const child = spawn(REDIS_SERVER_BIN, ['--requirepass', password, '--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: tmpdir(), // never leave a dump.rdb in the repository
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const stop = () => stopChild(child, 'SIGTERM', 3000);
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${stderr}`);
        const reply = await exchange(port, `AUTH ${password}\r\nPING\r\n`, (r) => r.includes('+PONG') || r.startsWith('-'));
        return reply.includes('+PONG');
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `private redis-server on port ${port}` },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, url: (pw) => `redis://:${encodeURIComponent(pw)}@127.0.0.1:${port}`, stop };
}

// ---------------------------------------------------------------- PostgreSQL

export interface PrivatePostgres {
  port: number;
  /** postgres://USER:PASSWORD@127.0.0.1:PORT/postgres */
  url(user: string, password: string): string;
  /** what the server logged on stderr so far (errors such as "canceling statement due to statement timeout") */
  log(): string;
  stop(): Promise<void>;
}

export interface PrivatePostgresOptions {
  /**
   * ssl=on with this server certificate (ssl_cert_file/ssl_key_file); `ca`
   * (ssl_ca_file) is what client certificates are checked against. Unless
   * `hba` says otherwise, TCP clients must then use TLS: `hostssl … scram-sha-256`,
   * `hostnossl … reject`.
   */
  tls?: { cert: string; key: string; ca?: string };
  /** pg_hba.conf lines replacing the default (scram-sha-256 for every connection) */
  hba?: string[];
  /** extra `-c name=value` settings */
  settings?: Record<string, string>;
}

/** Directory with initdb/pg_ctl/postgres of the newest installed PostgreSQL, if any. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

async function osUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const { stdout: uid } = await run('id', ['-u', name]);
    const { stdout: gid } = await run('id', ['-g', name]);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  } catch {
    return undefined;
  }
}

/**
 * A PostgreSQL cluster in a temp dir whose superuser `postgres` needs
 * `password` (scram-sha-256 for every connection), optionally with ssl=on
 * (see PrivatePostgresOptions). initdb refuses to run as root, so as root the
 * cluster belongs to the `postgres` OS user.
 */
export async function startPrivatePostgres(password: string, options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin');
  const asUser = process.getuid?.() === 0 ? await osUser('postgres') : undefined;
  if (process.getuid?.() === 0 && !asUser) throw new Error('running as root and there is no postgres OS user to own the cluster');
  const dir = mkdtempSync(join(tmpdir(), 'probe-test-pg-'));
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (asUser) {
    chownSync(dir, asUser.uid, asUser.gid);
    chownSync(pwfile, asUser.uid, asUser.gid);
  }
  chmodSync(dir, 0o700);
  const ids = asUser ? { uid: asUser.uid, gid: asUser.gid } : {};
  const cleanupDir = () => rmSync(dir, { recursive: true, force: true });
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(
        join(bin, 'initdb'),
        ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '--no-sync', '--no-instructions', '-E', 'UTF8', '--locale=C'],
        { ...ids, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } },
        (err, _stdout, stderr) => (err ? reject(new Error(`initdb failed: ${stderr || err.message}`)) : resolve()),
      );
    });
  } catch (err) {
    cleanupDir();
    throw err;
  }
  rmSync(pwfile, { force: true });
  /** a file in the data directory that only the server's OS user may read */
  const privateFile = (name: string, text: string) => {
    writeFileSync(join(data, name), text, { mode: 0o600 });
    if (asUser) chownSync(join(data, name), asUser.uid, asUser.gid);
  };
  const settings: Record<string, string> = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', shared_buffers: '16MB', max_connections: '40' };
  if (options.tls) {
    privateFile('server.crt', options.tls.cert);
    privateFile('server.key', options.tls.key);
    Object.assign(settings, { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' });
    if (options.tls.ca !== undefined) {
      privateFile('root.crt', options.tls.ca);
      settings.ssl_ca_file = 'root.crt';
    }
  }
  const hba = options.hba ?? (options.tls ? ['local all all scram-sha-256', 'hostssl all all 127.0.0.1/32 scram-sha-256', 'hostnossl all all 127.0.0.1/32 reject'] : undefined);
  if (hba) privateFile('pg_hba.conf', `${hba.join('\n')}\n`);
  Object.assign(settings, options.settings);
  const port = await freePort();
  const child = spawn(
    join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-k', dir, '-h', '127.0.0.1', ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`])],
    { ...ids, stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const stop = async () => {
    // SIGINT = fast shutdown (aborts sessions); SIGQUIT if it lingers
    await stopChild(child, 'SIGINT', 5000);
    cleanupDir();
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}: ${stderr}`);
        await run(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-t', '1']);
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `private PostgreSQL on port ${port}` },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    port,
    url: (user, pw) => `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${port}/postgres`,
    log: () => stderr,
    stop,
  };
}

// ---------------------------------------------------------------- SYN black hole

export interface SynBlackhole {
  port: number;
  stop(): Promise<void>;
}

/**
 * A loopback port whose TCP handshake never completes: a child process listens
 * with the smallest backlog and then blocks its only thread (no CPU used), so
 * it never accepts; we fill its accept queue, after which Linux drops new SYNs
 * and a connect() hangs until the caller gives up. (The fault proxy's
 * 'blackhole' mode accepts the TCP connection, so it cannot make a TCP connect
 * time out.)
 */
export async function startSynBlackhole(): Promise<SynBlackhole> {
  const script = [
    "const net = require('node:net');",
    "const server = net.createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {",
    "  process.stdout.write(server.address().port + '\\n', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0));",
    '});',
  ].join('\n');
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fillers: net.Socket[] = [];
  const stop = async () => {
    for (const socket of fillers) socket.destroy();
    await stopChild(child, 'SIGKILL', 1000);
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      child.once('exit', (code) => reject(new Error(`SYN black hole helper exited with ${code}`)));
    });
    // Fill the accept queue until a connect stops completing.
    for (let i = 0; i < 16; i++) {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      fillers.push(socket);
      const connected = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 300);
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!connected) return { port, stop };
    }
    throw new Error('could not fill the accept queue of the SYN black hole');
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---------------------------------------------------------------- TLS

export const OPENSSL_BIN = '/usr/bin/openssl';

/** A self-signed certificate for CN=localhost, IP 127.0.0.1 (PEM strings). */
export async function selfSignedCert(): Promise<{ cert: string; key: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'probe-test-tls-'));
  try {
    await run(OPENSSL_BIN, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ]);
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
