/** Throw-away real services for benches: a private redis-server and a node:http app. */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { tmpdir } from 'node:os';
import Redis from 'ioredis';
import { sleep, stopChild } from './proc.mjs';
import { freePort } from './sidecar.mjs';

/** A private redis-server (no persistence, no password) on a free loopback port. */
export async function startRedisServer({ bin = '/usr/bin/redis-server' } = {}) {
  const port = await freePort();
  const child = spawn(bin, ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: tmpdir(),
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
  client.on('error', () => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`);
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stopChild(child);
        throw new Error(`private redis-server did not start: ${err.message} ${stderr}`);
      }
      client.disconnect();
      await sleep(50);
    }
  }
  async function info(section) {
    return client.info(section);
  }
  /** `calls` of `cmdstat_<cmd>` in INFO commandstats (0 if never called). Our own INFO calls count under `info`. */
  async function commandCalls(cmd) {
    const text = await info('commandstats');
    const m = new RegExp(`^cmdstat_${cmd.toLowerCase()}:calls=(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    client,
    info,
    commandCalls,
    async stop() {
      client.disconnect();
      await stopChild(child, 'SIGTERM', 3000);
    },
  };
}

/** An in-process node:http app answering 200 "ok" to everything (the "application" a check probes). */
export async function startHttpApp() {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    get requests() {
      return requests;
    },
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
