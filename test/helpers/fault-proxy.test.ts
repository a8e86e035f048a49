import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

import { startFaultProxy, type FaultProxy } from './fault-proxy';
import { REDIS_URL, hostPort, startHttpServer, waitFor, type TestHttpServer } from './servers';
import { getUrl } from './http';

// ------------------------------------------------------------------ raw socket client

const openClients = new Set<RawClient>();

class RawClient {
  buf = '';
  error: NodeJS.ErrnoException | undefined;
  closed = false;
  private readonly listeners = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    openClients.add(this);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.notify();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error = err;
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      openClients.delete(this);
      this.notify();
    });
  }

  /** Resolves once connected; rejects with the connect error (e.g. ECONNREFUSED). */
  static connect(port: number): Promise<RawClient> {
    return new Promise<RawClient>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      const onError = (err: Error): void => {
        socket.destroy();
        reject(err);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new RawClient(socket));
      });
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Wait until `cond()` is true, the socket closes (or errors, if stopOnError), or the timeout passes. */
  waitUntil(
    cond: () => boolean,
    timeoutMs: number,
    stopOnError = true,
  ): Promise<{ ok: boolean; timedOut: boolean }> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): void => {
        if (cond()) finish({ ok: true, timedOut: false });
        else if (this.closed || (stopOnError && this.error)) finish({ ok: false, timedOut: false });
      };
      const finish = (r: { ok: boolean; timedOut: boolean }): void => {
        if (timer) clearTimeout(timer);
        this.listeners.delete(check);
        resolve(r);
      };
      timer = setTimeout(() => finish({ ok: cond(), timedOut: !cond() }), timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /** Clear the buffer, send `payload`, wait for `until(buffer)`. */
  async request(
    payload: string,
    until: (s: string) => boolean,
    timeoutMs = 2000,
  ): Promise<{ reply: string; ok: boolean; timedOut: boolean; ms: number }> {
    this.buf = '';
    const start = performance.now();
    this.socket.write(payload);
    const r = await this.waitUntil(() => until(this.buf), timeoutMs);
    return { reply: this.buf, ok: r.ok, timedOut: r.timedOut, ms: performance.now() - start };
  }

  async waitClosed(timeoutMs = 2000): Promise<boolean> {
    await this.waitUntil(() => this.closed, timeoutMs, false);
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

// ------------------------------------------------------------------ redis helpers

const redisTarget = hostPort(REDIS_URL);
const redisAuth = (() => {
  const u = new URL(REDIS_URL);
  if (!u.password) return '';
  const pw = decodeURIComponent(u.password);
  return u.username ? `AUTH ${decodeURIComponent(u.username)} ${pw}\r\n` : `AUTH ${pw}\r\n`;
})();
const PONG = '+PONG\r\n';
const hasPong = (s: string): boolean => s.includes(PONG);

/** Send PING (after AUTH if REDIS_URL has a password) on a connected client. */
function ping(c: RawClient, timeoutMs = 2000) {
  return c.request(`${redisAuth}PING\r\n`, hasPong, timeoutMs);
}

async function connectAndPing(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  const r = await ping(c);
  assert.ok(r.ok, `expected PONG through proxy, got ${JSON.stringify(r.reply)}`);
  return c;
}

function connectError(port: number): Promise<NodeJS.ErrnoException> {
  return RawClient.connect(port).then(
    (c) => {
      c.destroy();
      throw new Error(`expected connection to port ${port} to fail, but it connected`);
    },
    (err: NodeJS.ErrnoException) => err,
  );
}

// ------------------------------------------------------------------ http helpers

const BIG_BODY = 'x'.repeat(200_000);

const httpGet = (url: string, timeoutMs = 5000) => getUrl(url, { timeoutMs });

const rawHttpGet = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n`;

// ------------------------------------------------------------------ tests

describe('fault proxy', () => {
  let httpServer: TestHttpServer;
  let httpProxy: FaultProxy;
  let redisProxy: FaultProxy;
  const extraProxies: FaultProxy[] = [];

  before(async () => {
    httpServer = await startHttpServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BIG_BODY.length });
        res.end(BIG_BODY);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('hello');
    });
    httpProxy = await startFaultProxy({ host: '127.0.0.1', port: httpServer.port });
    redisProxy = await startFaultProxy(redisTarget);
  });

  beforeEach(() => {
    for (const c of [...openClients]) c.destroy();
    httpProxy.setMode('pass');
    redisProxy.setMode('pass');
  });

  after(async () => {
    for (const c of [...openClients]) c.destroy();
    await Promise.all([httpProxy?.close(), redisProxy?.close(), ...extraProxies.map((p) => p.close())]);
    await httpServer?.close();
  });

  test('url() builds URLs on the listening port', () => {
    assert.ok(redisProxy.port > 0);
    assert.equal(redisProxy.url('redis', ':pw@', '/0'), `redis://:pw@127.0.0.1:${redisProxy.port}/0`);
    assert.equal(httpProxy.url('http'), `http://127.0.0.1:${httpProxy.port}`);
  });

  test('pass: forwards HTTP and Redis traffic', async () => {
    const before = httpServer.requests();
    const res = await httpGet(httpProxy.url('http', '', '/'));
    assert.equal(res.status, 200);
    assert.equal(res.body, 'hello');
    const big = await httpGet(httpProxy.url('http', '', '/big'));
    assert.equal(big.body.length, BIG_BODY.length);
    assert.equal(httpServer.requests(), before + 2);

    const c = await connectAndPing(redisProxy.port);
    // several round trips on the same connection
    for (let i = 0; i < 3; i++) assert.ok((await ping(c)).ok);
    c.destroy();
  });

  test('counters: acceptedConnections / openConnections / resetCounters', async () => {
    await waitFor(() => redisProxy.openConnections === 0, { what: 'no open connections' });
    redisProxy.resetCounters();
    assert.equal(redisProxy.acceptedConnections, 0);

    const a = await connectAndPing(redisProxy.port);
    const b = await connectAndPing(redisProxy.port);
    assert.equal(redisProxy.acceptedConnections, 2);
    assert.equal(redisProxy.openConnections, 2);

    a.destroy();
    await waitFor(() => redisProxy.openConnections === 1, { what: 'one open connection' });
    b.destroy();
    await waitFor(() => redisProxy.openConnections === 0, { what: 'no open connections' });
    assert.equal(redisProxy.acceptedConnections, 2);

    redisProxy.resetCounters();
    assert.equal(redisProxy.acceptedConnections, 0);
  });

  test('refuse: ECONNREFUSED, existing connections dropped, recovers on the same port', async () => {
    const port = redisProxy.port;
    const existing = await connectAndPing(port);
    redisProxy.resetCounters();

    redisProxy.setMode('refuse');
    assert.ok(await existing.waitClosed(), 'existing connection should be destroyed on entering refuse');
    const err = await connectError(port);
    assert.equal(err.code, 'ECONNREFUSED');
    // HTTP client sees the same
    await assert.rejects(httpGetVia(port), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    assert.equal(redisProxy.acceptedConnections, 0);
    await waitFor(() => redisProxy.openConnections === 0, { what: 'no open connections' });

    redisProxy.setMode('pass');
    assert.equal(redisProxy.port, port, 'port must stay stable');
    // the listener is re-bound synchronously inside setMode(); no wait needed
    const c = await connectAndPing(port);
    assert.equal(redisProxy.acceptedConnections, 1);
    c.destroy();

    // refuse <-> pass flapping keeps working
    for (let i = 0; i < 3; i++) {
      redisProxy.setMode('refuse');
      assert.equal((await connectError(port)).code, 'ECONNREFUSED');
      redisProxy.setMode('pass');
      (await connectAndPing(port)).destroy();
    }
    await redisProxy.ready();
  });

  test('blackhole: connect succeeds, nothing answered, no upstream connection opened', async () => {
    const httpConnsBefore = httpServer.connections();
    const httpReqsBefore = httpServer.requests();
    const existingRedis = await connectAndPing(redisProxy.port);

    httpProxy.setMode('blackhole');
    redisProxy.setMode('blackhole');

    // HTTP: TCP connect works, request is swallowed
    const h = await RawClient.connect(httpProxy.port);
    const hr = await h.request(rawHttpGet('/'), (s) => s.length > 0, 300);
    assert.equal(hr.reply, '');
    assert.ok(hr.timedOut);
    assert.equal(h.closed, false, 'blackholed socket should stay open');
    assert.equal(httpServer.connections(), httpConnsBefore, 'no upstream connection for blackholed clients');
    assert.equal(httpServer.requests(), httpReqsBefore);

    // Redis: new connection gets no PONG
    const r = await RawClient.connect(redisProxy.port);
    const rr = await ping(r, 300);
    assert.equal(rr.reply, '');
    assert.ok(rr.timedOut);

    // existing connection also stops forwarding
    const er = await ping(existingRedis, 300);
    assert.equal(er.reply, '');
    assert.ok(er.timedOut);
    assert.equal(existingRedis.closed, false);

    // blackholed connections are counted as accepted and open
    assert.ok(redisProxy.openConnections >= 2);

    // back to pass: the pre-existing connection forwards again; new ones work
    redisProxy.setMode('pass');
    httpProxy.setMode('pass');
    const again = await ping(existingRedis);
    assert.ok(again.ok, `expected PONG after leaving blackhole, got ${JSON.stringify(again.reply)}`);
    (await connectAndPing(redisProxy.port)).destroy();
    assert.equal((await httpGet(httpProxy.url('http', '', '/'))).body, 'hello');
    assert.equal(httpServer.connections(), httpConnsBefore + 1);
  });

  test('latency: adds at least latencyMs, preserves order, removable', async () => {
    const latencyMs = 300;
    const c = await connectAndPing(redisProxy.port);
    const passRtt = (await ping(c)).ms;

    redisProxy.setMode('latency', { latencyMs });
    const slow = await ping(c, 5000);
    assert.ok(slow.ok);
    assert.ok(slow.ms >= latencyMs, `latency RTT ${slow.ms.toFixed(1)}ms < ${latencyMs}ms`);
    // delay applies in both directions
    assert.ok(slow.ms >= 2 * latencyMs - 5, `latency RTT ${slow.ms.toFixed(1)}ms should include both directions`);
    assert.ok(slow.ms > passRtt, `latency RTT ${slow.ms}ms not above pass RTT ${passRtt}ms`);

    // order is preserved across separately-written chunks
    c.buf = '';
    const expected = ['a', 'b', 'c', 'd'].map((x) => `$1\r\n${x}\r\n`).join('');
    for (const x of ['a', 'b', 'c', 'd']) {
      c.socket.write(`ECHO ${x}\r\n`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const done = await c.waitUntil(() => c.buf.length >= expected.length, 5000);
    assert.ok(done.ok);
    assert.equal(c.buf, expected);

    // new connections are delayed too (HTTP)
    httpProxy.setMode('latency', { latencyMs });
    const res = await httpGet(httpProxy.url('http', '', '/'), 5000);
    assert.equal(res.body, 'hello');
    assert.ok(res.ms >= latencyMs, `HTTP via latency proxy took ${res.ms.toFixed(1)}ms`);

    redisProxy.setMode('pass');
    const fast = await ping(c);
    assert.ok(fast.ok);
    // with the delay still on, the RTT could not be below 2 × latencyMs; compared with the delayed RTT of this run
    assert.ok(fast.ms < slow.ms / 2, `after leaving latency mode RTT is ${fast.ms.toFixed(1)}ms, the delayed one was ${slow.ms.toFixed(1)}ms`);
    c.destroy();
  });

  test('reset: client sees ECONNRESET / close without a reply', async () => {
    const existing = await connectAndPing(redisProxy.port);
    redisProxy.setMode('reset');

    const c = await RawClient.connect(redisProxy.port);
    const r = await ping(c);
    assert.ok(!hasPong(r.reply), 'no PONG expected');
    assert.ok(!r.timedOut, 'connection should be reset, not hang');
    assert.ok(c.closed || c.error, 'client should be closed or errored');
    if (c.error) assert.equal(c.error.code, 'ECONNRESET');

    // applies to an already-open connection as well
    const er = await ping(existing);
    assert.ok(!hasPong(er.reply));
    assert.ok(await existing.waitClosed());
    if (existing.error) assert.equal(existing.error.code, 'ECONNRESET');

    // resetAfterBytes: some bytes get through, then RST
    httpProxy.setMode('reset', { resetAfterBytes: 1000 });
    const h = await RawClient.connect(httpProxy.port);
    await h.request(rawHttpGet('/big'), () => false, 3000);
    assert.ok(await h.waitClosed());
    assert.ok(h.buf.length > 0 && h.buf.length <= 1000, `received ${h.buf.length} bytes, limit was 1000`);
    assert.ok(h.error === undefined || h.error.code === 'ECONNRESET', `unexpected error ${h.error?.code}`);
    await assert.rejects(httpGet(httpProxy.url('http', '', '/big')));

    // and back to normal
    redisProxy.setMode('pass');
    httpProxy.setMode('pass');
    (await connectAndPing(redisProxy.port)).destroy();
    assert.equal((await httpGet(httpProxy.url('http', '', '/big'))).body.length, BIG_BODY.length);
  });

  test('dropAll destroys current connections but keeps listening', async () => {
    const a = await connectAndPing(redisProxy.port);
    const b = await connectAndPing(redisProxy.port);
    redisProxy.dropAll();
    assert.ok(await a.waitClosed());
    assert.ok(await b.waitClosed());
    await waitFor(() => redisProxy.openConnections === 0, { what: 'no open connections' });
    (await connectAndPing(redisProxy.port)).destroy();
  });

  test('close() destroys everything and stops listening', async () => {
    const p = await startFaultProxy({ host: '127.0.0.1', port: httpServer.port });
    extraProxies.push(p);
    const c = await RawClient.connect(p.port);
    const hung = await RawClient.connect(p.port);
    p.setMode('latency', { latencyMs: 10_000 });
    hung.socket.write(rawHttpGet('/'));
    await waitFor(() => p.openConnections === 2, { what: 'two open connections' });
    await p.close();
    assert.ok(await c.waitClosed());
    assert.ok(await hung.waitClosed());
    assert.equal(p.openConnections, 0);
    assert.equal((await connectError(p.port)).code, 'ECONNREFUSED');
    await p.close(); // idempotent
  });

  test('upstream down: client connection is closed, proxy survives', async () => {
    const dead = await startHttpServer((_req, res) => res.end('x'));
    const p = await startFaultProxy({ host: '127.0.0.1', port: dead.port });
    extraProxies.push(p);
    await dead.close();
    const c = await RawClient.connect(p.port);
    c.socket.write(rawHttpGet('/'));
    assert.ok(await c.waitClosed());
    assert.equal(c.buf, '');
    await waitFor(() => p.openConnections === 0, { what: 'no open connections' });
  });
});

function httpGetVia(port: number) {
  return httpGet(`http://127.0.0.1:${port}/`);
}
