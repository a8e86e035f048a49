/**
 * redis over TLS (rediss://) against a real redis-server that speaks only TLS,
 * with openssl-made certificates: verification against tls.ca, client
 * certificates (tls-auth-clients yes / optional), serverName, insecureSkipVerify,
 * the certificate's expiry (tls.minValidity and the cert_expiry gauge) and the
 * config rules.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/probes/registry';
import type { CheckRunner } from '../../src/health/runner';
import { CertExpiryRegistry } from '../../src/probes/tls-expiry';
import { opensslReason } from '../../src/probes/redis';
import { DAY_MS, makeCa, makeServerCert, type Pem } from '../helpers/certs';
import { startTlsRedis, type TlsRedis } from '../helpers/private-datastores';
import { checkFromYaml, runnerFor } from './support';

const PASSWORD = 'CANARY-REDIS-TLS-PW-51aa';

/** a YAML block scalar with the PEM text (indented under `key:` inside the check's tls block) */
const pem = (text: string) => `|\n${text.trim().split('\n').map((line) => `        ${line}`).join('\n')}`;

/** where the probes record the certificates they see (the Sidecar owns one and passes it in each probe's context) */
const certs = new CertExpiryRegistry();

const runners: CheckRunner[] = [];
function redisCheck(url: string, tls: Record<string, string | boolean> = {}) {
  const lines = Object.entries(tls).map(([key, value]) => `      ${key}: ${typeof value === 'string' && value.includes('BEGIN') ? pem(value) : JSON.stringify(value)}`);
  const yaml = [`kind: redis`, `    url: ${url}`, ...(lines.length ? ['    tls:', ...lines] : [])].join('\n');
  const { check, redactor } = checkFromYaml(yaml, { timeout: '2s' });
  const runner = runnerFor(check, redactor, undefined, certs);
  runners.push(runner);
  return runner;
}

after(async () => {
  for (const r of runners.splice(0)) await r.close();
});

describe('redis probe over TLS, client certificate required (tls-auth-clients yes)', () => {
  let server: TlsRedis;
  before(async () => {
    server = await startTlsRedis({ authClients: 'yes', password: PASSWORD });
  });
  after(() => server?.stop());

  test('verified against tls.ca with a client certificate: PONG, and the gauge reports the server certificate', async () => {
    const runner = redisCheck(server.url(PASSWORD), { ca: server.ca.cert, cert: server.client.cert, key: server.client.key });
    for (let i = 0; i < 2; i++) {
      const result = await runner.run('manual');
      assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: 'PONG' });
    }
    const series = certs.observations().filter((o) => o.attributes['healthcheck.name'] === 'probe-under-test');
    assert.deepEqual(
      series.map((o) => [o.attributes['healthcheck.tls.cert'], o.attributes['healthcheck.kind'], o.value]),
      [
        ['leaf', 'redis', Math.floor(server.server.notAfter / 1000)],
        ['earliest', 'redis', Math.floor(Math.min(server.server.notAfter, server.ca.notAfter) / 1000)],
      ],
    );
    await runner.close();
    assert.deepEqual(certs.observations().filter((o) => o.attributes['healthcheck.name'] === 'probe-under-test'), [], 'series removed on close');
  });

  test('no client certificate: the handshake fails, the message says so and carries no password', async () => {
    const result = await redisCheck(server.url(PASSWORD), { ca: server.ca.cert }).run('manual');
    assert.equal(result.outcome, 'failure');
    // the client sees either the server's TLS alert or, when it wrote first, the reset that follows it
    assert.match(
      result.message,
      new RegExp(`^redis 127\\.0\\.0\\.1:${server.port}: (connection reset by peer \\(.*ECONNRESET\\) \\(right after the TLS handshake: does the server require a client certificate\\? tls\\.cert and tls\\.key\\)|.*alert certificate required.*)$`),
    );
    assert.ok(!result.message.includes(PASSWORD), result.message);
  });

  test('a server certificate nobody vouches for (no tls.ca): failure naming the verification error', async () => {
    const result = await redisCheck(server.url(PASSWORD), { cert: server.client.cert, key: server.client.key }).run('manual');
    assert.equal(result.outcome, 'failure');
    assert.match(result.message, new RegExp(`^redis 127\\.0\\.0\\.1:${server.port}: .*(self-signed certificate in certificate chain|unable to get local issuer certificate)`));
  });

  test('insecureSkipVerify: true accepts it (the client certificate is still presented)', async () => {
    const result = await redisCheck(server.url(PASSWORD), { insecureSkipVerify: true, cert: server.client.cert, key: server.client.key }).run('manual');
    assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: 'PONG' });
  });

  test('wrong password over TLS: authentication failed, no password in the message', async () => {
    const result = await redisCheck(server.url('CANARY-WRONG-TLS-PW-0b0b'), { ca: server.ca.cert, cert: server.client.cert, key: server.client.key }).run('manual');
    assert.equal(result.outcome, 'failure');
    assert.match(result.message, new RegExp(`^redis 127\\.0\\.0\\.1:${server.port}: authentication failed \\(WRONGPASS`));
    assert.ok(!result.message.includes('CANARY-WRONG-TLS-PW-0b0b') && !result.message.includes(PASSWORD), result.message);
  });
});

describe('redis probe over TLS: server name and certificate lifetime (tls-auth-clients optional)', () => {
  let ca: Pem;
  let named: TlsRedis; // certificate for redis.internal only
  let shortLived: TlsRedis; // certificate valid 1 day
  before(async () => {
    ca = await makeCa(30, 'Redis Name CA');
    named = await startTlsRedis({ authClients: 'optional', ca, server: await makeServerCert(ca, 30, 'redis.internal', 'DNS:redis.internal') });
    shortLived = await startTlsRedis({ authClients: 'no', ca, server: await makeServerCert(ca, 1) });
  });
  after(async () => {
    await named?.stop();
    await shortLived?.stop();
  });

  test('a certificate for another name fails verification; tls.serverName makes it pass; no client certificate is needed', async () => {
    const mismatch = await redisCheck(named.url(), { ca: ca.cert }).run('manual');
    assert.equal(mismatch.outcome, 'failure');
    assert.match(mismatch.message, /ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/);
    const result = await redisCheck(named.url(), { ca: ca.cert, serverName: 'redis.internal' }).run('manual');
    assert.deepEqual({ ok: result.ok, message: result.message }, { ok: true, message: 'PONG' });
  });

  test('minValidity 14d against a 1-day certificate: fail by default, success with a warning under minValidityAction warn', async () => {
    const failed = await redisCheck(shortLived.url(), { ca: ca.cert, minValidity: '14d' }).run('manual');
    const notAfter = new Date(shortLived.server.notAfter).toISOString();
    assert.equal(failed.outcome, 'failure');
    assert.match(failed.message, new RegExp(`^redis 127\\.0\\.0\\.1:${shortLived.port}: PONG, but certificate expires in (23h \\d+m|1d 0h) \\(notAfter ${notAfter.replace(/[.]/g, '\\.')}\\), less than tls\\.minValidity 14d$`));
    const warned = await redisCheck(shortLived.url(), { ca: ca.cert, minValidity: '14d', minValidityAction: 'warn' }).run('manual');
    assert.equal(warned.ok, true);
    assert.match(warned.message, /^PONG, warning: certificate expires in .*, less than tls\.minValidity 14d$/);
    const relaxed = await redisCheck(shortLived.url(), { ca: ca.cert, minValidity: '12h' }).run('manual');
    assert.deepEqual({ ok: relaxed.ok, message: relaxed.message }, { ok: true, message: 'PONG' });
    assert.ok(shortLived.server.notAfter - Date.now() < 2 * DAY_MS);
  });
});

test('rediss:// with tls is accepted; tls.key is a secret', () => {
  const config = parseConfig('checks:\n  - name: c\n    kind: redis\n    url: rediss://cache:6380\n    tls: { key: "KEY-TEXT-NOT-A-REAL-KEY", minValidity: 14d }\n', 'ok.yaml', { env: {} });
  assert.ok(config.secrets.includes('KEY-TEXT-NOT-A-REAL-KEY'));
});

test('an OpenSSL error reads as its reason, without the library\'s internals (the TLS 1.3 alert of a server that wants a client certificate)', () => {
  const raw = '80DC62D93A7F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n';
  assert.equal(opensslReason(raw), 'TLS error: tlsv13 alert certificate required (SSL alert number 116)');
  assert.equal(opensslReason('  something else entirely\n'), 'something else entirely');
});
