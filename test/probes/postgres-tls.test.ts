/**
 * postgres with TLS and the deeper checks, against a private PostgreSQL
 * cluster with ssl=on that refuses unencrypted clients (hostssl only), an
 * openssl-made CA and a server certificate made for `db.internal` only (so the
 * four sslmodes differ on one server), and a `cert`-authenticated role for
 * client certificates. Also: statement_timeout cancels a slow query on the
 * server (its own log says so) and maxConnectionsRatio against max_connections.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { CheckRunner } from '../../src/health/runner';
import { evaluateConnections, postgresSslOption, splitSslParams } from '../../src/probes/postgres-checks';
import { parseConfig } from '../../src/probes/registry';
import { CertExpiryRegistry } from '../../src/probes/tls-expiry';
import { makeCa, makeClientCert, makeServerCert, type Pem } from '../helpers/certs';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-services';
import { waitFor } from '../helpers/servers';
import { checkFromYaml, runnerFor } from './support';

const PASSWORD = 'CANARY-PG-TLS-PW-8a61';
const SERVER_NAME = 'db.internal';

let ca: Pem;
let otherCa: Pem;
let server: Pem;
let client: Pem;
let pgServer: PrivatePostgres;
const runners: CheckRunner[] = [];
/** node 'warning' events seen (pg-connection-string warns on stderr when it handles sslmode itself) */
const warnings: string[] = [];

/** where the probes record the certificates they see (the Sidecar owns one and passes it in each probe's context) */
const certs = new CertExpiryRegistry();

/** a check of the private cluster: `lines` are the YAML lines after url (indented by the caller's convention) */
function pgCheck(options: { user?: string; password?: string; params?: string; lines?: Record<string, unknown>; timeout?: string } = {}) {
  const user = options.user ?? 'postgres';
  const auth = options.password === '' ? `${user}@` : `${user}:${options.password ?? PASSWORD}@`;
  const url = `postgres://${auth}127.0.0.1:${pgServer.port}/postgres${options.params ?? ''}`;
  const yaml = [`kind: postgres`, `url: ${url}`, ...Object.entries(options.lines ?? {}).map(([k, v]) => `${k}: ${JSON.stringify(v)}`)].join('\n    ');
  const { check, redactor } = checkFromYaml(yaml, { timeout: options.timeout ?? '2s' });
  const runner = runnerFor(check, redactor, undefined, certs);
  runners.push(runner);
  return { check, runner };
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: '127.0.0.1', port: pgServer.port, user: 'postgres', password: PASSWORD, database: 'postgres', ssl: { ca: ca.cert, servername: SERVER_NAME } });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

before(async () => {
  process.on('warning', (w) => warnings.push(w.message));
  ca = await makeCa(30, 'PG Test CA');
  otherCa = await makeCa(30, 'Some Other CA');
  server = await makeServerCert(ca, 30, SERVER_NAME, `DNS:${SERVER_NAME}`);
  client = await makeClientCert(ca, 30, 'certuser');
  pgServer = await startPrivatePostgres(PASSWORD, {
    tls: { cert: server.cert, key: server.key, ca: ca.cert },
    hba: ['local all all scram-sha-256', 'hostssl all certuser 127.0.0.1/32 cert', 'hostssl all all 127.0.0.1/32 scram-sha-256', 'hostnossl all all 127.0.0.1/32 reject'],
  });
  await admin((c) => c.query('CREATE ROLE certuser LOGIN'));
});

after(async () => {
  for (const r of runners.splice(0)) await r.close();
  await pgServer?.stop();
});

const ok = (message: string, mode: string) => new RegExp(`^SELECT 1: 1 row\\(s\\); TLSv1\\.[23] \\(sslmode ${mode}\\)$`).test(message);

describe('postgres sslmode against a server whose certificate names db.internal', () => {
  test('disable: the hostssl-only server refuses the unencrypted connection', async () => {
    const result = await pgCheck().runner.run('manual');
    assert.equal(result.outcome, 'failure');
    assert.equal(result.message, `postgres 127.0.0.1:${pgServer.port}: authentication failed (28000: pg_hba.conf rejects connection for host "127.0.0.1", user "postgres", database "postgres", no encryption)`);
  });

  test('require: encrypted without a CA (nothing verified), as libpq does; from the URL without any warning from pg', async () => {
    const { runner } = pgCheck({ params: '?sslmode=require' });
    const result = await runner.run('manual');
    assert.ok(result.ok && ok(result.message, 'require'), result.message);
    const { runner: keyed } = pgCheck({ lines: { sslmode: 'require' } });
    const second = await keyed.run('manual');
    assert.ok(second.ok && ok(second.message, 'require'), second.message);
    assert.deepEqual(warnings.filter((w) => /SECURITY WARNING|sslmode/i.test(w)), [], 'pg-connection-string never saw the sslmode');
    const ssl = await admin(async (c) => (await c.query("SELECT count(*)::int AS n FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND application_name = 'otel-health-sidecar:probe-under-test'")).rows[0].n);
    assert.equal(ssl, 2, 'both probes hold an encrypted connection');
  });

  test('require with tls.ca verifies the chain (libpq: like verify-ca): the right CA passes, another fails', async () => {
    const right = await pgCheck({ lines: { sslmode: 'require', tls: { ca: ca.cert } } }).runner.run('manual');
    assert.ok(right.ok && ok(right.message, 'require'), right.message);
    const wrong = await pgCheck({ lines: { sslmode: 'require', tls: { ca: otherCa.cert } } }).runner.run('manual');
    assert.equal(wrong.outcome, 'failure');
    assert.match(wrong.message, new RegExp(`^postgres 127\\.0\\.0\\.1:${pgServer.port}: .*(self-signed certificate in certificate chain|unable to verify the first certificate|unable to get local issuer certificate)`));
  });

  test('verify-ca: the chain is checked, the name is not (127.0.0.1 is not db.internal and passes)', async () => {
    const result = await pgCheck({ lines: { sslmode: 'verify-ca', tls: { ca: ca.cert } } }).runner.run('manual');
    assert.ok(result.ok && ok(result.message, 'verify-ca'), result.message);
  });

  test('verify-full: the name must match; tls.serverName names the certificate\'s host', async () => {
    const mismatch = await pgCheck({ lines: { sslmode: 'verify-full', tls: { ca: ca.cert } } }).runner.run('manual');
    assert.equal(mismatch.outcome, 'failure');
    assert.match(mismatch.message, /ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/);
    const named = await pgCheck({ lines: { sslmode: 'verify-full', tls: { ca: ca.cert, serverName: SERVER_NAME } } }).runner.run('manual');
    assert.ok(named.ok && ok(named.message, 'verify-full'), named.message);
  });

  test('a client certificate authenticates the cert role (no password); without it the server refuses', async () => {
    const withCert = await pgCheck({ user: 'certuser', password: '', lines: { sslmode: 'verify-ca', tls: { ca: ca.cert, cert: client.cert, key: client.key } } }).runner.run('manual');
    assert.ok(withCert.ok && ok(withCert.message, 'verify-ca'), withCert.message);
    const without = await pgCheck({ user: 'certuser', password: '', lines: { sslmode: 'verify-ca', tls: { ca: ca.cert } } }).runner.run('manual');
    assert.equal(without.outcome, 'failure');
    assert.match(without.message, new RegExp(`^postgres 127\\.0\\.0\\.1:${pgServer.port}: authentication failed \\(28000: connection requires a valid client certificate\\)$`));
  });

  // the CA and the server certificate both live 30 days; the CA, made a moment earlier, may be the chain's earliest
  test('certificate expiry: recorded in the gauge, and minValidity fails (or warns) against the 30-day certificate', async () => {
    const { runner } = pgCheck({ lines: { sslmode: 'verify-ca', tls: { ca: ca.cert, minValidity: '60d' } } });
    const result = await runner.run('manual');
    assert.equal(result.outcome, 'failure');
    assert.match(result.message, new RegExp(`^postgres 127\\.0\\.0\\.1:${pgServer.port}: SELECT 1: 1 row\\(s\\), but (chain certificate CN=PG Test CA|certificate) expires in (29d 23h|30d 0h) \\(notAfter .*\\), less than tls\\.minValidity 60d$`));
    const series = certs.observations().filter((o) => o.attributes['healthcheck.name'] === 'probe-under-test' && o.attributes['healthcheck.kind'] === 'postgres');
    assert.deepEqual(series.map((o) => [o.attributes['healthcheck.tls.cert'], o.value]), [
      ['leaf', Math.floor(server.notAfter / 1000)],
      ['earliest', Math.floor(Math.min(server.notAfter, ca.notAfter) / 1000)],
    ]);
    const warned = await pgCheck({ lines: { sslmode: 'verify-ca', tls: { ca: ca.cert, minValidity: '60d', minValidityAction: 'warn' } } }).runner.run('manual');
    assert.equal(warned.ok, true);
    assert.match(warned.message, /^SELECT 1: 1 row\(s\); TLSv1\.[23] \(sslmode verify-ca\); warning: (chain certificate CN=PG Test CA|certificate) expires in .*, less than tls\.minValidity 60d$/);
  });
});

describe('statement_timeout and maxConnectionsRatio on the same server', () => {
  test('a slow query: the run times out and the server itself cancels the statement (statement_timeout from the check timeout)', async () => {
    const { check, runner } = pgCheck({ lines: { sslmode: 'require', query: 'SELECT pg_sleep(5) AS statement_timeout_probe' }, timeout: '300ms' });
    const result = await runner.run('manual');
    assert.deepEqual({ outcome: result.outcome, message: result.message }, { outcome: 'timeout', message: `timed out after ${check.timeout}ms` });
    // the server's log: the statement was cancelled by statement_timeout, not left sleeping for 5 s
    await waitFor(() => /ERROR: {2}canceling statement due to statement timeout\n.*STATEMENT: {2}SELECT pg_sleep\(5\) AS statement_timeout_probe/.test(pgServer.log()), {
      what: 'the server to log the cancelled statement',
      timeoutMs: 30_000, // a statement never cancelled never logs this (it just ends after 5 s)
    });
    const setting = await admin(async (c) => (await c.query("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")).rows[0].setting);
    assert.equal(setting, '0', 'the server default is no timeout: the 300 ms came from the probe');
  });

  test('maxConnectionsRatio: passes with headroom, fails when client connections pass the ratio of max_connections (40)', async () => {
    const { runner } = pgCheck({ lines: { sslmode: 'require', maxConnectionsRatio: 0.5 } });
    const roomy = await runner.run('manual');
    assert.equal(roomy.ok, true, roomy.message);
    assert.match(roomy.message, /^SELECT 1: 1 row\(s\); connections \d+ of max_connections 40 \(\d+%, 3 reserved for superusers\); TLSv1\.[23] \(sslmode require\)$/);
    const extra: pg.Client[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const c = new pg.Client({ host: '127.0.0.1', port: pgServer.port, user: 'postgres', password: PASSWORD, database: 'postgres', ssl: { rejectUnauthorized: false } });
        await c.connect();
        extra.push(c);
      }
      const crowded = await runner.run('manual');
      assert.equal(crowded.outcome, 'failure');
      assert.match(crowded.message, new RegExp(`^postgres 127\\.0\\.0\\.1:${pgServer.port}: connections (2[1-9]|3\\d) of max_connections 40 \\((5[3-9]|[6-9]\\d)%, 3 reserved for superusers\\), more than maxConnectionsRatio 0\\.5$`));
    } finally {
      await Promise.all(extra.map((c) => c.end()));
    }
    assert.equal((await runner.run('manual')).ok, true);
  });
});

describe('pure parts', () => {
  test('splitSslParams takes every TLS parameter out of the URL', () => {
    assert.deepEqual(splitSslParams('postgres://u:p@db:5432/app?sslmode=verify-full&application_name=x&sslrootcert=/a'), {
      url: 'postgres://u:p@db:5432/app?application_name=x',
      sslmode: 'verify-full',
      others: ['sslrootcert'],
    });
  });

  test('postgresSslOption follows libpq', () => {
    assert.equal(postgresSslOption('disable', undefined), false);
    const require = postgresSslOption('require', undefined) as import('node:tls').ConnectionOptions;
    assert.equal(require.rejectUnauthorized, false);
    assert.equal((postgresSslOption('require', { ca: 'CA' }) as import('node:tls').ConnectionOptions).rejectUnauthorized, true);
    const full = postgresSslOption('verify-full', { ca: 'CA' }) as import('node:tls').ConnectionOptions;
    assert.deepEqual([full.rejectUnauthorized, full.checkServerIdentity], [true, undefined]);
  });

  test('evaluateConnections', () => {
    assert.deepEqual(evaluateConnections({ connections: 85, maxConnections: 100, reserved: 3 }, 0.8), {
      ok: false,
      message: 'connections 85 of max_connections 100 (85%, 3 reserved for superusers), more than maxConnectionsRatio 0.8',
    });
  });

  test('tls.key is a secret', () => {
    const config = parseConfig('checks:\n  - { name: c, kind: postgres, url: "postgres://db/app", sslmode: verify-full, tls: { key: PG-KEY-TEXT-1, cert: PG-CERT-TEXT } }\n', 'ok.yaml', { env: {} });
    assert.ok(config.secrets.includes('PG-KEY-TEXT-1'));
  });
});
