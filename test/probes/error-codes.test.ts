/**
 * Stable error codes (issue 15: "errors in errors.ts with stable codes that
 * results carry and tests assert"): each kind of failure, made for real, ends
 * in its PROBE_ERROR code — on the run result, in /health/{check} as
 * `errorCode`, and on the run span as `error.type` — and a success carries
 * none. Real peers: HTTP/HTTPS servers on port 0 (a self-signed certificate
 * the check does not trust, a redirect loop, a server that never answers), a
 * closed port, and a private redis-server with a password the check gets
 * wrong.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import type { Sidecar } from '../../src/sidecar';
import { PROBE_ERROR } from '../../src/errors';
import { makeCa, makeServerCert } from '../helpers/certs';
import { request } from '../helpers/http';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-services';
import { freePort, startHttpServer, waitFor, type TestHttpServer } from '../helpers/servers';
import { sidecarFromYaml } from '../server/helpers';

describe('probe error codes', () => {
  let sidecar: Sidecar;
  let port: number;
  const servers: { close(): unknown }[] = [];
  let redis: PrivateRedis;

  before(async () => {
    const ok = await startHttpServer((_req, res) => res.end('ok'));
    const broken = await startHttpServer((_req, res) => res.writeHead(500).end('broken'));
    const loop = await startHttpServer((req, res) => res.writeHead(302, { location: req.url === '/a' ? '/b' : '/a' }).end());
    const silent = await startHttpServer(() => undefined); // reads the request, never answers
    servers.push(ok, broken, loop, silent);
    const ca = await makeCa(30);
    const cert = await makeServerCert(ca, 30);
    const tls = https.createServer({ cert: cert.cert, key: cert.key }, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    servers.push({ close: () => tls.close() });
    redis = await startPrivateRedis('the-right-password-0123');
    const closed = await freePort();
    const tlsPort = (tls.address() as { port: number }).port;
    ({ sidecar } = sidecarFromYaml(`
server: { port: 0, host: 127.0.0.1, showDetails: always }
defaults: { interval: 1h, timeout: 500ms, retry: { attempts: 1 } }
checks:
  - { name: fine, kind: http, url: "${ok.url}/" }
  - { name: unhealthy, kind: http, url: "${broken.url}/" }
  - { name: refused, kind: tcp, url: "tcp://127.0.0.1:${closed}" }
  - { name: silent, kind: http, url: "${silent.url}/" }
  - { name: looping, kind: http, url: "${loop.url}/a", followRedirects: true }
  - { name: untrusted, kind: http, url: "https://127.0.0.1:${tlsPort}/" }
  - { name: wrong-password, kind: redis, url: "redis://:not-the-password-999@127.0.0.1:${redis.port}" }
  - { name: breaker, kind: tcp, url: "tcp://127.0.0.1:${closed}", breaker: { failures: 1, halfOpenAfter: 1h } }
`));
    port = await sidecar.start();
    await waitFor(() => sidecar.store.all().every((s) => s.status !== 'UNKNOWN'), { what: 'first results', timeoutMs: 30_000 });
    // the breaker opened on its first failure: the next run is not attempted
    const rejected = await sidecar.runNow('breaker');
    assert.equal(rejected?.outcome, 'rejected');
  });

  after(async () => {
    await sidecar?.shutdown({ drain: false });
    for (const server of servers) await server.close();
    await redis?.stop();
  });

  const expected: Record<string, string | undefined> = {
    fine: undefined,
    unhealthy: PROBE_ERROR.unhealthy,
    refused: PROBE_ERROR.connect,
    silent: PROBE_ERROR.timeout,
    looping: PROBE_ERROR.protocol,
    untrusted: PROBE_ERROR.tls,
    'wrong-password': PROBE_ERROR.auth,
    breaker: PROBE_ERROR.breakerOpen,
  };

  for (const [check, code] of Object.entries(expected)) {
    it(`${check}: ${code ?? 'no errorCode (it succeeded)'}`, async () => {
      assert.equal(sidecar.store.get(check)!.errorCode, code ?? null, sidecar.store.get(check)!.message);
      const reply = await request(port, `/health/${check}`);
      const body = JSON.parse(reply.body) as { errorCode?: string; status: string };
      assert.equal(body.errorCode, code, reply.body);
      assert.equal(body.status, code ? 'DOWN' : 'UP');
    });
  }

  it('every code a check can end with is one of PROBE_ERROR, and the table covers each but the generic one', () => {
    const all = new Set<string>(Object.values(PROBE_ERROR));
    for (const state of sidecar.store.all()) if (state.errorCode) assert.ok(all.has(state.errorCode), state.errorCode);
    const covered = new Set(Object.values(expected).filter(Boolean));
    assert.deepEqual([...all].filter((c) => !covered.has(c)), [PROBE_ERROR.failed]);
  });
});
