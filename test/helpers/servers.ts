import http from 'node:http';
import net from 'node:net';

export const REDIS_URL: string = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL: string = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestHttpServer {
  server: http.Server;
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** requests served (received) so far */
  requests: () => number;
  /** TCP connections accepted so far */
  connections: () => number;
  close(): Promise<void>;
}

/** Start an HTTP server on 127.0.0.1 with an ephemeral port. */
export async function startHttpServer(handler: http.RequestListener): Promise<TestHttpServer> {
  let requests = 0;
  let connections = 0;
  const server = http.createServer((req, res) => {
    requests++;
    handler(req, res);
  });
  server.on('connection', (socket: net.Socket) => {
    connections++;
    socket.on('error', () => {});
  });
  server.on('clientError', (_err, socket) => {
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    connections: () => connections,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        if (!server.listening) {
          server.closeAllConnections();
          resolve();
          return;
        }
        server.close(() => resolve());
        // close() stops listening (and drops idle keep-alive sockets); drop the rest too.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Find a currently free TCP port on 127.0.0.1 (listen on 0, read the port, close). */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

const DEFAULT_PORTS: Record<string, number> = {
  'redis:': 6379,
  'rediss:': 6379,
  'postgres:': 5432,
  'postgresql:': 5432,
  'http:': 80,
  'https:': 443,
};

/** Extract host and port from a URL such as redis://:pw@host:6379/0 or postgres://u@host/db. */
export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  let host = u.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '') host = '127.0.0.1';
  const port = u.port !== '' ? Number(u.port) : DEFAULT_PORTS[u.protocol];
  if (port === undefined || !Number.isInteger(port) || port <= 0) {
    throw new Error(`cannot determine port for URL ${url}`);
  }
  return { host, port };
}

/** Wait `ms` of real time (pacing a load or a flap; never as proof that something did not happen). */
export const sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Poll `fn` until it returns a truthy value (which is returned). Exceptions thrown by
 * `fn` count as "not yet". Throws Error(`timed out waiting for ${what}`) on timeout.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000; // a hang guard, not a speed figure
  const intervalMs = opts.intervalMs ?? 20;
  const what = opts.what ?? 'condition';
  // performance.now(), not Date.now(): a test may run on a mocked Date
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() >= deadline) {
      const suffix =
        lastError === undefined
          ? ''
          : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out waiting for ${what}${suffix}`);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(intervalMs, deadline - performance.now()))));
  }
}
