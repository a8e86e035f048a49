/**
 * Accept-Encoding: gzip (issue 21.8) on a real Sidecar (port 0): /health,
 * /health/{check}, /health/system and the status page answer gzip when asked
 * (and the inflated bytes are the same document), identity when not asked or
 * refused (q=0), Vary: Accept-Encoding either way; the kubelet probe paths —
 * fast path and full path (?verbose) — never, whatever the client accepts.
 * /metrics through a real Prometheus: test/telemetry/metrics-gzip.test.ts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { Sidecar } from '../../src/sidecar';
import { acceptsGzip } from '../../src/server/encoding';
import { freePort, waitFor } from '../helpers/servers';
import { sidecarFromYaml } from './helpers';

interface RawReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: Buffer;
}

/** GET with the given Accept-Encoding; the body as the bytes on the wire (node:http does not inflate). */
function raw(port: number, path: string, acceptEncoding?: string, method = 'GET'): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding };
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The JSON minus the fields that differ between two answers a moment apart. */
const stable = (text: string) => {
  const { timestamp: _t, uptimeSeconds: _u, eventLoopDelayMs: _e, memory: _m, cpu: _c, ...rest } = JSON.parse(text) as Record<string, unknown>;
  return rest;
};

const NAMES = Array.from({ length: 16 }, (_, i) => `dependency-number-${i}`);
let sidecar: Sidecar;
let port: number;

describe('gzip on the sidecar endpoints', () => {
  before(async () => {
    const closed = await freePort();
    const checks = NAMES.map((name) => `  - { name: ${name}, kind: tcp, url: "tcp://127.0.0.1:${closed}", groups: [live, ready] }`).join('\n');
    ({ sidecar } = sidecarFromYaml(`
server: { port: 0, host: 127.0.0.1, showDetails: always, auth: { anonymousRateLimit: 100000/1m } }
defaults: { interval: 1h, timeout: 1s, retry: { attempts: 1 } }
checks:
${checks}
`));
    port = await sidecar.start();
    await waitFor(() => sidecar.store.all().every((s) => s.status === 'DOWN'), { what: 'first results', timeoutMs: 10_000 });
  });
  after(() => sidecar.shutdown({ drain: false }));

  for (const path of ['/health', `/health/${NAMES[0]}`, '/health/system']) {
    it(`${path}: gzip when asked, the same JSON inflated; identity otherwise; Vary either way`, async () => {
      const plain = await raw(port, path);
      const zipped = await raw(port, path, 'gzip, deflate, br');
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.equal(zipped.headers['content-encoding'], 'gzip');
      assert.equal(zipped.status, plain.status);
      assert.equal(Number(zipped.headers['content-length']), zipped.bytes.length, 'Content-Length is the compressed size');
      assert.ok(zipped.bytes.length < plain.bytes.length, `${zipped.bytes.length} < ${plain.bytes.length}`);
      assert.deepEqual(stable(gunzipSync(zipped.bytes).toString('utf8')), stable(plain.bytes.toString('utf8')));
      for (const reply of [plain, zipped]) assert.equal(reply.headers.vary, 'Accept-Encoding');
      const refused = await raw(port, path, 'gzip;q=0, identity');
      assert.equal(refused.headers['content-encoding'], undefined);
      assert.deepEqual(stable(refused.bytes.toString('utf8')), stable(plain.bytes.toString('utf8')));
    });
  }

  it('HEAD /health with gzip: the headers of the gzip answer, no body', async () => {
    const head = await raw(port, '/health', 'gzip', 'HEAD');
    assert.equal(head.headers['content-encoding'], 'gzip');
    assert.equal(head.bytes.length, 0);
    assert.ok(Number(head.headers['content-length']) > 0);
  });

  it('the status page (HTML) is gzip when asked', async () => {
    const plain = await raw(port, '/');
    const zipped = await raw(port, '/', 'gzip');
    assert.equal(plain.status, 200);
    assert.match(String(plain.headers['content-type']), /^text\/html/);
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    const page = gunzipSync(zipped.bytes).toString('utf8');
    assert.match(page, /<html/i);
    for (const name of NAMES) assert.ok(page.includes(name), `${name} on the page`);
  });

  it('kubelet probe paths are never compressed: fast path, full path, and a ?verbose body well over the threshold', async () => {
    for (const path of ['/livez', '/readyz', '/health/live', '/-/healthy', '/readyz?exclude=', '/livez?verbose']) {
      const reply = await raw(port, path, 'gzip');
      assert.equal(reply.headers['content-encoding'], undefined, path);
      assert.equal(reply.headers.vary, undefined, path);
      assert.match(reply.bytes.toString('utf8'), /ok|check failed/, path);
    }
    const verbose = await raw(port, '/livez?verbose', 'gzip');
    assert.ok(verbose.bytes.length > 512, `the verbose list is ${verbose.bytes.length} bytes`);
    assert.match(verbose.bytes.toString('utf8'), /^\[-\]dependency-number-0 failed/);
  });
});

describe('Accept-Encoding negotiation', () => {
  it('gzip / x-gzip / * with q > 0; q=0 refuses; absent or other codings: identity', () => {
    const table: [string | undefined, boolean][] = [
      [undefined, false],
      ['', false],
      ['gzip', true],
      ['GZIP', true],
      ['x-gzip', true],
      ['deflate, gzip;q=1.0, *;q=0.5', true],
      ['br, deflate', false],
      ['identity', false],
      ['*', true],
      ['*;q=0', false],
      ['gzip;q=0', false],
      ['gzip;q=0, *', false],
      ['gzip;q=0.001', true],
      ['gzip;q=nonsense', false],
    ];
    for (const [header, expected] of table) assert.equal(acceptsGzip(header), expected, `Accept-Encoding: ${header}`);
  });
});
