/**
 * A real TCP fault-injection proxy for tests. It listens on 127.0.0.1 and forwards to a
 * target (Redis, PostgreSQL, HTTP, ...), and can be switched at any time between:
 *
 *  - 'pass'      pipe bytes both ways.
 *  - 'refuse'    the listener is closed, so new connections get ECONNREFUSED; existing
 *                connections are destroyed. Leaving 'refuse' re-listens on the SAME port.
 *  - 'blackhole' accept connections but never forward or answer anything (reads are
 *                discarded). New connections do not open an upstream connection at all;
 *                existing connections stop forwarding in both directions.
 *  - 'latency'   forward with `latencyMs` (default 100) added per chunk in each direction,
 *                preserving order.
 *  - 'reset'     forward, but once `resetAfterBytes` (default 0) upstream->client bytes
 *                have been forwarded on a connection, the client socket is reset (RST).
 *
 * The mode is consulted for every chunk, so blackhole/latency/reset also affect
 * connections that were already open. Socket errors never escape the proxy.
 */
import net from 'node:net';

export type FaultMode = 'pass' | 'refuse' | 'blackhole' | 'latency' | 'reset';

export interface FaultModeOptions {
  latencyMs?: number;
  resetAfterBytes?: number;
}

export interface FaultProxy {
  /** listening port on 127.0.0.1 (stable for the proxy's lifetime, also across 'refuse') */
  readonly port: number;
  /** e.g. proxy.url('redis', ':pw@', '/0') -> 'redis://:pw@127.0.0.1:PORT/0' */
  readonly url: (scheme: string, auth?: string, path?: string) => string;
  setMode(mode: FaultMode, opts?: FaultModeOptions): void;
  readonly mode: FaultMode;
  /** total client connections accepted since start (or since resetCounters) */
  readonly acceptedConnections: number;
  /** currently open client-side sockets */
  readonly openConnections: number;
  resetCounters(): void;
  /** destroy all current connections (both sides) */
  dropAll(): void;
  /**
   * Resolves once the listener matches the current mode (listening unless 'refuse').
   * Re-listening after 'refuse' normally binds synchronously inside setMode(); this is
   * only needed if the port had to be retried (EADDRINUSE).
   */
  ready(): Promise<void>;
  close(): Promise<void>;
}

type Dir = 'up' | 'down'; // up: client -> upstream, down: upstream -> client

type Item =
  | { kind: 'data'; chunk: Buffer; due: number }
  | { kind: 'end'; due: number }
  | { kind: 'close'; hadError: boolean; due: number };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type NewItem = DistributiveOmit<Item, 'due'>;

interface Lane {
  dir: Dir;
  queue: Item[];
  timer: NodeJS.Timeout | undefined;
  lastDue: number;
  waitingDrain: boolean;
}

interface Conn {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** bytes forwarded upstream -> client */
  downBytes: number;
  up: Lane;
  down: Lane;
  /** no more forwarding (reset in progress or torn down) */
  dead: boolean;
}

const HOST = '127.0.0.1';
const LISTEN_RETRIES = 100;
const LISTEN_RETRY_MS = 20;
const DEFAULT_LATENCY_MS = 100;
const RESET_AFTER_WRITE_MS = 20;

function noop(): void {}

function newLane(dir: Dir): Lane {
  return { dir, queue: [], timer: undefined, lastDue: 0, waitingDrain: false };
}

function hardReset(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // fall through
    }
  }
  socket.destroy();
}

/** end() then destroy once flushed. */
function closeGracefully(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.writableFinished) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  if (!socket.writableEnded) socket.end();
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let mode: FaultMode = 'pass';
  let latencyMs = 0;
  let resetAfterBytes = 0;
  let accepted = 0;
  let closed = false;
  let port = 0;

  const conns = new Set<Conn>();
  let server: net.Server | undefined;
  /** listener generation: bumps whenever we (re)open or close the listener */
  let generation = 0;
  let readyPromise: Promise<void> = Promise.resolve();

  // ---------------------------------------------------------------- forwarding

  function teardown(conn: Conn): void {
    conn.dead = true;
    for (const lane of [conn.up, conn.down]) {
      if (lane.timer) clearTimeout(lane.timer);
      lane.timer = undefined;
      lane.queue.length = 0;
    }
    if (!conn.client.destroyed) conn.client.destroy();
    if (conn.upstream && !conn.upstream.destroyed) conn.upstream.destroy();
    conns.delete(conn);
  }

  function resetClient(conn: Conn): void {
    conn.dead = true;
    hardReset(conn.client);
    teardown(conn);
  }

  function write(conn: Conn, lane: Lane, dst: net.Socket, chunk: Buffer, cb?: () => void): void {
    const ok = dst.write(chunk, cb ? () => cb() : undefined);
    if (!ok && !lane.waitingDrain) {
      const src = lane.dir === 'up' ? conn.client : conn.upstream;
      if (!src) return;
      lane.waitingDrain = true;
      src.pause();
      dst.once('drain', () => {
        lane.waitingDrain = false;
        if (!src.destroyed) src.resume();
      });
    }
  }

  function deliver(conn: Conn, lane: Lane, item: Item): void {
    if (conn.dead) return;
    // blackhole also swallows data that was delayed before the mode switch
    if (mode === 'blackhole') return;
    const dst = lane.dir === 'up' ? conn.upstream : conn.client;
    if (!dst) return;
    if (dst.destroyed) {
      teardown(conn);
      return;
    }
    if (item.kind === 'end') {
      if (!dst.writableEnded) dst.end();
      return;
    }
    if (item.kind === 'close') {
      if (item.hadError) teardown(conn);
      else closeGracefully(dst);
      return;
    }
    const chunk = item.chunk;
    if (lane.dir === 'down' && mode === 'reset') {
      const remaining = resetAfterBytes - conn.downBytes;
      if (remaining <= 0) {
        resetClient(conn);
        return;
      }
      if (chunk.length >= remaining) {
        conn.downBytes += remaining;
        conn.dead = true; // drop everything after this, then RST
        for (const l of [conn.up, conn.down]) {
          if (l.timer) clearTimeout(l.timer);
          l.timer = undefined;
          l.queue.length = 0;
        }
        // Give the client a moment to read the forwarded bytes before the RST: on Linux an
        // RST arriving while received data is still unread tends to surface as a plain EOF
        // instead of ECONNRESET.
        dst.write(chunk.subarray(0, remaining), () => {
          setTimeout(() => resetClient(conn), RESET_AFTER_WRITE_MS);
        });
        return;
      }
    }
    if (lane.dir === 'down') conn.downBytes += chunk.length;
    write(conn, lane, dst, chunk);
  }

  function schedule(conn: Conn, lane: Lane): void {
    if (lane.timer || lane.queue.length === 0 || conn.dead) return;
    const wait = Math.max(0, lane.queue[0]!.due - Date.now());
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      flush(conn, lane);
    }, wait);
  }

  function flush(conn: Conn, lane: Lane): void {
    const now = Date.now();
    while (!conn.dead && lane.queue.length > 0 && lane.queue[0]!.due <= now) {
      deliver(conn, lane, lane.queue.shift()!);
    }
    schedule(conn, lane);
  }

  function forward(conn: Conn, lane: Lane, item: NewItem): void {
    if (conn.dead) return;
    if (mode === 'blackhole') {
      // Nothing moves in either direction; an upstream that goes away is not
      // reported to the client either (it just hangs), but a client that goes away
      // is handled by the client's 'close' listener.
      return;
    }
    const delay = mode === 'latency' ? latencyMs : 0;
    if (delay <= 0 && lane.queue.length === 0) {
      deliver(conn, lane, { ...item, due: 0 } as Item);
      return;
    }
    const due = Math.max(Date.now() + delay, lane.lastDue);
    lane.lastDue = due;
    lane.queue.push({ ...item, due } as Item);
    schedule(conn, lane);
  }

  function onConnection(client: net.Socket): void {
    if (closed || mode === 'refuse') {
      client.on('error', noop);
      client.destroy();
      return;
    }
    accepted++;
    client.setNoDelay(true);
    const conn: Conn = {
      client,
      upstream: undefined,
      downBytes: 0,
      up: newLane('up'),
      down: newLane('down'),
      dead: false,
    };
    conns.add(conn);
    client.on('error', noop);
    client.on('close', () => teardown(conn));

    if (mode === 'blackhole') {
      // Never open upstream; read and discard whatever the client sends.
      conn.dead = true;
      client.on('data', noop);
      return;
    }

    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    conn.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', noop);

    client.on('data', (chunk: Buffer) => forward(conn, conn.up, { kind: 'data', chunk }));
    client.on('end', () => forward(conn, conn.up, { kind: 'end' }));
    upstream.on('data', (chunk: Buffer) => forward(conn, conn.down, { kind: 'data', chunk }));
    upstream.on('end', () => forward(conn, conn.down, { kind: 'end' }));
    upstream.on('close', (hadError: boolean) => {
      if (conn.dead) return;
      if (mode === 'blackhole') return; // client keeps hanging
      forward(conn, conn.down, { kind: 'close', hadError });
    });
  }

  // ---------------------------------------------------------------- listener

  function openListener(): Promise<void> {
    const gen = ++generation;
    return new Promise<void>((resolve, reject) => {
      let attempts = 0;
      const attempt = (): void => {
        if (gen !== generation || closed) {
          resolve();
          return;
        }
        const srv = net.createServer({ allowHalfOpen: true }, onConnection);
        srv.on('error', (err: NodeJS.ErrnoException) => {
          if (server === srv) server = undefined;
          srv.close(noop);
          if (gen !== generation || closed) {
            resolve();
          } else if (err.code === 'EADDRINUSE' && port !== 0 && attempts < LISTEN_RETRIES) {
            attempts++;
            setTimeout(attempt, LISTEN_RETRY_MS);
          } else {
            reject(err);
          }
        });
        server = srv;
        // For an IP-literal host the bind happens synchronously inside listen().
        srv.listen({ port, host: HOST, exclusive: true }, () => {
          if (gen !== generation || closed) {
            if (server === srv) server = undefined;
            srv.close(noop);
            resolve();
            return;
          }
          port = (srv.address() as net.AddressInfo).port;
          resolve();
        });
      };
      attempt();
    });
  }

  function closeListener(): Promise<void> {
    generation++;
    const srv = server;
    server = undefined;
    if (!srv) return Promise.resolve();
    // close() stops accepting synchronously; its callback fires once every socket the
    // server accepted has closed (callers destroy those right after).
    return new Promise<void>((resolve) => srv.close(() => resolve()));
  }

  function dropAll(): void {
    for (const conn of [...conns]) teardown(conn);
  }

  await openListener();

  const proxy: FaultProxy = {
    get port() {
      return port;
    },
    url: (scheme: string, auth = '', path = '') => `${scheme}://${auth}${HOST}:${port}${path}`,
    get mode() {
      return mode;
    },
    setMode(next: FaultMode, opts: FaultModeOptions = {}): void {
      const prev = mode;
      if (closed) {
        mode = next; // no-op after close() (handy in cleanup paths)
        return;
      }
      mode = next;
      latencyMs = next === 'latency' ? Math.max(0, opts.latencyMs ?? DEFAULT_LATENCY_MS) : 0;
      resetAfterBytes = Math.max(0, opts.resetAfterBytes ?? 0);
      if (next === 'refuse' && prev !== 'refuse') {
        // Close the listener first (synchronously stops accepting), then kill connections.
        readyPromise = closeListener();
        dropAll();
      } else if (next !== 'refuse' && prev === 'refuse') {
        readyPromise = openListener();
        readyPromise.catch(noop);
      }
    },
    get acceptedConnections() {
      return accepted;
    },
    get openConnections() {
      return conns.size;
    },
    resetCounters(): void {
      accepted = 0;
    },
    dropAll,
    ready(): Promise<void> {
      return readyPromise;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      const listenerClosed = closeListener();
      dropAll();
      await listenerClosed;
    },
  };
  return proxy;
}
