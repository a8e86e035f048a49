/**
 * Request limits of the one HTTP server (SPEC §4, §8): bodies over 16 KiB →
 * 413 without reading them (Content-Length and chunked), URL → 414, headers →
 * 431, malformed HTTP → 400, all JSON with no-store/nosniff; slow clients
 * (headers or body one byte per second) are cut off by the server timeouts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { createHttpServer, Router } from '../../src/server/app';
import { sendJson, sendText } from '../../src/server/respond';
import { rawExchange, rawStatus } from './support';
import { request } from '../helpers/http';

const HEADERS_TIMEOUT_MS = 2000;
const REQUEST_TIMEOUT_MS = 3000;
const CHECK_INTERVAL_MS = 250;

let server: http.Server;
let port: number;

before(async () => {
  const router = new Router();
  router.add('/livez', ['GET'], (req, res) => sendText(req, res, 200, 'ok'));
  router.add('/echo', ['POST'], (req, res, ctx) => sendJson(req, res, 200, { bytes: ctx.body?.length ?? 0 }));
  server = createHttpServer({
    router,
    identify: () => ({ kind: 'anonymous' }),
    logger: pino({ level: 'silent' }),
    limits: { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS, connectionsCheckingIntervalMs: CHECK_INTERVAL_MS },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
after(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
});

function splitReply(reply: string): { status: number; headers: Record<string, string>; body: string } {
  const [head = '', body = ''] = reply.split('\r\n\r\n');
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: rawStatus(reply), headers, body };
}

function assertJsonError(reply: string, status: number, code: string): void {
  const parsed = splitReply(reply);
  assert.equal(parsed.status, status, reply);
  assert.equal(parsed.headers['cache-control'], 'no-store');
  assert.equal(parsed.headers['x-content-type-options'], 'nosniff');
  assert.match(parsed.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(JSON.parse(parsed.body).error.code, code);
}

async function post(path: string, body: Buffer, chunked: boolean): Promise<{ status: number; text: string }> {
  // chunked: several chunks, as a streaming client would send them
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += 4096) chunks.push(body.subarray(offset, offset + 4096));
  const reply = await request(port, path, { method: 'POST', headers: chunked ? {} : { 'content-length': body.length }, body: chunked ? chunks : body });
  return { status: reply.status, text: reply.body };
}

describe('body size', () => {
  test('a body of exactly 16 KiB is accepted, with Content-Length and chunked', async () => {
    const body = Buffer.alloc(16 * 1024, 'a');
    assert.deepEqual(await post('/echo', body, false), { status: 200, text: '{"bytes":16384}' });
    assert.deepEqual(await post('/echo', body, true), { status: 200, text: '{"bytes":16384}' });
  });

  test('Content-Length over 16 KiB: 413 at once and the connection closes, without the body being sent at all', async () => {
    // declares a gigabyte, sends three bytes: the answer cannot depend on reading the body
    const reply = await rawExchange(port, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nabc');
    assertJsonError(reply, 413, 'body_too_large');
    assert.equal(splitReply(reply).headers.connection, 'close');
    assert.equal(JSON.parse(splitReply(reply).body).error.message, 'request body larger than 16384 bytes');
    // the same on a route that takes no body, and for GET
    assertJsonError(await rawExchange(port, 'GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 16385\r\n\r\n'), 413, 'body_too_large');
  });

  test('a chunked body that grows past 16 KiB: 413 as soon as it is exceeded, the rest is not read', async () => {
    assert.equal((await post('/echo', Buffer.alloc(16 * 1024 + 1, 'a'), true)).status, 413);
    // an endless chunked body: the server answers and closes while the client is still "sending"
    const chunk = `1000\r\n${'b'.repeat(0x1000)}\r\n`;
    const reply = await rawExchange(port, `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.repeat(5)}`);
    assertJsonError(reply, 413, 'body_too_large');
    // still serving
    assert.equal(rawStatus(await rawExchange(port, 'GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')), 200);
  });
});

describe('URL, header and syntax limits (errors from the parser included)', () => {
  test('URL over 2048 bytes → 414', async () => {
    assertJsonError(await rawExchange(port, `GET /livez?x=${'a'.repeat(2100)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), 414, 'uri_too_long');
  });
  test('headers over 8 KiB → 431', async () => {
    assertJsonError(await rawExchange(port, `GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`), 431, 'headers_too_large');
  });
  test('malformed request line, bad header, bad chunk → 400', async () => {
    assertJsonError(await rawExchange(port, 'GET\r\n\r\n'), 400, 'bad_request');
    assertJsonError(await rawExchange(port, 'GET /livez HTTP/1.1\r\nBad Header\r\n\r\n'), 400, 'bad_request');
    assertJsonError(await rawExchange(port, 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), 400, 'bad_request');
    assertJsonError(await rawExchange(port, 'GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), 400, 'bad_request');
  });
});

/** Open a connection and send `text` one byte per `gapMs`; resolves when the server closes it. */
function trickle(text: string, gapMs: number): Promise<{ reply: string; elapsedMs: number; bytesSent: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding('latin1');
    socket.on('error', () => undefined);
    socket.on('data', (c: string) => (reply += c));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ reply, elapsedMs: Date.now() - started, bytesSent: sent });
    });
    const next = () => {
      if (sent >= text.length || socket.destroyed) return;
      socket.write(text[sent++]!);
      timer = setTimeout(next, gapMs);
    };
    socket.on('connect', next);
  });
}

describe('slow clients', () => {
  test('headers at one byte per second are cut off after headersTimeout (408), while others are served', async () => {
    const slowHead = 'GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'z'.repeat(60) + '\r\n\r\n';
    const slow = trickle(slowHead, 1000);
    // a normal client meanwhile
    const fast = await rawExchange(port, 'GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(rawStatus(fast), 200);
    const result = await slow;
    assert.ok(result.bytesSent < slowHead.length, `cut off before finishing its ${slowHead.length}-byte head (sent ${result.bytesSent})`);
    // not before headersTimeout (a lower bound: a timer never fires early); cut off before the head was
    // complete (above) is the upper one, counted in bytes at one a second rather than read off a clock
    assert.ok(result.elapsedMs >= HEADERS_TIMEOUT_MS - 100, `not before headersTimeout (${result.elapsedMs} ms)`);
    assertJsonError(result.reply, 408, 'request_timeout');
  });

  test('a body at one byte per second is cut off after requestTimeout', async () => {
    const head = 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n';
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    const result = await new Promise<{ reply: string; elapsedMs: number; sent: number }>((resolve) => {
      const started = Date.now();
      let reply = '';
      let sent = 0;
      let timer: NodeJS.Timeout | undefined;
      socket.setEncoding('latin1');
      socket.on('data', (c: string) => (reply += c));
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ reply, elapsedMs: Date.now() - started, sent });
      });
      const next = () => {
        if (sent >= 60 || socket.destroyed) return;
        socket.write('x');
        sent++;
        timer = setTimeout(next, 1000);
      };
      socket.on('connect', () => {
        socket.write(head);
        next();
      });
    });
    assert.ok(result.sent < 60, `cut off before the whole body (sent ${result.sent})`);
    // not before requestTimeout; cut off before the whole body (above) is the upper bound, in bytes
    assert.ok(result.elapsedMs >= REQUEST_TIMEOUT_MS - 100, `not before requestTimeout (${result.elapsedMs} ms)`);
    assertJsonError(result.reply, 408, 'request_timeout');
  });
});
