/**
 * Who sees details, end to end over real HTTP (issue 19, item 4):
 *   - `when-authorized` with no API key configured: /health/stats and
 *     /health/incidents answer 403 (not a 401 that asks for a key that cannot
 *     exist), and the status page says why details are missing;
 *   - `never` and `when-authorized` with keys: the page says what is true for each;
 *   - the status page lists checks by severity (DOWN, DEGRADED, UNKNOWN, UP),
 *     then by name, for viewers with and without details.
 * Real dependencies: HTTP servers on port 0 (one slow, one that never answers)
 * and a port nothing listens on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Sidecar } from '../../src/sidecar';
import { freePort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { request } from '../helpers/http';
import { sidecarFromYaml } from './helpers';

const KEY = 'details-key-0123456789abcdef';
const running: Sidecar[] = [];
let fast: TestHttpServer;
let slow: TestHttpServer;
let silent: TestHttpServer;
let closedPort: number;

before(async () => {
  fast = await startHttpServer((_req, res) => res.end('ok'));
  // always slower than its check's warnAbove (5 ms): the delay is a floor, whatever the machine's load
  slow = await startHttpServer((_req, res) => void setTimeout(() => res.end('ok'), 40));
  // never answers: its check stays UNKNOWN (no result yet) while its 20 s timeout runs
  silent = await startHttpServer(() => undefined);
  closedPort = await freePort();
});
after(async () => {
  for (const sidecar of running) await sidecar.shutdown({ drain: false });
  await Promise.all([fast.close(), slow.close(), silent.close()]);
});

async function start(server: string): Promise<{ sidecar: Sidecar; port: number }> {
  const { sidecar } = sidecarFromYaml(`
server: { port: 0, host: 127.0.0.1, ${server} }
defaults: { interval: 300ms, timeout: 250ms, retry: { attempts: 1 }, thresholds: { failure: 1 } }
checks:
  - { name: a-up, kind: http, url: "${fast.url}/" }
  - { name: b-pending, kind: http, url: "${silent.url}/", interval: 30s, timeout: 20s }
  - { name: c-slow, kind: http, url: "${slow.url}/", latency: { warnAbove: 5ms } }
  - { name: d-down, kind: tcp, url: "tcp://127.0.0.1:${closedPort}" }
  - { name: e-up, kind: http, url: "${fast.url}/" }
  - { name: f-down, kind: tcp, url: "tcp://127.0.0.1:${closedPort}", critical: false }
`);
  running.push(sidecar);
  const port = await sidecar.start();
  await waitFor(
    () => {
      const by = new Map(sidecar.store.all().map((s) => [s.name, s]));
      return by.get('a-up')?.status === 'UP' && by.get('e-up')?.status === 'UP' && by.get('c-slow')?.slow && by.get('d-down')?.status === 'DOWN' && by.get('f-down')?.status === 'DOWN';
    },
    { what: 'every check but b-pending has a result', timeoutMs: 15_000 },
  );
  assert.equal(sidecar.store.get('b-pending')?.status, 'UNKNOWN');
  return { sidecar, port };
}

const rowOrder = (html: string) => [...html.matchAll(/<tr class="row[^"]*" data-check="([^"]+)" data-status="([^"]+)"/g)].map((m) => `${m[2]} ${m[1]}`);
const note = (html: string) => /<p class="muted small details-note">([^<]*)<\/p>/.exec(html)?.[1];
const SEVERITY_ORDER = ['DOWN d-down', 'DOWN f-down', 'DEGRADED c-slow', 'UNKNOWN b-pending', 'UP a-up', 'UP e-up'];

describe('details and the status page', () => {
  it('when-authorized with no key configured: 403 on the detail endpoints (no WWW-Authenticate), the page says nobody sees details', async () => {
    const { port } = await start('showDetails: when-authorized');
    for (const path of ['/health/stats', '/health/incidents']) {
      for (const headers of [{}, { 'x-api-key': KEY }] as Record<string, string>[]) {
        const reply = await request(port, path, { headers });
        assert.equal(reply.status, 403, `${path} ${JSON.stringify(headers)}`);
        assert.equal(reply.headers['www-authenticate'], undefined, 'no challenge: no key can exist');
        assert.deepEqual(JSON.parse(reply.body), {
          error: { code: 'details_disabled', message: 'details are disabled: server.showDetails is when-authorized, but no API key is configured (server.auth.keys)' },
        });
      }
    }
    const page = await request(port, '/');
    assert.equal(page.status, 200);
    assert.equal(note(page.body), 'Details (latency, messages, incidents) are not shown to anyone: server.showDetails is when-authorized, but no API key is configured (server.auth.keys).');
    assert.doesNotMatch(page.body, /unauthenticated/);
    assert.deepEqual(rowOrder(page.body), SEVERITY_ORDER, 'by severity, then name, without details too');
  });

  it('never: 403, and the page says details are off, not that they are hidden from the unauthenticated', async () => {
    const { port } = await start(`showDetails: never, auth: { keys: [ { name: ops, key: "${KEY}" } ] }`);
    const stats = await request(port, '/health/stats', { headers: { 'x-api-key': KEY } });
    assert.equal(stats.status, 403);
    assert.deepEqual(JSON.parse(stats.body), { error: { code: 'details_disabled', message: 'details are disabled (server.showDetails: never)' } });
    for (const headers of [{}, { 'x-api-key': KEY }] as Record<string, string>[]) {
      const page = await request(port, '/', { headers });
      assert.equal(note(page.body), 'Details (latency, messages, incidents) are not shown: server.showDetails is never.');
      assert.doesNotMatch(page.body, /unauthenticated/);
    }
  });

  it('when-authorized with a key: 401 with a challenge without it, 200 with it; the page says a key is needed, and shows details in severity order to a key holder', async () => {
    const { port } = await start(`showDetails: when-authorized, auth: { keys: [ { name: ops, key: "${KEY}" } ] }`);
    const anonymous = await request(port, '/health/stats');
    assert.equal(anonymous.status, 401);
    assert.match(String(anonymous.headers['www-authenticate']), /^Bearer realm=/);
    assert.equal((await request(port, '/health/stats', { headers: { 'x-api-key': KEY } })).status, 200);
    const page = await request(port, '/');
    assert.equal(note(page.body), 'Details (latency, messages, incidents) are shown only to requests with an API key (server.showDetails: when-authorized).');
    const withKey = await request(port, '/', { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(note(withKey.body), undefined, 'no note for a viewer who sees details');
    assert.deepEqual(rowOrder(withKey.body), SEVERITY_ORDER);
    assert.deepEqual(rowOrder((await request(port, '/status/fragment', { headers: { 'x-api-key': KEY } })).body), SEVERITY_ORDER, 'the refreshing fragment too');
  });
});
