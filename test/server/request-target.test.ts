/**
 * Issue 14.5: the request target is parsed as origin-form by us. A target the
 * WHATWG URL parser would move to another route (`//livez` → the status page,
 * `//x/admin/diagnostics` → an admin route, `/x/../admin/…`, `%2e%2e`,
 * backslashes, absolute-form) answers 400 `bad_request_target` — never a
 * different route. Sent over raw sockets, so no client normalises the target.
 * Also: `Authorization: <key>` without the Bearer scheme is a wrong key.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseRequestTarget } from '../../src/server/target';
import type { Sidecar } from '../../src/sidecar';
import { request } from '../helpers/http';
import { sidecarFromYaml } from './helpers';

const KEY = 'target-test-key-0123456789';
let sidecar: Sidecar;
let port: number;

before(async () => {
  ({ sidecar } = sidecarFromYaml(`
server:
  port: 0
  host: 127.0.0.1
  drainDelay: 0s
  auth: { keys: [{ name: ops, key: "${KEY}" }], anonymousRateLimit: 100000/1m }
checks: []
`));
  port = await sidecar.start();
});

after(async () => {
  await sidecar?.shutdown({ drain: false });
});

/** One raw HTTP/1.1 request with `target` written verbatim; resolves with status and body. */
function raw(target: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: sidecar\r\nConnection: close\r\n${extra}\r\n`));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
  });
}

const auth = { authorization: `Bearer ${KEY}` };

// target → what it must answer: 400 bad_request_target, or the one route it names
const TABLE: { target: string; headers?: Record<string, string>; status: number; code?: string; body?: RegExp }[] = [
  // served: origin-form maps to the route it names
  { target: '/livez', status: 200, body: /^ok$/ },
  { target: '/readyz?verbose', status: 200, body: /readyz check passed/ },
  { target: '/admin/diagnostics', headers: auth, status: 200, body: /"versions"/ },
  { target: '/', status: 200, body: /<!doctype html>/i },
  // refused: each of these reaches another route through new URL(raw, base)
  { target: '//livez', status: 400, code: 'bad_request_target' },
  { target: '//x/admin/diagnostics', headers: auth, status: 400, code: 'bad_request_target' },
  { target: '//x/livez', status: 400, code: 'bad_request_target' },
  { target: 'http://host/livez', status: 400, code: 'bad_request_target' },
  { target: 'http://host/admin/diagnostics', headers: auth, status: 400, code: 'bad_request_target' },
  { target: 'https://sidecar.invalid/', status: 400, code: 'bad_request_target' },
  { target: '/x/../admin/diagnostics', headers: auth, status: 400, code: 'bad_request_target' },
  { target: '/x/%2e%2e/admin/diagnostics', headers: auth, status: 400, code: 'bad_request_target' },
  { target: '/x/%2E./livez', status: 400, code: 'bad_request_target' },
  { target: '/health/%2e%2e', status: 400, code: 'bad_request_target' }, // a dot segment even where a check name goes
  { target: '/./livez', status: 400, code: 'bad_request_target' },
  { target: '/\\livez', status: 400, code: 'bad_request_target' },
  { target: '/x\\..\\admin/diagnostics', headers: auth, status: 400, code: 'bad_request_target' },
  { target: '/livez#frag', status: 400, code: 'bad_request_target' },
  { target: 'sidecar:8080', status: 400, code: 'bad_request' }, // authority-form: Node's parser refuses it for GET
  { target: '*', status: 400, code: 'bad_request_target' },
  // the documented canonical form: trailing slashes dropped (issue 21.5), nothing else
  { target: '/livez/', status: 200, body: /^ok$/ },
  // not normalised, so not the route: 404
  { target: '/admin//diagnostics', headers: auth, status: 404, code: 'not_found' },
  { target: '/%61dmin/diagnostics', headers: auth, status: 404, code: 'not_found' },
];

describe('request target parsing (issue 14.5)', () => {
  for (const row of TABLE) {
    it(`${row.target}${row.headers ? ' (with key)' : ''} → ${row.status}${row.code ? ` ${row.code}` : ''}`, async () => {
      const reply = await raw(row.target, row.headers);
      assert.equal(reply.status, row.status, reply.body);
      if (row.code) assert.equal((JSON.parse(reply.body) as { error: { code: string } }).error.code, row.code);
      if (row.body) assert.match(reply.body, row.body);
    });
  }

  it('parseRequestTarget keeps the raw path and query, and names the problem', () => {
    assert.deepEqual(parseRequestTarget('/health/db%2Fx?a=1&b'), { pathname: '/health/db%2Fx', search: 'a=1&b' });
    assert.deepEqual(parseRequestTarget('/'), { pathname: '/', search: '' });
    assert.throws(() => parseRequestTarget('http://h/livez'), /absolute-form/);
    assert.throws(() => parseRequestTarget('//livez'), /starts with "\/\/"/);
    assert.throws(() => parseRequestTarget('/a/./b'), /dot segment/);
  });

  it('Authorization without the Bearer scheme is a wrong key (401 invalid_key), never the key', async () => {
    for (const value of [KEY, `Basic ${Buffer.from(`ops:${KEY}`).toString('base64')}`, `Token ${KEY}`, `Bearer ${KEY} extra`]) {
      const reply = await request(port, '/admin/diagnostics', { headers: { authorization: value } });
      assert.equal(reply.status, 401, value);
      assert.equal((JSON.parse(reply.body) as { error: { code: string } }).error.code, 'invalid_key');
    }
    // positive controls: the documented forms work
    assert.equal((await request(port, '/admin/diagnostics', { headers: { authorization: `bearer ${KEY}` } })).status, 200);
    assert.equal((await request(port, '/admin/diagnostics', { headers: { 'x-api-key': KEY } })).status, 200);
  });
});
